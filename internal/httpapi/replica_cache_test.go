package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/config"
)

// Ensure a replica learns of columns another replica added (NOTIFY), so a
// newer copy of an event still replaces the whole row there: a column the
// new copy lacks becomes NULL instead of keeping the old value.
func TestReplicaSeesColumnsAddedElsewhere(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t)
	b := apptest.StartOn(t, a.DatabaseURL)
	_, u := a.Setup(t, "Two Caches")
	urlOnB := b.URL + "/v1/webhooks/" + u.Token

	status, body := b.Post(t, urlOnB, `{"event_id":"warm","k":1}`) // B caches the table's shape
	require.Equal(t, http.StatusOK, status, string(body))
	status, body = a.Post(t, u.URL, `{"event_id":"e1","x":"old"}`) // A adds column x
	require.Equal(t, http.StatusOK, status, string(body))

	conn := a.DB(t)
	var x *string
	require.Eventually(t, func() bool {
		status, _ := b.Post(t, urlOnB, `{"event_id":"e1","k":2}`) // a newer copy without x, through B
		if status != http.StatusOK {
			return false
		}
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT x FROM two_caches.data WHERE event_id = 'e1'`).Scan(&x))
		return x == nil
	}, 5*time.Second, 50*time.Millisecond, "replica B kept writing with a stale column list")
}

// Ensure a URL revoked on one replica is refused by another at once, through
// NOTIFY: replica B trusts a token look-up for an hour here, so its cache
// running out cannot be what makes it answer 404.
func TestReplicaSeesRevocationByNotify(t *testing.T) {
	t.Parallel()
	hour := func(c *config.Config) { c.TokenCacheTTL = time.Hour }
	a := apptest.Start(t, hour)
	b := apptest.StartOn(t, a.DatabaseURL, hour)
	in, u := a.Setup(t, "Revoke Elsewhere")
	urlOnB := b.URL + "/v1/webhooks/" + u.Token

	status, body := b.Post(t, urlOnB, `{"event_id":"cached"}`) // B caches the token
	require.Equal(t, http.StatusOK, status, string(body))
	status, body = a.Admin(t, http.MethodDelete, fmt.Sprintf("/v1/integrations/%d/webhook-urls/%d", in.ID, u.ID), nil)
	require.Equal(t, http.StatusNoContent, status, string(body))

	deadline := time.Now().Add(2 * time.Second)
	for {
		status, body = b.Post(t, urlOnB, `{"event_id":"after-revoke"}`)
		if status == http.StatusNotFound || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, http.StatusNotFound, status, "replica B still accepts a URL revoked on A 2s ago: %s", body)
}
