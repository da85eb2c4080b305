package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/pgcluster"
)

// answerWithin is how long Customer.io waits for an answer.
const answerWithin = 4 * time.Second

// SPEC 10.13, issue 19: a failover of the database loses nothing
// acknowledged. A primary with a synchronous standby, two replicas on a
// multi-host DATABASE_URL (target_session_attrs=read-write) under 20 senders
// of single events. The standby is frozen (commits can no longer be
// confirmed), the primary is killed with kill -9 while it is frozen, then the
// standby is thawed and promoted, which makes it the host the URL finds.
// Every event that got a 200 is on the new primary, in both tables; no answer
// is a 500 or takes 4 s; /readyz is 503 in the gap; both replicas store events
// again within 5 s of the promotion without a restart, and a URL revoked
// afterwards stops working on the other replica within 1.5 s (its revocation
// listener is on the new primary: token look-ups are trusted for an hour).
func TestFailoverToSynchronousStandby(t *testing.T) {
	t.Parallel()
	rs := startReplicated(t)
	t.Run("a server given only the read-only standby refuses to start", func(t *testing.T) {
		refusesReadOnly(t, rs.standby)
	})

	env := map[string]string{"DATABASE_URL": failoverURL(rs), "CIOLOADER_TOKEN_CACHE_TTL": "1h"}
	a, b := spawn(t, "replica-a", env), spawn(t, "replica-b", env)
	for _, s := range []*server{a, b} {
		require.NoError(t, s.waitReady(30*time.Second), s.name)
	}
	in, u := a.setup(t, "Failover")
	spare := a.generateURL(t, in.ID) // revoked after the promotion
	la, lb := startSingles(u.on(a), "fo-a", 10), startSingles(u.on(b), "fo-b", 10)
	defer la.stop()
	defer lb.stop()
	began := time.Now()
	waitFor(t, 20*time.Second, "a second of acknowledged events on both replicas", func() bool {
		return time.Since(began) > time.Second && la.acked.Load() > 50 && lb.acked.Load() > 50
	})

	frozen := freeze(t, rs.standby)
	frozenAt := time.Now()
	time.Sleep(time.Second) // commits on the primary now wait for the standby
	killHard(t, rs.primary)
	killedAt := time.Now()
	gap := requireNotReady(t, 1500*time.Millisecond, a, b)
	thaw(frozen)
	promote(t, rs.standby)
	promotedAt := time.Now()
	t.Logf("standby frozen %s before the kill; promoted %s after it; /readyz probed %d times in the gap",
		killedAt.Sub(frozenAt).Round(time.Millisecond), promotedAt.Sub(killedAt).Round(time.Millisecond), gap)

	for _, s := range []*server{a, b} {
		took := recoverWithin(t, s, u, promotedAt, 5*time.Second)
		t.Logf("%s: ingest 200 again %s after the promotion", s.name, took.Round(time.Millisecond))
	}
	acked := la.acked.Load() + lb.acked.Load()
	waitFor(t, 5*time.Second, "the senders to be acknowledged again", func() bool { return la.acked.Load()+lb.acked.Load() > acked+100 })

	t.Run("revocation reaches the other replica through the new primary", func(t *testing.T) {
		// Past any reconnection of the listeners (each clears its cache), so
		// the look-up cached below can only be dropped by the notification.
		time.Sleep(time.Until(promotedAt.Add(3 * time.Second)))
		r := post(spare.on(b), mustJSON(emailEvent("spare-before-revoke")), answerWithin)
		require.NoError(t, r.Err)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body)) // cached on b for an hour
		rev := a.admin(t, http.MethodDelete, fmt.Sprintf("/v1/integrations/%d/webhook-urls/%d", in.ID, spare.ID), nil)
		require.Equal(t, http.StatusNoContent, rev.Status, string(rev.Body))
		requireNotFoundWithin(t, spare.on(b), 1500*time.Millisecond)
	})

	results := append(la.stop(), lb.stop()...)
	sum := summarize(t, results)
	t.Logf("senders: %s", sum)
	require.Zero(t, sum.errors, "every request is answered")
	require.Less(t, sum.slowest, answerWithin, "an answer took longer than Customer.io waits")
	require.Positive(t, sum.byStatus[http.StatusServiceUnavailable], "no 503 during the failover: was the primary really gone?")
	for _, r := range results {
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, r.Status, string(r.Body))
	}
	ids := append(sum.acked, "spare-before-revoke")
	for _, s := range []*server{a, b} {
		ids = append(ids, s.name+"-recover")
		require.False(t, s.hasExited(), s.name)
	}
	requireStored(t, rs.standby.TCPURL(pgcluster.DefaultDatabase), in.Schema, ids)
}

// failoverURL finds whichever of the two accepts writes.
func failoverURL(rs replicated) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		pgcluster.Superuser, rs.primary.Port(), rs.standby.Port(), pgcluster.DefaultDatabase)
}

// refusesReadOnly starts servers on the standby alone, with and without
// target_session_attrs: each must exit 1 with one line on stderr that says
// the database is read-only.
func refusesReadOnly(t *testing.T, standby *pgcluster.Cluster) {
	for _, db := range []string{standby.TCPURL(pgcluster.DefaultDatabase), standby.TCPURL(pgcluster.DefaultDatabase) + "&target_session_attrs=read-write"} {
		s := spawn(t, "on-standby", map[string]string{"DATABASE_URL": db, "CIOLOADER_LOG_FORMAT": "text"})
		require.Equal(t, 1, s.wait(t, 30*time.Second), "exit code")
		out := strings.TrimSpace(s.stderr.String())
		t.Logf("stderr: %s", out)
		require.NotContains(t, out, "\n", "one line")
		require.Contains(t, out, "read-only")
	}
}

// requireNotReady polls /readyz on each server for d: every answer must be a
// 503, within Customer.io's wait. It returns how many probes it made.
func requireNotReady(t *testing.T, d time.Duration, servers ...*server) int {
	t.Helper()
	probes := 0
	for began := time.Now(); time.Since(began) < d; probes++ {
		for _, s := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), answerWithin)
			r := do(ctx, http.MethodGet, s.URL+"/readyz", nil, nil)
			cancel()
			require.NoError(t, r.Err, "%s /readyz without the database", s.name)
			require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s /readyz without a primary", s.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return probes
}

// recoverWithin posts one event (id <name>-recover) to u on s until it is
// answered 200, which must happen within d of since; every other answer
// must be a 503. It returns how long after since the 200 came.
func recoverWithin(t *testing.T, s *server, u webhookURL, since time.Time, d time.Duration) time.Duration {
	t.Helper()
	for {
		r := post(u.on(s), mustJSON(emailEvent(s.name+"-recover")), answerWithin)
		require.NoError(t, r.Err, s.name)
		if r.Status == http.StatusOK {
			took := time.Since(since)
			require.Less(t, took, d, "%s stored events again too late", s.name)
			status, _ := s.get("/readyz")
			require.Equal(t, http.StatusOK, status, "%s /readyz after the promotion", s.name)
			return took
		}
		require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s: %s", s.name, r.Body)
		require.Less(t, time.Since(since), d, "%s still refuses events %s after the promotion", s.name, d)
		time.Sleep(50 * time.Millisecond)
	}
}
