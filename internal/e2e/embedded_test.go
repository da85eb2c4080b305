package e2e

import (
	"bufio"
	"encoding/json"
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

// SPEC 7 and lifecycle: `serve` without DATABASE_URL runs an embedded
// Postgres under CIOLOADER_DATA_DIR/pg, prints a generated admin token once,
// stops the cluster on SIGTERM (exit 0, no postmaster left) and reuses both
// the cluster and the token on the next start; after a kill -9 the next
// start adopts the cluster still running, and stops it on SIGTERM.
func TestEmbeddedPostgresStopsCleanly(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	makeReachable(t, dataDir)
	env := map[string]string{"CIOLOADER_DATA_DIR": dataDir, "CIOLOADER_ADMIN_TOKEN": ""}
	pgDir := filepath.Join(dataDir, "pg")
	// A failed run must not leave a daemonised postmaster behind.
	t.Cleanup(func() { stopLeftoverPostmaster(t, filepath.Join(pgDir, "data")) })

	// First run: initdb, a generated admin token on stdout.
	first := startServer(t, "embedded-1", env, 90*time.Second)
	started := logRecord(t, first, "embedded postgres started")
	require.Equal(t, pgDir, started["dir"], "cluster directory")
	require.Equal(t, false, started["reused_running_server"])
	tokenFile := filepath.Join(dataDir, "admin-token")
	b, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	token := strings.TrimSpace(string(b))
	require.True(t, strings.HasPrefix(token, "adm_"), token)
	require.Contains(t, first.stdout.String(), "Generated admin token")
	require.Contains(t, first.stdout.String(), token)
	require.NotContains(t, first.stderr.String(), token, "the admin token is never logged")

	in, u := first.setupWithToken(t, token, "Embedded")
	a := post(u.URL, mustJSON(emailEvent("embedded-1")), 10*time.Second)
	require.NoError(t, a.Err)
	require.Equal(t, http.StatusOK, a.Status, string(a.Body))

	postmaster := postmasterPID(t, filepath.Join(pgDir, "data"))
	require.Equal(t, float64(postmaster), started["pid"])
	stopEmbedded(t, first, pgDir, postmaster)

	// Second run: the same cluster (stopped, so started again, not adopted)
	// and the admin token from the file; no new token is printed.
	second := startServer(t, "embedded-2", env, 60*time.Second)
	started = logRecord(t, second, "embedded postgres started")
	require.Equal(t, pgDir, started["dir"])
	require.Equal(t, false, started["reused_running_server"], "the first run left its server running")
	require.NotContains(t, second.stdout.String(), "Generated admin token")
	require.NotContains(t, second.stdout.String(), token)
	logRecord(t, second, "admin token read from file (set CIOLOADER_ADMIN_TOKEN to choose your own)")
	after, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	require.Equal(t, string(b), string(after), "the token file is kept as is")

	// The data and the webhook URL survived; the old token still opens the admin API.
	a = post(u.on(second), mustJSON(emailEvent("embedded-2")), 10*time.Second)
	require.NoError(t, a.Err)
	require.Equal(t, http.StatusOK, a.Status, string(a.Body))
	a = second.adminAs(t, token, http.MethodGet, "/v1/integrations/"+strconv.FormatInt(in.ID, 10), nil)
	require.Equal(t, http.StatusOK, a.Status, string(a.Body))
	require.Contains(t, string(a.Body), in.Schema)

	// A killed cioloader leaves its (daemonised) postmaster running; the next
	// start adopts it, and that run's SIGTERM stops it.
	postmaster = postmasterPID(t, filepath.Join(pgDir, "data"))
	second.signal(t, syscall.SIGKILL)
	require.Equal(t, -1, second.wait(t, 10*time.Second))
	require.True(t, processAlive(postmaster), "the postmaster outlives a killed cioloader")
	third := startServer(t, "embedded-3", env, 60*time.Second)
	started = logRecord(t, third, "embedded postgres started")
	require.Equal(t, true, started["reused_running_server"], "the running cluster is adopted")
	require.Equal(t, float64(postmaster), started["pid"])
	a = post(u.on(third), mustJSON(emailEvent("embedded-3")), 10*time.Second)
	require.NoError(t, a.Err)
	require.Equal(t, http.StatusOK, a.Status, string(a.Body))
	stopEmbedded(t, third, pgDir, postmaster)

	t.Run("SIGTERM while the cluster starts", func(t *testing.T) {
		sigtermDuringEmbeddedStart(t, env, pgDir)
	})
}

// sigtermDuringEmbeddedStart sends SIGTERM the moment the postmaster has
// started (postmaster.pid appears) but before cioloader is ready: the
// process must not leave the postmaster running behind it.
func sigtermDuringEmbeddedStart(t *testing.T, env map[string]string, pgDir string) {
	pidFile := filepath.Join(pgDir, "data", "postmaster.pid")
	s := spawn(t, "embedded-4", env)
	waitFor(t, 30*time.Second, "postmaster.pid", func() bool {
		_, err := os.Stat(pidFile)
		return err == nil || s.hasExited()
	})
	s.signal(t, syscall.SIGTERM)
	code := s.wait(t, 30*time.Second)
	t.Logf("exit %d after SIGTERM during start: %s", code, s.stderr.Tail(1))
	dataDir := filepath.Join(pgDir, "data")
	waitFor(t, 5*time.Second, "no server process in the data directory", func() bool { return len(processesIn(dataDir)) == 0 })
}

// stopEmbedded sends SIGTERM and checks the process exits 0 and its
// postmaster (and every backend) is gone.
func stopEmbedded(t *testing.T, s *server, pgDir string, postmaster int) {
	t.Helper()
	require.True(t, processAlive(postmaster), "postmaster %d runs before SIGTERM", postmaster)
	termAt := time.Now()
	s.signal(t, syscall.SIGTERM)
	require.Zero(t, s.wait(t, 30*time.Second), "exit code after SIGTERM")
	t.Logf("%s: exit 0 %s after SIGTERM", s.name, time.Since(termAt).Round(time.Millisecond))
	logRecord(t, s, "embedded postgres stopped")
	require.False(t, processAlive(postmaster), "postmaster %d still runs after cioloader exited", postmaster)
	dataDir := filepath.Join(pgDir, "data")
	if pm, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid")); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pm), "\n", 2)[0]))
		require.False(t, processAlive(pid), "postmaster.pid names a live process %d", pid)
	}
	require.Empty(t, processesIn(dataDir), "server processes still working in %s", dataDir)
}

