//go:build unix

package pgcluster

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runT runs c's supervisor until the test ends.
func runT(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// SPEC 10.10: a killed postmaster is restarted by the process that owns the
// server, on the same port and socket, so everyone's URLs work again; a
// process that merely joined it does not restart it.
func TestRunRestartsOwnServer(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	for name, opt := range map[string]Options{"daemonised": {}, "child": {StopWithProcess: true}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opt.Dir = reachableDir(t)
			owner := startT(t, opt)
			joined := startT(t, Options{Dir: opt.Dir})
			require.False(t, joined.Owned())
			runT(t, owner)
			runT(t, joined)
			old, url := owner.PID(), joined.URL(DefaultDatabase)

			require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
			require.Eventually(t, func() bool { return owner.PID() != old && owner.PID() != 0 }, 30*time.Second, 50*time.Millisecond)
			require.Equal(t, "1", query(t, url, "SELECT 1::text"), "the joined process's URL works again")
			require.False(t, joined.Owned())
			require.Equal(t, old, joined.PID(), "the joined process did not restart it")
		})
	}
}

// Run leaves a server stopped with Stop stopped.
func TestRunLeavesStoppedServerStopped(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	c := startT(t, Options{Dir: reachableDir(t), StopWithProcess: true})
	runT(t, c)
	require.NoError(t, c.Stop(context.Background()))
	time.Sleep(3 * superviseInterval)
	require.Zero(t, c.PID())
	_, alive := c.postmaster()
	require.False(t, alive)
}

// When the owner leaves the server running (Release, or its process exits),
// a supervising process takes it over, and may then stop it.
func TestRunTakesOverReleasedServer(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	dir := reachableDir(t)
	owner := startT(t, Options{Dir: dir})
	joined := startT(t, Options{Dir: dir})
	runT(t, joined)
	time.Sleep(2 * superviseInterval)
	require.False(t, joined.Owned(), "not while the owner holds it")
	owner.Release()
	require.Eventually(t, joined.Owned, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, joined.Stop(context.Background()))
	_, alive := joined.postmaster()
	require.False(t, alive)
}
