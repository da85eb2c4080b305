package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// Ensure the admin API's contract: auth, validation, conflicts, one-time tokens.
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)

	for _, h := range []http.Header{nil, {"Authorization": {"Bearer wrong"}}, {"Authorization": {"Basic x"}}} {
		status, body := app.Do(t, "GET", "/v1/integrations", nil, h)
		require.Equal(t, http.StatusUnauthorized, status, string(body))
	}

	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"name":"Stitch Customer.io"}`, 201, `"schema":"stitch_customerio"`},
		{`{"name":"stitch customerio"}`, 409, "already exists"},
		{`{"name":""}`, 400, "required"},
		{`{"name":"..."}`, 400, "empty"},
		{`{"name":"2fa events"}`, 400, "digit"},
		{`{"name":"Public"}`, 400, "reserved"},
		{`{"name":"pg_stuff"}`, 400, "reserved"},
		{`{"name":"cioloader"}`, 400, "reserved"},
		{`{"nam":"x"}`, 400, "unknown field"},
		{`not json`, 400, "JSON object"},
	} {
		status, body := app.Admin(t, "POST", "/v1/integrations", tc.body)
		require.Equal(t, tc.status, status, "%s: %s", tc.body, body)
		require.Contains(t, string(body), tc.want, tc.body)
	}

	status, body := app.Admin(t, "GET", "/v1/integrations", nil)
	require.Equal(t, 200, status)
	var list []map[string]any
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list, 1)
	id := int64(list[0]["id"].(float64))

	u := app.GenerateURL(t, id)
	require.True(t, strings.HasPrefix(u.URL, app.URL+"/v1/webhooks/whk_"), u.URL)
	require.True(t, strings.HasSuffix(u.URL, u.Token))

	status, body = app.Admin(t, "GET", fmt.Sprintf("/v1/integrations/%d", id), nil)
	require.Equal(t, 200, status)
	require.NotContains(t, string(body), u.Token, "the token is shown only once")
	require.Contains(t, string(body), `"webhook_urls"`)
	require.Contains(t, string(body), `"events":0`)

	status, body = app.Admin(t, "GET", fmt.Sprintf("/v1/integrations/%d/webhook-urls", id), nil)
	require.Equal(t, 200, status)
	require.NotContains(t, string(body), u.Token)
	require.Contains(t, string(body), u.Token[:10])

	for _, p := range []string{"/v1/integrations/999", "/v1/integrations/abc", "/v1/integrations/999/webhook-urls"} {
		status, body = app.Admin(t, "GET", p, nil)
		require.Equal(t, http.StatusNotFound, status, "%s: %s", p, body)
	}
	status, _ = app.Admin(t, "DELETE", fmt.Sprintf("/v1/integrations/%d/webhook-urls/999", id), nil)
	require.Equal(t, http.StatusNotFound, status)

	status, body = app.Admin(t, "PUT", fmt.Sprintf("/v1/integrations/%d/signing-key", id), `{"key":""}`)
	require.Equal(t, http.StatusBadRequest, status, string(body))
	status, _ = app.Admin(t, "PUT", fmt.Sprintf("/v1/integrations/%d/signing-key", id), `{"key":"secret"}`)
	require.Equal(t, http.StatusNoContent, status)
	status, body = app.Admin(t, "GET", fmt.Sprintf("/v1/integrations/%d", id), nil)
	require.Equal(t, 200, status)
	require.Contains(t, string(body), `"has_signing_key":true`)
	require.NotContains(t, string(body), "secret")
	status, _ = app.Admin(t, "DELETE", fmt.Sprintf("/v1/integrations/%d/signing-key", id), nil)
	require.Equal(t, http.StatusNoContent, status)

	// Deleting revokes every URL; the data stays.
	status, _ = app.Post(t, u.URL, `{"event_id":"before-delete"}`)
	require.Equal(t, 200, status)
	status, _ = app.Admin(t, "DELETE", fmt.Sprintf("/v1/integrations/%d", id), nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = app.Post(t, u.URL, `{"event_id":"after-delete"}`)
	require.Equal(t, http.StatusNotFound, status)
	require.EqualValues(t, 1, apptest.Count(t, app.DB(t), "stitch_customerio.data"))
	status, body = app.Admin(t, "POST", fmt.Sprintf("/v1/integrations/%d/webhook-urls", id), nil)
	require.Equal(t, http.StatusConflict, status, string(body))
}

// Ensure health, readiness and metrics answer.
func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	status, _ := app.Do(t, "GET", "/healthz", nil, nil)
	require.Equal(t, 200, status)
	status, body := app.Do(t, "GET", "/readyz", nil, nil)
	require.Equal(t, 200, status, string(body))
	_, u := app.Setup(t, "Metrics")
	status, _ = app.Post(t, u.URL, `[{"event_id":"m1","metric":"sent"},{"nope":1}]`)
	require.Equal(t, 200, status)
	status, body = app.Do(t, "GET", "/metrics", nil, nil)
	require.Equal(t, 200, status)
	for _, want := range []string{
		`cioloader_http_requests_total{route="/v1/webhooks/:token",status="200"} 1`,
		`cioloader_events_accepted_total{integration="metrics"} 1`,
		`cioloader_events_rejected_total{integration="metrics"} 1`,
		`cioloader_commit_seconds_bucket`,
		`cioloader_batch_events_bucket`,
		`cioloader_queue_depth`,
		`cioloader_schema_changes_total{integration="metrics",kind="column"}`,
	} {
		require.Contains(t, string(body), want)
	}
	require.NotContains(t, string(body), u.Token)
}