// logRecord returns the first JSON log record of s with message msg.
func logRecord(t *testing.T, s *server, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s.stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	t.Fatalf("%s logged no %q", s.name, msg)
	return nil
}

func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	require.NoError(t, err)
	return pid
}

// processesIn lists live processes whose working directory is dir (a
// postmaster and its backends work in the data directory).
func processesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == dir && processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopLeftoverPostmaster asks a postmaster the test started (through
// cioloader) and left running for an immediate shutdown.
func stopLeftoverPostmaster(t *testing.T, dataDir string) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || !processAlive(pid) {
		return
	}
	t.Logf("stopping leftover postmaster %d", pid)
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	for deadline := time.Now().Add(10 * time.Second); processAlive(pid) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) setupWithToken(t *testing.T, token, name string) (integration, webhookURL) {
	t.Helper()
	a := s.adminAs(t, token, http.MethodPost, "/v1/integrations", map[string]string{"name": name})
	require.Equal(t, http.StatusCreated, a.Status, string(a.Body))
	var in integration
	require.NoError(t, json.Unmarshal(a.Body, &in))
	a = s.adminAs(t, token, http.MethodPost, "/v1/integrations/"+strconv.FormatInt(in.ID, 10)+"/webhook-urls", nil)
	require.Equal(t, http.StatusCreated, a.Status, string(a.Body))
	var u webhookURL
	require.NoError(t, json.Unmarshal(a.Body, &u))
	return in, u
}
