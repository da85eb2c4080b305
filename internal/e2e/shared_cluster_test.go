package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SPEC 10.10, issue 12: two `cioloader serve` on one embedded cluster (`make
// run` twice, the second on another port). The second joins the first one's
// server; when it exits it leaves that server running, and the first keeps
// storing events. When the first (the owner) exits while another server
// still uses the cluster, it leaves it running too, that one takes it over,
// and the last one out stops it.
func TestSecondServeLeavesTheFirstOnesDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts three servers on an embedded cluster")
	}
	t.Parallel()
	env, pgDir := sharedClusterEnv(t)
	a := startServer(t, "first", env, 90*time.Second)
	_, u := a.setup(t, "Shared")
	requireIngests(t, a, u, "first-alone", 0)
	postmaster := postmasterPID(t, filepath.Join(pgDir, "data"))

	b := startServer(t, "second", env, 60*time.Second)
	require.Equal(t, true, logRecord(t, b, "embedded postgres started")["reused_running_server"])
	requireIngests(t, b, u, "second", 0)
	b.signal(t, syscall.SIGTERM)
	require.Zero(t, b.wait(t, 30*time.Second), "exit code after SIGTERM")
	require.True(t, processAlive(postmaster), "the second server stopped the first one's postgres")
	requireIngests(t, a, u, "first-after-second", 5*time.Second)
	require.Equal(t, true, logRecord(t, a, "embedded postgres started")["owner"])
	require.Equal(t, false, logRecord(t, b, "embedded postgres started")["owner"], "the first server started it and owns it")
	logRecord(t, b, "embedded postgres left running: another process started it and stops it")

	// The owner leaves too while a third server runs: a hand-over, no outage.
	c := startServer(t, "third", env, 60*time.Second)
	a.signal(t, syscall.SIGTERM)
	require.Zero(t, a.wait(t, 30*time.Second), "exit code after SIGTERM")
	require.True(t, processAlive(postmaster), "the owner stopped postgres under the third server")
	requireIngests(t, c, u, "third", 3*time.Second)
	logRecord(t, a, "embedded postgres left running for the other clients connected to it; the next cioloader serve takes it over")
	waitFor(t, 10*time.Second, "the third server to take the cluster over", func() bool {
		return hasLog(c, "embedded postgres: took the server over; the process that owned it has exited")
	})
	stopEmbedded(t, c, pgDir, postmaster) // the last one out stops it
}

// SPEC 10.3 and 10.10: the postmaster of the embedded cluster is killed; the
// server that owns it restarts it within seconds, and both it and a server
// that joined the cluster store events again without being restarted.
func TestOwnerRestartsKilledPostmaster(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kills and restarts an embedded cluster under two servers")
	}
	t.Parallel()
	env, pgDir := sharedClusterEnv(t)
	a := startServer(t, "owner", env, 90*time.Second)
	_, u := a.setup(t, "Crashing")
	b := startServer(t, "joined", env, 60*time.Second)
	requireIngests(t, a, u, "before-a", 0)
	requireIngests(t, b, u, "before-b", 0)

	old := postmasterPID(t, filepath.Join(pgDir, "data"))
	require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
	killedAt := time.Now()
	// Backends outlive their postmaster for a moment (an event may still be
	// stored): wait for a new postmaster before expecting ingest to work.
	var restarted int
	waitFor(t, 20*time.Second, "a new postmaster", func() bool {
		restarted = postmasterOf(filepath.Join(pgDir, "data"))
		return restarted != 0 && restarted != old && processAlive(restarted)
	})
	t.Logf("postmaster %d replaced by %d %s after the kill", old, restarted, time.Since(killedAt).Round(time.Millisecond))
	for _, s := range []*server{a, b} {
		waitIngest(t, s, u, 15*time.Second)
		t.Logf("%s: ingest 200 again %s after the kill", s.name, time.Since(killedAt).Round(time.Millisecond))
		waitFor(t, 5*time.Second, s.name+" /readyz 200", func() bool { status, _ := s.get("/readyz"); return status == http.StatusOK })
	}
	// pg_ctl may still be waiting for the server it started when clients get in.
	waitFor(t, 10*time.Second, "the owner to log the restart", func() bool { return hasLog(a, "embedded postgres restarted") })
	require.False(t, hasLog(b, "embedded postgres restarted"), "only the owner restarts it")
	requireIngests(t, b, u, "after-b", 2*time.Second)

	b.signal(t, syscall.SIGTERM)
	require.Zero(t, b.wait(t, 30*time.Second))
	stopEmbedded(t, a, pgDir, restarted)
}

// sharedClusterEnv is the environment of servers sharing a fresh embedded
// cluster, and the cluster's directory; a postmaster left behind by a failed
// test is stopped.
func sharedClusterEnv(t *testing.T) (map[string]string, string) {
	t.Helper()
	dataDir := t.TempDir()
	makeReachable(t, dataDir)
	pgDir := filepath.Join(dataDir, "pg")
	t.Cleanup(func() { stopLeftoverPostmaster(t, filepath.Join(pgDir, "data")) })
	return map[string]string{"CIOLOADER_DATA_DIR": dataDir}, pgDir
}

// postmasterOf is the pid in dataDir/postmaster.pid, 0 when there is none.
func postmasterOf(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// requireIngests posts events to u on s for at least during (at least one),
// each of which must be answered 200.
func requireIngests(t *testing.T, s *server, u webhookURL, prefix string, during time.Duration) {
	t.Helper()
	began := time.Now()
	for i := 0; i == 0 || time.Since(began) < during; i++ {
		a := post(u.on(s), mustJSON(emailEvent(fmt.Sprintf("%s-%d", prefix, i))), 10*time.Second)
		require.NoError(t, a.Err)
		require.Equal(t, http.StatusOK, a.Status, "%s: %s", s.name, a.Body)
		time.Sleep(100 * time.Millisecond)
	}
}

// waitIngest posts to u on s until an event is answered 200.
func waitIngest(t *testing.T, s *server, u webhookURL, within time.Duration) {
	t.Helper()
	i := 0
	waitFor(t, within, s.name+" to store events again", func() bool {
		i++
		a := post(u.on(s), mustJSON(emailEvent(fmt.Sprintf("%s-recover-%d", s.name, i))), 5*time.Second)
		if a.Err == nil && a.Status != http.StatusOK && a.Status != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d %s while the database is down or back", s.name, a.Status, a.Body)
		}
		return a.Err == nil && a.Status == http.StatusOK
	})
}

// hasLog reports whether s has logged a JSON record with message msg.
func hasLog(s *server, msg string) bool {
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct{ Msg string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == msg {
			return true
		}
	}
	return false
}
