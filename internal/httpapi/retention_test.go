package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// Ensure PATCH /v1/integrations/{id} sets and clears retention_days, GET shows
// it, and every bad value is a 400 that changes nothing.
func TestRetentionAPI(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in := app.CreateIntegration(t, "Retention API")
	path := fmt.Sprintf("/v1/integrations/%d", in.ID)
	require.Nil(t, in.RetentionDays, "none by default: keep everything")

	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"retention_days": 395}`, 200, `"retention_days":395`},
		{`{"retention_days": null}`, 200, `"retention_days":null`},
		{`{"retention_days": 1}`, 200, `"retention_days":1`},
		{`{"retention_days": 36500}`, 200, `"retention_days":36500`},
		{`{"retention_days": 0}`, 400, "from 1 to 36500"},
		{`{"retention_days": -30}`, 400, "from 1 to 36500"},
		{`{"retention_days": 36501}`, 400, "from 1 to 36500"},
		{`{"retention_days": 99999999999999999999}`, 400, "whole number"},
		{`{"retention_days": 1.5}`, 400, "whole number"},
		{`{"retention_days": 1e3}`, 400, "whole number"},
		{`{"retention_days": "30"}`, 400, "whole number"},
		{`{"retention_days": true}`, 400, "whole number"},
		{`{"retention_days": [30]}`, 400, "whole number"},
		{`{}`, 400, "nothing to change"},
		{`{"retention": 30}`, 400, `unknown setting \"retention\"`},
		{`{"retention_days": 30, "name": "x"}`, 400, `unknown setting \"name\"`},
		{`[]`, 400, "JSON object"},
		{`null`, 400, "JSON object"},
		{`not json`, 400, "JSON object"},
	} {
		status, body := app.Admin(t, http.MethodPatch, path, tc.body)
		require.Equal(t, tc.status, status, "%s: %s", tc.body, body)
		require.Contains(t, string(body), tc.want, tc.body)
		if status == 200 {
			require.Contains(t, string(body), `"schema":"retention_api"`, "200 with the integration")
		}
	}
	status, body := app.Admin(t, http.MethodGet, path, nil)
	require.Equal(t, 200, status)
	require.Contains(t, string(body), `"retention_days":36500`, "the last good value stays; the bad ones changed nothing")
	require.Contains(t, string(body), `"oldest_event_at":null`, "no event yet")

	status, body = app.Admin(t, http.MethodPatch, "/v1/integrations/9999", `{"retention_days": 30}`)
	require.Equal(t, 404, status, string(body))
	status, _ = app.Do(t, http.MethodPatch, path, `{"retention_days": 30}`, nil)
	require.Equal(t, 401, status)
}

// Ensure pruning goes on while events are posted: every post answers 200,
// nothing acknowledged is lost, nothing older than the window is left in any
// table (with deliveries shared by pruned and new events recomputed), and the
// metric counts the pruned events.
func TestRetentionPrunesWhilePosting(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Retention Shop")
	now := time.Now()
	const oldEvents, perPost = 6000, 500
	old := now.AddDate(0, 0, -400).Unix()
	for p := range oldEvents / perPost {
		events := make([]string, perPost)
		for i := range events {
			n := p*perPost + i
			events[i] = fmt.Sprintf(`{"event_id":"old-%d","object_type":"email","metric":"sent","timestamp":%d,
				"data":{"delivery_id":"d%d","campaign_id":1,"identifiers":{"id":"u%d"},"recipients":[{"id":1}]}}`, n, old, n, n%100)
		}
		status, body := app.Post(t, u.URL, "["+strings.Join(events, ",")+"]")
		require.Equal(t, 200, status, string(body))
	}
	status, body := app.Admin(t, http.MethodPatch, fmt.Sprintf("/v1/integrations/%d", in.ID), `{"retention_days": 395}`)
	require.Equal(t, 200, status, string(body))

	// Posters: each young event opens one of the old deliveries, so pruning
	// and ingest meet on delivery_facts rows.
	var acked, failed atomic.Int64
	var bad sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := w*1_000_000 + i
				body := fmt.Sprintf(`{"event_id":"new-%d","object_type":"email","metric":"opened","timestamp":%d,
					"data":{"delivery_id":"d%d","campaign_id":1,"identifiers":{"id":"u%d"}}}`, n, now.Unix(), n%oldEvents, n%100)
				resp, err := client.Post(u.URL, "application/json", bytes.NewReader([]byte(body)))
				if err != nil {
					failed.Add(1)
					bad.Store(err.Error(), true)
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					bad.Store(resp.Status, true)
					continue
				}
				acked.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	ackedBefore := acked.Load()
	start := time.Now()
	rep, err := app.Store.PruneExpired(context.Background(), time.Now())
	ackedDuring := acked.Load() - ackedBefore
	t.Logf("pruned %v in %s while %d posts were answered 200", rep.Events, time.Since(start).Round(time.Millisecond), ackedDuring)
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.Zero(t, failed.Load(), "posts failed while pruning: %v", keys(&bad))
	require.Positive(t, ackedDuring, "no post was answered while pruning")
	require.Equal(t, map[string]int64{"retention_shop": oldEvents}, rep.Events)

	conn := app.DB(t)
	for table, key := range map[string]string{"data": "event_id", "rudder_events": "event_id", "event_facts": "event_id", "data__data__recipients": "_sdc_source_key_event_id"} {
		var left, young int64
		require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FILTER (WHERE %s LIKE 'old-%%'), count(*) FROM retention_shop.%s`, key, table)).Scan(&left, &young))
		require.Zero(t, left, "%s keeps pruned events", table)
		if table != "data__data__recipients" {
			require.Equal(t, acked.Load(), young, "%s lost acknowledged events", table)
		}
	}
	var stale, opened int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) FILTER (WHERE opened_at IS NOT NULL)
		FROM retention_shop.delivery_facts`).Scan(&stale, &opened))
	require.Zero(t, stale, "a delivery keeps the time of a pruned event")
	var deliveries int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(DISTINCT delivery_id) FROM retention_shop.event_facts`).Scan(&deliveries))
	require.Equal(t, deliveries, opened, "every delivery with an event left keeps its row, and only those")

	status, body = app.Do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, 200, status)
	require.Contains(t, string(body), fmt.Sprintf(`cioloader_events_pruned_total{integration="retention_shop"} %d`, oldEvents))
	status, body = app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d", in.ID), nil)
	require.Equal(t, 200, status)
	var d struct {
		RetentionDays *int       `json:"retention_days"`
		OldestEventAt *time.Time `json:"oldest_event_at"`
	}
	require.NoError(t, json.Unmarshal(body, &d))
	require.Equal(t, 395, *d.RetentionDays)
	require.Equal(t, now.Unix(), d.OldestEventAt.Unix(), "the oldest event kept is a new one")
}

func keys(m *sync.Map) []any {
	var out []any
	m.Range(func(k, _ any) bool { out = append(out, k); return true })
	return out
}
