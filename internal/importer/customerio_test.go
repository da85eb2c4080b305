package importer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/cioapi"
	"github.com/cioloader/cioloader/internal/cioapi/cioapitest"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/history"
	"github.com/cioloader/cioloader/internal/importer"
)

const appKey = "app-api-key-0123456789"

// now is the App API's "now" in these tests: the document's example delivery
// (April 2021) falls inside the 13 months before it.
var now = time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)

// workspace is a stand-in App API holding n generated deliveries created over
// the 13 months before now, and the document's own example.
func workspace(t *testing.T, n int) (*cioapitest.Server, []map[string]any) {
	t.Helper()
	ds := append(cioapitest.Generate(n, 7, now.AddDate(0, -13, 0), now.Add(-time.Hour)), cioapitest.DocExample())
	srv := cioapitest.New(cioapitest.Options{Key: appKey, Deliveries: ds, Now: func() time.Time { return now }})
	t.Cleanup(srv.Close)
	return srv, ds
}

// setupAt is setup with the importer's clock at now.
func setupAt(t *testing.T) *testBundle {
	t.Helper()
	b := setup(t)
	b.im.Now = func() time.Time { return now }
	return b
}

func client(t *testing.T, srv *cioapitest.Server, key string) *cioapi.Client {
	t.Helper()
	c, err := cioapi.New(cioapi.Config{BaseURL: srv.URL, Key: key, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	require.NoError(t, err)
	return c
}

// roundTrip is a delivery as the client decodes it (JSON, numbers as json.Number).
func roundTrip(t *testing.T, d map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(d)
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var out map[string]any
	require.NoError(t, dec.Decode(&out))
	return out
}

// expected are the event_ids an import of ds must store: one per recorded
// reporting-webhook metric of every delivery not forgotten.
func expected(t *testing.T, ds []map[string]any, skip func(map[string]any) bool) map[string]history.Occurrence {
	t.Helper()
	out := map[string]history.Occurrence{}
	for _, d := range ds {
		if skip != nil && skip(d) {
			continue
		}
		m, err := history.Map(roundTrip(t, d))
		require.NoError(t, err)
		for _, e := range m.Events {
			out[history.EventID(e.Occurrence)] = e.Occurrence
		}
	}
	return out
}

func (b *testBundle) ids(t *testing.T, table string) map[string]bool {
	t.Helper()
	rows, err := b.conn.Query(context.Background(), "SELECT event_id FROM "+b.in.Schema+"."+table)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		out[id] = true
	}
	require.NoError(t, rows.Err())
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestImportCustomerIO: a year of history walked back in 6-month windows of
// pages of 1000, under 10 requests a second, every recorded metric one event in
// every table, told apart from webhook events; run again, nothing changes.
func TestImportCustomerIO(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, ds := workspace(t, 2500)
	ctx := context.Background()
	var last importer.Status
	imp, err := b.im.CustomerIO(ctx, b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us"}, func(st importer.Status) { last = st })
	require.NoError(t, err)
	require.Equal(t, domain.ImportDone, imp.State)

	want := expected(t, ds, func(d map[string]any) bool { return d["forgotten"] == true })
	require.Equal(t, keys(want), keys(b.ids(t, "data")), "data holds one event per recorded metric")
	require.Equal(t, keys(want), keys(b.ids(t, "rudder_events")))
	require.EqualValues(t, len(want), imp.EventsWritten)
	require.EqualValues(t, len(ds), imp.Deliveries)
	require.Positive(t, imp.Skipped["forgotten"])
	require.Positive(t, imp.Skipped["no_reporting_events"], "live_notification deliveries")
	require.Equal(t, imp.ImportCounts, last.ImportCounts, "the progress bar saw the final counts")

	// Within the document's limits.
	for _, r := range srv.Ranges() {
		require.False(t, time.Unix(r[0], 0).Before(time.Unix(r[1], 0).AddDate(0, -6, 0)), "window %v over 6 months", r)
	}
	for _, l := range srv.Limits() {
		require.Equal(t, 1000, l)
	}
	require.LessOrEqual(t, srv.MaxInOneSecond(), 10)
	require.Zero(t, srv.RateLimited())
	require.NotNil(t, imp.RangeStart, "the walk back found where the history starts")
	require.True(t, imp.RangeStart.Before(time.Unix(1619137767, 0)), "the document's example is inside the range")

	// The document's example: its two metrics, with the webhook's data fields.
	doc := history.EventID(history.Occurrence{DeliveryID: "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=", ObjectType: "email", Metric: "delivered", Timestamp: 1619137768})
	var metric, source, email, campaign, event *string
	require.NoError(t, b.conn.QueryRow(ctx, `SELECT e.metric, e.source, e.email, e.campaign_id, r.event
		FROM stitch_customerio.events e JOIN stitch_customerio.rudder_events r USING (event_id) WHERE e.event_id = $1`, doc).
		Scan(&metric, &source, &email, &campaign, &event))
	str := func(p *string) string {
		if p == nil {
			return "<NULL>"
		}
		return *p
	}
	require.Equal(t, []string{"delivered", history.Source, "person@example.com", "23", "Email Delivered"},
		[]string{str(metric), str(source), str(email), str(campaign), str(event)})
	var mark string
	require.NoError(t, b.conn.QueryRow(ctx, `SELECT context->'cioloader_import'->>'source' FROM stitch_customerio.rudder_events WHERE event_id = $1`, doc).Scan(&mark))
	require.Equal(t, history.Source, mark, "rudder_events tells an imported event apart")
	var imported, action int64
	require.NoError(t, b.conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE cioloader_import__source IS NOT NULL), max(data__action_id)
		FROM stitch_customerio.data WHERE data__delivery_id = 'ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek='`).Scan(&imported, &action))
	require.EqualValues(t, 2, imported, "data tells an imported event apart")
	require.EqualValues(t, 215, action)

	// Run again: nothing new is written.
	before := b.tableCounts(t)
	again, err := b.im.CustomerIO(ctx, b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us"}, nil)
	require.NoError(t, err)
	require.NotEqual(t, imp.ID, again.ID)
	require.Zero(t, again.EventsWritten)
	require.EqualValues(t, len(want), again.EventsExisting)
	require.Equal(t, before, b.tableCounts(t))

	// Listed for operators, over the admin API.
	status, body := b.app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d/imports", b.in.ID), nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var list []domain.Import
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list, 2)
	require.Equal(t, domain.ImportCustomerIO, list[1].Source)
	require.EqualValues(t, len(want), list[1].EventsWritten)
	require.NotEmpty(t, list[1].Units)
}

// TestImportRefusedKey: a wrong key stops the import at the first request,
// with the cause named, and nothing written (not even the import's row).
func TestImportRefusedKey(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, _ := workspace(t, 50)
	_, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, "wrong-key"), Region: "us"}, nil)
	require.ErrorIs(t, err, cioapi.ErrAuth)
	require.Contains(t, err.Error(), "401")
	require.Contains(t, err.Error(), "region")
	require.Equal(t, 1, srv.Requests(), "stopped at once")
	require.EqualValues(t, 0, b.count(t, "SELECT count(*) FROM cioloader.imports"))
	require.EqualValues(t, 0, b.count(t, "SELECT count(*) FROM stitch_customerio.data"))
}

// TestImportBacksOff: 429s and 5xx are retried with back-off; past the cap the
// import fails with a clear error and keeps its progress.
func TestImportBacksOff(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, ds := workspace(t, 300)
	srv.FailNext(http.StatusServiceUnavailable, 2)
	imp, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us"}, nil)
	require.NoError(t, err)
	require.EqualValues(t, srv.Requests(), imp.Requests, "retried requests are counted")
	require.EqualValues(t, len(expected(t, ds, func(d map[string]any) bool { return d["forgotten"] == true })), imp.EventsWritten)

	b2 := setupAt(t)
	srv.FailNext(http.StatusTooManyRequests, 1000)
	c, err := cioapi.New(cioapi.Config{BaseURL: srv.URL, Key: appKey, Retries: 3, Backoff: 10 * time.Millisecond})
	require.NoError(t, err)
	_, err = b2.im.CustomerIO(context.Background(), b2.in, importer.CustomerIO{API: c, Region: "us"}, nil)
	require.ErrorContains(t, err, "gave up after 4 attempts")
	require.ErrorContains(t, err, "429")
}

// TestImportResumes: an import interrupted after its first page is continued by
// the same command from the saved cursor; every event ends up stored once.
func TestImportResumes(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, ds := workspace(t, 2500)
	ctx, cancel := context.WithCancel(context.Background())
	pages := 0
	imp, err := b.im.CustomerIO(ctx, b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us"}, func(importer.Status) {
		if pages++; pages == 1 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, domain.ImportInterrupted, imp.State)
	firstRun := srv.Requests()

	resumed, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us"}, nil)
	require.NoError(t, err)
	require.Equal(t, imp.ID, resumed.ID)
	require.Equal(t, domain.ImportDone, resumed.State)
	want := expected(t, ds, func(d map[string]any) bool { return d["forgotten"] == true })
	require.Equal(t, keys(want), keys(b.ids(t, "data")))
	require.EqualValues(t, len(want), resumed.EventsWritten+resumed.EventsExisting)

	full := setupAt(t)
	srv2, _ := workspace(t, 2500)
	_, err = full.im.CustomerIO(context.Background(), full.in, importer.CustomerIO{API: client(t, srv2, appKey), Region: "us"}, nil)
	require.NoError(t, err)
	require.Equal(t, srv2.Requests(), srv.Requests()-firstRun+1, "the resumed run re-read only the page it was on (the first, fetched again)")
}

// TestImportKeepsToRetention: with a retention window, the import does not
// read history the pruner would delete at once.
func TestImportKeepsToRetention(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, ds := workspace(t, 600)
	days := 120
	b.in.RetentionDays = &days
	imp, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us"}, nil)
	require.NoError(t, err)
	floor := now.AddDate(0, 0, -days)
	require.True(t, imp.RangeStart.Equal(floor), "range starts at the window: %v", imp.RangeStart)
	for _, r := range srv.Ranges() {
		require.GreaterOrEqual(t, r[0], floor.Unix())
	}
	recent := expected(t, ds, func(d map[string]any) bool {
		created, _ := d["created"].(int64)
		return d["forgotten"] == true || created < floor.Unix()
	})
	require.Len(t, b.ids(t, "data"), len(recent))
}
