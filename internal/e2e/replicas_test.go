package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Two server processes on one database, as a deployment with two replicas.
func TestTwoReplicasOnOneDatabase(t *testing.T) {
	t.Parallel()
	// An empty database, so both replicas migrate it as they start together.
	db := emptyDatabase(t)
	// Token look-ups are trusted for an hour, far past the test: only the
	// revocation notice (NOTIFY) can make a replica refuse a revoked URL.
	env := map[string]string{"DATABASE_URL": db, "CIOLOADER_TOKEN_CACHE_TTL": "1h"}
	a, b := spawn(t, "replica-a", env), spawn(t, "replica-b", env)
	for _, s := range []*server{a, b} {
		require.NoError(t, s.waitReady(30*time.Second), s.name)
	}

	t.Run("revocation reaches the other replica within 1s", func(t *testing.T) {
		revocationAcrossReplicas(t, a, b)
	})
	t.Run("concurrent schema evolution", func(t *testing.T) {
		concurrentEvolution(t, db, a, b)
	})
}

// SPEC 2: a URL made on one replica works on the other; revoking it on one
// takes effect on every replica within one second, for good.
func revocationAcrossReplicas(t *testing.T, a, b *server) {
	in, u := a.setup(t, "Replica Revoke")
	onB := u.on(b)
	writeKeyOnB := b.URL + "/v1/webhook?writeKey=" + u.Token
	for i, target := range []string{onB, writeKeyOnB, u.URL} {
		r := post(target, mustJSON(emailEvent("replica-"+strconv.Itoa(i))), 10*time.Second)
		require.NoError(t, r.Err)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", target, r.Body)
	}
	// B has the token cached (for an hour), so only the revocation notice can
	// make it answer 404 within 1s.
	r := post(onB, mustJSON(emailEvent("replica-last")), 10*time.Second)
	require.NoError(t, r.Err)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))

	rev := a.admin(t, http.MethodDelete, fmt.Sprintf("/v1/integrations/%d/webhook-urls/%d", in.ID, u.ID), nil)
	require.Equal(t, http.StatusNoContent, rev.Status, string(rev.Body))
	requireNotFoundWithin(t, onB, time.Second)

	// Revoked for good, on both replicas and both ingest paths.
	for _, target := range []string{onB, writeKeyOnB, u.URL, a.URL + "/v1/webhook?writeKey=" + u.Token} {
		r := post(target, mustJSON(emailEvent("revoked")), 5*time.Second)
		require.NoError(t, r.Err)
		require.Equal(t, http.StatusNotFound, r.Status, "%s: %s", target, r.Body)
	}
}
