package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/pgcluster"
)

// SPEC 3.1/10.3 for a database that hangs rather than refuses (a network
// partition, a stalled disk, a failover): every ingest request still gets
// its 503 + Retry-After well within the 4 s Customer.io waits, and /readyz
// answers 503 rather than hanging. The test freezes a private cluster with
// SIGSTOP, so it does not disturb the other tests.
func TestHungDatabaseStillAnswersFast(t *testing.T) {
	t.Parallel()
	cluster := privateCluster(t)
	s := startServer(t, "hung", map[string]string{
		"DATABASE_URL":              cluster.URL(pgcluster.DefaultDatabase),
		"CIOLOADER_COMMIT_DEADLINE": commitDeadline.String(),
	}, 30*time.Second)
	_, u := s.setup(t, "Hung")
	a := post(u.URL, mustJSON(emailEvent("before")), 5*time.Second)
	require.NoError(t, a.Err)
	require.Equal(t, http.StatusOK, a.Status, string(a.Body))

	pids := processesIn(cluster.DataDir())
	require.NotEmpty(t, pids)
	thaw := func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	for _, pid := range pids {
		require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	}
	frozenAt := time.Now()
	const answerWithin = 4 * time.Second // Customer.io's wait
	// Probe past the token cache's 1 s TTL, so look-ups reach the database.
	var probes []answer
	for len(probes) < 3 || time.Since(frozenAt) < 2*time.Second {
		probes = append(probes, post(u.URL, mustJSON(emailEvent("frozen")), 2*answerWithin))
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerWithin)
	ready := do(ctx, http.MethodGet, s.URL+"/readyz", nil, nil)
	cancel()
	for i, a := range probes {
		t.Logf("probe %d: %d %v after %s", i, a.Status, a.Err, a.Took.Round(time.Millisecond))
	}
	t.Logf("/readyz: %d %v after %s", ready.Status, ready.Err, ready.Took.Round(time.Millisecond))
	for _, a := range probes {
		require.NoError(t, a.Err)
		require.Equal(t, http.StatusServiceUnavailable, a.Status, string(a.Body))
		require.NotEmpty(t, a.Header.Get("Retry-After"))
		require.Less(t, a.Took, answerWithin, "ingest must answer before Customer.io gives up")
	}
	require.NoError(t, ready.Err, "/readyz must answer while the database hangs")
	require.Equal(t, http.StatusServiceUnavailable, ready.Status)
	thaw()
	waitFor(t, 15*time.Second, "ingest to recover after the database resumed", func() bool {
		return post(u.URL, mustJSON(emailEvent("after")), 5*time.Second).Status == http.StatusOK
	})
}

// privateCluster starts a throwaway Postgres for one test, stopped at cleanup.
func privateCluster(t *testing.T) *pgcluster.Cluster {
	t.Helper()
	dir := t.TempDir()
	makeReachable(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		Dir:             filepath.Join(dir, "pg"),
		StopWithProcess: true,
		Logger:          slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, c.Stop(ctx))
	})
	return c
}

// makeReachable lets the "postgres" OS user, which runs the server when the
// tests run as root, reach dir (t.TempDir's directories are 0700); otherwise
// pgcluster relocates the cluster outside the test's directory.
func makeReachable(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o711))
	require.NoError(t, os.Chmod(dir, 0o711))
}
