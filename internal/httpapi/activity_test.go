package httpapi_test

// Events received per hour, by object type and event name, from the activity
// counters kept at ingest (issue 13).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/apptest"
)

func getActivity(t *testing.T, app *apptest.App, id int64, query string) admin.Activity {
	t.Helper()
	status, body := app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d/activity%s", id, query), nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var a admin.Activity
	require.NoError(t, json.Unmarshal(body, &a), string(body))
	return a
}

// listed is an integration as GET /v1/integrations and GET /v1/integrations/{id} show it.
type listed struct {
	ID             int64      `json:"id"`
	Events24h      *int64     `json:"events_24h"`
	LastReceivedAt *time.Time `json:"last_received_at"`
}

func listIntegrations(t *testing.T, app *apptest.App) map[int64]listed {
	t.Helper()
	status, body := app.Admin(t, http.MethodGet, "/v1/integrations", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var list []listed
	require.NoError(t, json.Unmarshal(body, &list), string(body))
	out := map[int64]listed{}
	for _, in := range list {
		out[in.ID] = in
	}
	return out
}

// Ensure committed events are counted by hour, object type and event name
// (legacy bodies split, rejected objects left out), every hour of the window
// is present, and the list shows the last 24 hours and the last-received
// time; a second replica reads the same.
func TestActivityAPI(t *testing.T) {
	skipShort(t) // waits for a flush
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Active")
	quiet := app.CreateIntegration(t, "Quiet")
	start := time.Now()

	status, body := app.Post(t, u.URL, `[{"event_id":"1","object_type":"email","metric":"opened"},
		{"event_id":"2","object_type":"email","metric":"opened"},{"event_id":"3","object_type":"push","metric":"sent"},
		{"no_event_id":true}]`)
	require.Equal(t, http.StatusOK, status, string(body))
	status, body = app.Post(t, u.URL, `{"event_id":"4","event_type":"email_opened"}`)
	require.Equal(t, http.StatusOK, status, string(body))
	status, _ = app.Post(t, u.URL, `not json`)
	require.Equal(t, http.StatusBadRequest, status)

	var a admin.Activity
	require.Eventually(t, func() bool {
		a = getActivity(t, app, in.ID, "")
		return a.Total == 4
	}, 10*time.Second, 50*time.Millisecond, "flushed: %+v", a)
	require.Equal(t, 24, a.Hours)
	require.Len(t, a.Buckets, 24)
	for i, b := range a.Buckets {
		require.Equal(t, a.From.Add(time.Duration(i)*time.Hour), b.Hour, "every hour, oldest first")
	}
	require.Equal(t, a.From.Add(24*time.Hour), a.To)
	require.WithinRange(t, a.To, time.Now(), time.Now().Add(time.Hour), "the window ends with the current hour")
	var busy []admin.ActivityBucket
	for _, b := range a.Buckets {
		if b.Count != 0 {
			busy = append(busy, b)
		}
	}
	require.Len(t, busy, 1, "zeros elsewhere")
	require.WithinRange(t, busy[0].Hour, start.Truncate(time.Hour), time.Now())
	require.Equal(t, map[string]int64{"email": 3, "push": 1}, busy[0].ByObjectType)
	require.Equal(t, []admin.ObjectTypeCount{{ObjectType: "email", Count: 3}, {ObjectType: "push", Count: 1}}, a.ObjectTypes)
	require.Len(t, a.Events, 2)
	require.Equal(t, "Email Opened", a.Events[0].Event)
	require.EqualValues(t, 3, a.Events[0].Count)
	require.Equal(t, "Push Sent", a.Events[1].Event)
	require.WithinRange(t, a.Events[0].LastAt, start.Add(-time.Second), time.Now())

	require.Len(t, getActivity(t, app, in.ID, "?hours=1").Buckets, 1)
	week := getActivity(t, app, in.ID, "?hours=720")
	require.Len(t, week.Buckets, 720)
	require.EqualValues(t, 4, week.Total)

	list := listIntegrations(t, app)
	require.NotNil(t, list[in.ID].Events24h)
	require.EqualValues(t, 4, *list[in.ID].Events24h)
	require.NotNil(t, list[in.ID].LastReceivedAt)
	require.WithinRange(t, *list[in.ID].LastReceivedAt, start.Add(-time.Second), time.Now())
	require.NotNil(t, list[quiet.ID].Events24h, "events_24h is always present")
	require.Zero(t, *list[quiet.ID].Events24h)
	require.Nil(t, list[quiet.ID].LastReceivedAt, "null when nothing was received")

	status, body = app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d", in.ID), nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var one listed
	require.NoError(t, json.Unmarshal(body, &one))
	require.EqualValues(t, 4, *one.Events24h)
	require.Equal(t, list[in.ID].LastReceivedAt.UTC(), one.LastReceivedAt.UTC())

	second := apptest.StartOn(t, app.DatabaseURL)
	require.EqualValues(t, 4, getActivity(t, second, in.ID, "").Total, "the counts are in the database")
}

// Ensure a bad window is a 400 that gives the range, an unknown integration a
// 404, and an integration without events a full window of zeros.
func TestActivityAPIValidation(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in := app.CreateIntegration(t, "Fresh")
	for _, q := range []string{"0", "721", "-1", "abc", "1.5", "24h"} {
		status, body := app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d/activity?hours=%s", in.ID, q), nil)
		require.Equal(t, http.StatusBadRequest, status, "hours=%s: %s", q, body)
		require.Contains(t, string(body), "hours must be a whole number between 1 and 720", q)
	}
	for _, path := range []string{"/v1/integrations/999999/activity", "/v1/integrations/abc/activity"} {
		status, body := app.Admin(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusNotFound, status, "%s: %s", path, body)
		require.Contains(t, string(body), "does not exist", path)
	}
	status, body := app.Do(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d/activity", in.ID), nil, nil)
	require.Equal(t, http.StatusUnauthorized, status, string(body))

	a := getActivity(t, app, in.ID, "?hours=48")
	require.Len(t, a.Buckets, 48)
	require.Zero(t, a.Total)
	for _, b := range a.Buckets {
		require.Zero(t, b.Count)
		require.NotNil(t, b.ByObjectType)
	}
	require.Equal(t, []admin.ObjectTypeCount{}, a.ObjectTypes)
	require.Equal(t, []admin.EventCount{}, a.Events)
	status, body = app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d/activity", in.ID), nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"object_types":[]`, "lists are [] not null")
	require.Contains(t, string(body), `"by_object_type":{}`)
}
