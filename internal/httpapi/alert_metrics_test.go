package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// The series deploy/prometheus/alerts.yml needs (issue 19): each
// integration's last committed delivery, posts to revoked URLs by
// integration (answered exactly like an unknown token), and whether the
// database answers.
func TestMetricsForAlerts(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Alert Metrics")
	last := fmt.Sprintf(`cioloader_integration_last_event_timestamp_seconds{integration=%q}`, in.Schema)
	revoked := fmt.Sprintf(`cioloader_revoked_url_posts_total{integration=%q}`, in.Schema)
	require.Zero(t, hostileMetric(t, app, last), "no delivery yet")

	before := time.Now()
	status, body := app.Post(t, u.URL, `{"event_id":"alert-1","object_type":"email","metric":"sent","timestamp":1700000000}`)
	require.Equal(t, http.StatusOK, status, string(body))
	at := hostileMetric(t, app, last)
	require.InDelta(t, float64(before.UnixMilli())/1000, at, 2, "the last delivery's time")

	// A refused delivery does not move it.
	status, _ = app.Post(t, u.URL, `not json`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, at, hostileMetric(t, app, last))

	unknownURL := app.URL + "/v1/webhooks/whk_" + strings.Repeat("A", 43)
	status, unknown := app.Post(t, unknownURL, `{"event_id":"alert-2"}`)
	require.Equal(t, http.StatusNotFound, status)
	require.Zero(t, hostileMetric(t, app, revoked), "an unknown token is nobody's")

	status, _ = app.Admin(t, http.MethodDelete, fmt.Sprintf("/v1/integrations/%d/webhook-urls/%d", u.IntegrationID, u.ID), nil)
	require.Equal(t, http.StatusNoContent, status)
	for i := 1; i <= 2; i++ {
		status, body := app.Post(t, u.URL, `{"event_id":"alert-2"}`)
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, string(unknown), string(body), "a revoked URL answers exactly like an unknown one")
		require.EqualValues(t, i, hostileMetric(t, app, revoked))
	}

	// A deleted integration's URLs count as revoked too.
	in2, u2 := app.Setup(t, "Alert Deleted")
	status, _ = app.Admin(t, http.MethodDelete, fmt.Sprintf("/v1/integrations/%d", in2.ID), nil)
	require.Equal(t, http.StatusNoContent, status)
	status, body = app.Post(t, u2.URL, `{"event_id":"alert-3"}`)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, string(unknown), string(body))
	require.EqualValues(t, 1, hostileMetric(t, app, fmt.Sprintf(`cioloader_revoked_url_posts_total{integration=%q}`, in2.Schema)))

	deadline := time.Now().Add(5 * time.Second)
	for hostileMetric(t, app, "cioloader_database_up") != 1 {
		require.True(t, time.Now().Before(deadline), "cioloader_database_up is not 1 with the database answering")
		time.Sleep(50 * time.Millisecond)
	}
}
