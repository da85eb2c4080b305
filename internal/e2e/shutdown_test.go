package e2e

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/testdb"
)

// SPEC 10.4: SIGTERM under load stops accepting, finishes and answers the
// in-flight batches and exits 0; nothing acknowledged is lost, nothing gets
// a 500, and afterwards the port is closed.
func TestSIGTERMUnderLoadDrainsAndExitsZero(t *testing.T) {
	t.Parallel()
	t.Run("while batches commit", func(t *testing.T) {
		t.Parallel()
		sigtermUnderLoad(t, false)
	})
	// Every sender's request waits in a commit that SIGTERM arrives during:
	// the server must wait for those commits and answer each with 200.
	t.Run("while commits wait for a lock", func(t *testing.T) {
		t.Parallel()
		sigtermUnderLoad(t, true)
	})
}

const shutdownSenders = 16

func sigtermUnderLoad(t *testing.T, holdCommits bool) {
	db := testdb.New(t)
	env := map[string]string{"DATABASE_URL": db}
	if holdCommits {
		// Room for a slow machine: the held commits must not reach their deadline.
		env["CIOLOADER_COMMIT_DEADLINE"] = "10s"
	}
	s := startServer(t, "sigterm", env, 30*time.Second)
	in, u := s.setup(t, "Graceful Shutdown")

	began := time.Now()
	l := startLoad(u.URL, "term", shutdownSenders)
	defer l.stop()
	waitFor(t, 15*time.Second, "1 s of load with acknowledged events", func() bool {
		return time.Since(began) > time.Second && l.acked.Load() > 0
	})
	var release func()
	if holdCommits {
		release = lockTable(t, db, in.Schema, "data")
		// Every sender is blocked in a commit.
		waitFor(t, 5*time.Second, "every sender waiting for its commit", func() bool {
			return l.inflight.Load() == shutdownSenders
		})
		time.Sleep(100 * time.Millisecond)
	} else {
		waitFor(t, 5*time.Second, "requests in flight", func() bool { return l.inflight.Load() >= 4 })
	}
	inflight := l.inflight.Load()
	termAt := time.Now()
	s.signal(t, syscall.SIGTERM)
	if holdCommits {
		time.Sleep(300 * time.Millisecond)
		require.False(t, s.hasExited(), "the process exited before its in-flight commits were done")
		release()
	}
	code := s.wait(t, 10*time.Second)
	took := time.Since(termAt)
	results := l.stop()
	sum := summarize(t, results)
	t.Logf("SIGTERM with %d requests in flight; exit %d after %s; %s", inflight, code, took.Round(time.Millisecond), sum)

	require.Zero(t, code, "exit code after SIGTERM")
	require.Less(t, took, 5*time.Second, "time from SIGTERM to exit")
	require.Contains(t, s.stderr.String(), `"msg":"stopped"`)
	require.NotContains(t, s.stderr.String(), `"level":"ERROR"`)
	for status := range sum.byStatus {
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, status, "ingest answered %d during shutdown", status)
	}
	// Requests the server was handling at SIGTERM were answered, not cut off
	// (only requests sent after it may find the connection closed). With
	// held commits, each was read by the server long before SIGTERM, and its
	// commit could finish well within the deadline: it must be a 200.
	answered := 0
	for _, r := range results {
		if !r.Start.Before(termAt) || r.Err == nil && r.Start.Add(r.Took).Before(termAt) {
			continue
		}
		if holdCommits {
			require.NoError(t, r.Err, "a request waiting for its commit at SIGTERM was cut off")
			require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		}
		if r.Err == nil {
			answered++
		}
	}
	t.Logf("%d requests in flight at SIGTERM were answered", answered)
	if holdCommits {
		require.Equal(t, shutdownSenders, answered)
	}
	require.NotEmpty(t, sum.acked)
	requireStored(t, db, in.Schema, sum.acked)
	require.True(t, connRefused(s.Addr), "after exit, connections to %s are refused", s.Addr)
	status, _ := s.get("/healthz")
	require.Zero(t, status, "nothing answers after exit")
}

// lockTable takes ACCESS EXCLUSIVE on schema.table in a transaction of its
// own connection; release (idempotent) rolls it back.
func lockTable(t *testing.T, db, schema, table string) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, table}.Sanitize()+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, tx.Rollback(ctx))
		require.NoError(t, conn.Close(ctx))
	}
	t.Cleanup(release)
	return release
}
