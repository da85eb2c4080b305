package e2e

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/pgcluster"
	"github.com/cioloader/cioloader/internal/testdb"
)

// commitDeadline is CIOLOADER_COMMIT_DEADLINE in the outage tests.
const commitDeadline = time.Second

// SPEC 3.1 and 10.3: with the database down, ingest answers 503 with
// Retry-After (never 500, never a hang) and /readyz 503; the process stays up
// and recovers by itself when the database is back. A commit that outlives
// the deadline is a 503 too.
//
// Not parallel: it stops the package's shared Postgres (testdb.Server), so it
// must run while no other test uses it; parallel tests start after it.
func TestDatabaseOutage(t *testing.T) {
	_, cluster := testdb.Server(t)
	if cluster == nil {
		t.Skip("needs the local test cluster to stop and start it (TEST_DATABASE_URL or Docker is in use)")
	}
	db := testdb.New(t)
	s := startServer(t, "outage", map[string]string{
		"DATABASE_URL":              db,
		"CIOLOADER_COMMIT_DEADLINE": commitDeadline.String(),
	}, 30*time.Second)
	in, u := s.setup(t, "Outage")

	l := startLoad(u.URL, "outage", 4)
	defer l.stop()
	waitFor(t, 10*time.Second, "acknowledged events before the outage", func() bool { return l.acked.Load() >= 20 })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Whatever happens below, the other tests need the server back.
	t.Cleanup(func() { startCluster(t, cluster) })
	require.NoError(t, cluster.Stop(ctx))
	downAt := time.Now()

	// While it is down (longer than the token cache's 1 s TTL, so token
	// look-ups hit the database too): 503 + Retry-After, fast, on ingest and
	// /readyz, and the process stays up.
	probes := 0
	var slowest time.Duration
	for time.Since(downAt) < 3*time.Second {
		a := post(u.URL, mustJSON(emailEvent("probe-down")), 6*time.Second)
		require.NoError(t, a.Err, "ingest must answer while the database is down")
		require.Equal(t, http.StatusServiceUnavailable, a.Status, string(a.Body))
		require.NotEmpty(t, a.Header.Get("Retry-After"), "503 without Retry-After")
		require.Less(t, a.Took, 5*time.Second)
		slowest = max(slowest, a.Took)
		status, _ := s.get("/readyz")
		require.Equal(t, http.StatusServiceUnavailable, status, "/readyz while the database is down")
		require.False(t, s.hasExited(), "the process must survive the outage")
		probes++
		time.Sleep(100 * time.Millisecond)
	}
	l.pause(t)
	upAt := time.Now()
	startCluster(t, cluster)
	l.resume()
	t.Logf("database down for %s: %d probes answered 503, slowest in %s",
		time.Since(downAt).Round(time.Millisecond), probes, slowest.Round(time.Millisecond))

	// Recovery without a restart: 200 within 15 s.
	for {
		a := post(u.URL, mustJSON(emailEvent("probe-up")), 6*time.Second)
		require.NoError(t, a.Err)
		if a.Status == http.StatusOK {
			break
		}
		require.Equal(t, http.StatusServiceUnavailable, a.Status, string(a.Body))
		require.Less(t, time.Since(upAt), 15*time.Second, "ingest still answers 503 15 s after the database came back")
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ingest recovered %s after the database came back", time.Since(upAt).Round(time.Millisecond))
	waitFor(t, 5*time.Second, "/readyz 200", func() bool { status, _ := s.get("/readyz"); return status == http.StatusOK })
	acked := l.acked.Load()
	waitFor(t, 10*time.Second, "the senders to be acknowledged again", func() bool { return l.acked.Load() > acked })

	results := l.stop()
	sum := summarize(t, results)
	t.Logf("senders: %s", sum)
	require.Zero(t, sum.errors, "every request is answered")
	require.Less(t, sum.slowest, 5*time.Second)
	for _, r := range results {
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, r.Status, string(r.Body))
		if r.Status == http.StatusServiceUnavailable {
			require.NotEmpty(t, r.Header.Get("Retry-After"), "503 without Retry-After")
		}
		if r.Start.After(downAt) && r.Start.Add(r.Took).Before(upAt) {
			require.Equal(t, http.StatusServiceUnavailable, r.Status, "answered while the database was down")
		}
	}
	requireStored(t, db, in.Schema, append(sum.acked, "probe-up"))

	t.Run("commit outlives the deadline", func(t *testing.T) {
		commitOutlivesDeadline(t, s, db, in, u)
	})
	// The revocation listener reconnected after the outage: a URL revoked by
	// another process (the CLI) stops working here at once. The token is
	// looked up afresh just before, so the cache's 1 s TTL alone would keep
	// it working for most of a second: only the notification passes 500 ms.
	t.Run("revocation after the outage", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // let the cached look-up expire
		a := post(u.URL, mustJSON(emailEvent("before-revoke")), 5*time.Second)
		require.Equal(t, http.StatusOK, a.Status, string(a.Body))
		runCLI(t, map[string]string{"DATABASE_URL": db}, "urls", "revoke", strconv.FormatInt(u.ID, 10))
		requireNotFoundWithin(t, u.URL, 500*time.Millisecond)
	})
	require.False(t, s.hasExited())
}

