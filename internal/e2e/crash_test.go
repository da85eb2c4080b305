package e2e

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/testdb"
)

// SPEC 10.2: kill -9 at any moment under load; after a restart every event
// that got a 200 is in both tables, exactly once.
func TestKill9UnderLoadLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	env := map[string]string{"DATABASE_URL": db}
	first := startServer(t, "crash-1", env, 30*time.Second)
	in, u := first.setup(t, "Crash Safety")

	began := time.Now()
	l := startLoad(u.URL, "crash", 16)
	// Kill mid-stream: after ~2 s of load, at a moment requests are in flight.
	waitFor(t, 15*time.Second, "2 s of load with acknowledged events", func() bool {
		return time.Since(began) > 2*time.Second && l.acked.Load() > 0
	})
	waitFor(t, 5*time.Second, "requests in flight", func() bool { return l.inflight.Load() >= 4 })
	inflight := l.inflight.Load()
	first.signal(t, syscall.SIGKILL)
	require.Equal(t, -1, first.wait(t, 10*time.Second), "SIGKILL ends the process")
	time.Sleep(100 * time.Millisecond) // the senders hit the dead port for a moment
	sum := summarize(t, l.stop())
	t.Logf("killed with %d requests in flight after %s: %s", inflight, time.Since(began).Round(time.Millisecond), sum)
	require.NotEmpty(t, sum.acked)
	require.Positive(t, sum.errors, "some requests must have been cut off by the kill")
	for status := range sum.byStatus {
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, status, "ingest answered %d under load", status)
	}

	second := startServer(t, "crash-2", env, 30*time.Second)
	a := post(u.on(second), mustJSON(emailEvent("after-restart")), 10*time.Second)
	require.NoError(t, a.Err)
	require.Equal(t, http.StatusOK, a.Status, string(a.Body))
	requireStored(t, db, in.Schema, append(sum.acked, "after-restart"))
}
