package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
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