// startCluster starts the stopped test cluster again. pgcluster's start
// fails when a client connects while the server starts up (it takes the
// client's "FATAL: the database system is starting up" in the server log
// for its own failure), so the senders are paused around it and a start
// that fails that way is tried again.
func startCluster(t *testing.T, cluster *pgcluster.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := cluster.Start(ctx)
		if err == nil || attempt == 5 || !strings.Contains(err.Error(), "the database system is starting up") {
			require.NoError(t, err, "restart the test cluster")
			return
		}
		t.Logf("test cluster start failed because a client connected during startup; trying again")
	}
}

// commitOutlivesDeadline holds an ACCESS EXCLUSIVE lock on <schema>.data
// from another connection: a post answers 503 once its deadline passes, and
// posts succeed again as soon as the lock is released.
func commitOutlivesDeadline(t *testing.T, s *server, db string, in integration, u webhookURL) {
	release := lockTable(t, db, in.Schema, "data")
	a := post(u.URL, mustJSON(emailEvent("locked")), 10*time.Second)
	require.NoError(t, a.Err)
	t.Logf("with data locked: %d after %s", a.Status, a.Took.Round(time.Millisecond))
	require.Equal(t, http.StatusServiceUnavailable, a.Status, string(a.Body))
	require.NotEmpty(t, a.Header.Get("Retry-After"))
	require.Less(t, a.Took, commitDeadline+time.Second, "503 within the commit deadline plus 1 s")
	require.GreaterOrEqual(t, a.Took, commitDeadline*9/10, "the request waited for its commit until the deadline")

	release()
	releasedAt := time.Now()
	for {
		a := post(u.URL, mustJSON(emailEvent("unlocked")), 10*time.Second)
		require.NoError(t, a.Err)
		if a.Status == http.StatusOK {
			break
		}
		require.Less(t, time.Since(releasedAt), 5*time.Second, "posts still fail after the lock was released: %d %s", a.Status, a.Body)
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("posts succeed %s after the lock was released", time.Since(releasedAt).Round(time.Millisecond))
	requireStored(t, db, in.Schema, []string{"unlocked"})
	require.False(t, s.hasExited())
}

// requireNotFoundWithin posts to target every 50 ms until it answers 404 and
// fails unless that happens within d of the call.
func requireNotFoundWithin(t *testing.T, target string, d time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		r := post(target, mustJSON(emailEvent("after-revoke")), 5*time.Second)
		require.NoError(t, r.Err)
		elapsed := time.Since(began)
		if r.Status == http.StatusNotFound {
			t.Logf("404 %s after the revocation", elapsed.Round(time.Millisecond))
			require.Less(t, elapsed, d, "a revoked token was accepted for too long")
			return elapsed
		}
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		require.Less(t, elapsed, d, "a revoked token is still accepted")
		time.Sleep(50 * time.Millisecond)
	}
}
