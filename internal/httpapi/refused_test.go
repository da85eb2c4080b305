package httpapi_test

// Refused deliveries are counted per integration and reason, and only an
// accepted delivery moves a URL's "Last used" (issue 13).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/config"
)

type detailView struct {
	Refused map[string]struct {
		Count  int64     `json:"count"`
		LastAt time.Time `json:"last_at"`
	} `json:"refused"`
	URLs []struct {
		LastUsedAt *time.Time `json:"last_used_at"`
	} `json:"webhook_urls"`
}

func detail(t *testing.T, app *apptest.App, id int64) detailView {
	t.Helper()
	status, body := app.Admin(t, http.MethodGet, "/v1/integrations/"+strconv.FormatInt(id, 10), nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var d detailView
	require.NoError(t, json.Unmarshal(body, &d), string(body))
	return d
}

// waitRefused waits for the flushed count of reason to reach n and returns its last_at.
func waitRefused(t *testing.T, app *apptest.App, id int64, reason string, n int64) time.Time {
	t.Helper()
	var d detailView
	require.Eventually(t, func() bool {
		d = detail(t, app, id)
		return d.Refused[reason].Count == n
	}, 10*time.Second, 50*time.Millisecond, "refused %s: %+v", reason, d.Refused)
	return d.Refused[reason].LastAt
}

// Ensure each reason a resolved delivery is refused for is counted with its
// last time, and that unknown tokens count nowhere.
func TestRefusedDeliveriesCountedByReason(t *testing.T) {
	skipShort(t)
	t.Parallel()
	app := apptest.Start(t, func(c *config.Config) {
		c.MaxBodyBytes, c.MaxEvents, c.BodyTimeout = 4096, 2, 300*time.Millisecond
	})
	in, u := app.Setup(t, "Refusals")
	start := time.Now()

	status, _ := app.Post(t, u.URL, "not json")
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = app.Post(t, u.URL, `[{"event_id":"a"},{"event_id":"b"},{"event_id":"c"}]`)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = app.Post(t, u.URL, `{"event_id":"a","pad":"`+strings.Repeat("x", 5000)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	status, _ = app.Post(t, u.URL, "also not json")
	require.Equal(t, http.StatusBadRequest, status)
	// A body that stops arriving: 503 at the body timeout.
	target, err := url.Parse(u.URL)
	require.NoError(t, err)
	_, line := slowSocket(t, target.Host, target.Path, 100, 1, 2*time.Second)
	require.Contains(t, line, " 503 ")
	// An unknown token has no integration.
	status, _ = app.Post(t, app.URL+"/v1/webhooks/whk_"+strings.Repeat("a", 43), "nope")
	require.Equal(t, http.StatusNotFound, status)

	for reason, n := range map[string]int64{"not_json": 2, "too_many_events": 1, "too_large": 1, "unavailable": 1} {
		at := waitRefused(t, app, in.ID, reason, n)
		require.WithinRange(t, at, start.Add(-time.Second), time.Now(), reason)
	}
	d := detail(t, app, in.ID)
	require.Len(t, d.Refused, 4, "no signature refusal without a signing key: %+v", d.Refused)
	require.Nil(t, d.URLs[0].LastUsedAt, "no delivery was accepted")

	_, metrics := app.Do(t, http.MethodGet, "/metrics", nil, nil)
	require.Contains(t, string(metrics), `cioloader_deliveries_refused_total{integration="refusals",reason="not_json"} 2`)

	// The counts are in the database: a second replica reads the same.
	second := apptest.StartOn(t, app.DatabaseURL)
	require.EqualValues(t, 2, detail(t, second, in.ID).Refused["not_json"].Count)
}

// Ensure a delivery refused for its signature is counted and does not move
// "Last used"; an accepted one does.
func TestRefusedSignatureDoesNotMoveLastUsed(t *testing.T) {
	skipShort(t)
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Signed")
	const key = "signing-key-refusals"
	status, body := app.Admin(t, http.MethodPut, fmt.Sprintf("/v1/integrations/%d/signing-key", in.ID), map[string]string{"key": key})
	require.Equal(t, http.StatusNoContent, status, string(body))

	event := []byte(`{"event_id":"sig-1","object_type":"email","metric":"sent","timestamp":1700000000}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	status, _ = app.Do(t, http.MethodPost, u.URL, event, sigHeader(ts, sigHMAC("wrong key", ts, event)))
	require.Equal(t, http.StatusUnauthorized, status)
	waitRefused(t, app, in.ID, "signature", 1)
	time.Sleep(1500 * time.Millisecond) // past a last_used_at flush, which has its own ticker
	require.Nil(t, detail(t, app, in.ID).URLs[0].LastUsedAt, "a 401 must not move Last used")

	status, body = app.Do(t, http.MethodPost, u.URL, event, sigHeader(ts, sigHMAC(key, ts, event)))
	require.Equal(t, http.StatusOK, status, string(body))
	require.Eventually(t, func() bool { return detail(t, app, in.ID).URLs[0].LastUsedAt != nil },
		10*time.Second, 50*time.Millisecond, "an accepted delivery moves Last used")
	require.EqualValues(t, 1, detail(t, app, in.ID).Refused["signature"].Count)
}

type rejectionView struct {
	RejectedAt      time.Time `json:"rejected_at"`
	TableName       string    `json:"table_name"`
	Reason          string    `json:"reason"`
	Record          string    `json:"record"`
	RecordTruncated bool      `json:"record_truncated"`
}

// Ensure the rejections endpoint lists the newest _sdc_rejected rows with
// their reasons, records cut to 2 KB on a UTF-8 boundary, within its limit.
func TestRejectionsListed(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Rejections")
	path := fmt.Sprintf("/v1/integrations/%d/rejections", in.ID)
	list := func(query string) []rejectionView {
		t.Helper()
		status, body := app.Admin(t, http.MethodGet, path+query, nil)
		require.Equal(t, http.StatusOK, status, string(body))
		var out []rejectionView
		require.NoError(t, json.Unmarshal(body, &out), string(body))
		return out
	}
	require.Empty(t, list(""))

	long := `{"object_type":"` + strings.Repeat("é", 3000) + `"}` // 6,000 bytes, two per character
	status, body := app.Post(t, u.URL, `[{"object_type":"email"}]`)
	require.Equal(t, http.StatusOK, status, string(body))
	status, body = app.Post(t, u.URL, `[`+long+`]`)
	require.Equal(t, http.StatusOK, status, string(body))

	got := list("")
	require.Len(t, got, 2)
	require.Contains(t, got[0].Reason, "missing", "newest first")
	require.Equal(t, "data", got[0].TableName)
	require.WithinDuration(t, time.Now(), got[0].RejectedAt, time.Minute)
	require.True(t, got[0].RecordTruncated)
	require.LessOrEqual(t, len(got[0].Record), 2048)
	require.Greater(t, len(got[0].Record), 2040)
	require.True(t, strings.HasPrefix(long, got[0].Record), "cut on a character boundary")
	require.Equal(t, `{"object_type":"email"}`, got[1].Record)
	require.False(t, got[1].RecordTruncated)
	require.False(t, got[1].RejectedAt.After(got[0].RejectedAt))

	require.Len(t, list("?limit=1"), 1)
	for _, q := range []string{"?limit=0", "?limit=501", "?limit=-1", "?limit=x"} {
		status, body := app.Admin(t, http.MethodGet, path+q, nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, body)
	}
	require.Len(t, list("?limit=500"), 2)
	status, _ = app.Admin(t, http.MethodGet, "/v1/integrations/999999/rejections", nil)
	require.Equal(t, http.StatusNotFound, status)
}
