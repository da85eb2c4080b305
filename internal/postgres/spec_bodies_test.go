package postgres_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/rudder"
)

// specBody is one body of testdata/customerio/bodies, built from Customer.io's spec.
type specBody struct {
	file                string
	raw                 []byte
	obj                 map[string]any
	id, objType, metric string
	data                map[string]any
}

func readSpecBodies(t *testing.T) []specBody {
	t.Helper()
	files, err := filepath.Glob("../../testdata/customerio/bodies/*.json")
	require.NoError(t, err)
	require.Len(t, files, 69, "one body per (object_type, metric) schema of the spec")
	var out []specBody
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var obj map[string]any
		require.NoError(t, dec.Decode(&obj), f)
		data, _ := obj["data"].(map[string]any)
		out = append(out, specBody{file: filepath.Base(f), raw: raw, obj: obj, id: obj["event_id"].(string),
			objType: obj["object_type"].(string), metric: obj["metric"].(string), data: data})
	}
	return out
}

// funnelMetrics are the delivery metrics SPEC 5.1 gives a delivery_funnel column.
var funnelMetrics = []string{"drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
	"bounced", "dropped", "failed", "spammed", "unsubscribed", "undeliverable", "replied"}

// Ensure every body built from Customer.io's spec, and its legacy event_type twin,
// is stored over HTTP, named in rudder_events, visible in its object type's view
// with the ids the spec gives it, and timed in its delivery_funnel column.
func TestSpecBodiesEndToEnd(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Spec Bodies")
	bodies := readSpecBodies(t)
	var legacy []map[string]any
	for _, b := range bodies {
		status, resp := app.Post(t, u.URL, b.raw)
		require.Equal(t, http.StatusOK, status, "%s: %s", b.file, resp)
		require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp), b.file)
		legacy = append(legacy, legacyTwin(b))
	}
	status, resp := app.Post(t, u.URL, legacy)
	require.Equal(t, http.StatusOK, status, string(resp))
	conn := app.DB(t)
	require.Equal(t, int64(2*len(bodies)), apptest.Count(t, conn, "spec_bodies.data"))
	require.Equal(t, int64(2*len(bodies)), apptest.Count(t, conn, "spec_bodies.rudder_events"))

	for _, b := range bodies {
		t.Run(strings.TrimSuffix(b.file, ".json"), func(t *testing.T) {
			want := rudder.Transform(b.obj, rudder.Options{}).Name()
			require.NotEqual(t, rudder.UnknownEvent, want)
			for _, id := range []string{b.id, "L" + b.id} {
				wantRow := expectedEventsRow(b)
				if id != b.id && wantRow["delivery_id"] != null {
					wantRow["delivery_id"] += "-legacy"
				}
				rows := query(t, conn, `SELECT event, object_type, metric FROM spec_bodies.rudder_events WHERE event_id = $1`, id)
				require.Equal(t, []map[string]string{{"event": want, "object_type": b.objType, "metric": b.metric}}, rows, id)
				view := b.objType + "_events"
				rows = query(t, conn, `SELECT * FROM spec_bodies.`+view+` WHERE event_id = $1`, id)
				require.Len(t, rows, 1, "%s in %s", id, view)
				requireRow(t, wantRow, rows[0], id)
				if wantRow["delivery_id"] != null && slices.Contains(funnelMetrics, b.metric) {
					at := time.Unix(mustInt(t, b.obj["timestamp"]), 0).UTC().Format("2006-01-02 15:04:05+00")
					rows := query(t, conn, `SELECT `+b.metric+`_at AS at, count(*) OVER () AS n FROM spec_bodies.delivery_funnel
						WHERE delivery_id = $1 AND object_type = $2`, wantRow["delivery_id"], b.objType)
					require.Equal(t, []map[string]string{{"at": at, "n": "1"}}, rows, id)
				}
			}
		})
	}
}

// expectedEventsRow is the events view row the spec body implies, read from the body
// itself: customer_id prefers identifiers.id, every id the spec names is a column.
func expectedEventsRow(b specBody) map[string]string {
	ids, _ := b.data["identifiers"].(map[string]any)
	want := map[string]string{"object_type": b.objType, "metric": b.metric, "customer_id": null}
	if ids != nil && ids["id"] != nil {
		want["customer_id"] = fmt.Sprint(ids["id"])
	} else if b.data["customer_id"] != nil {
		want["customer_id"] = fmt.Sprint(b.data["customer_id"])
	}
	for _, k := range []string{"delivery_id", "campaign_id", "broadcast_id", "newsletter_id", "transactional_message_id",
		"action_id", "journey_id", "parent_action_id", "trigger_event_id", "content_id"} {
		want[k] = null
		if v, ok := b.data[k]; ok && v != nil {
			want[k] = fmt.Sprint(v)
		}
	}
	want["failure_message"] = null
	if v, ok := b.data["failure_message"].(string); ok {
		want["failure_message"] = v
	} else if rs, ok := b.data["recipients"].([]any); ok && len(rs) > 0 {
		if r, ok := rs[0].(map[string]any); ok && r["failure_message"] != nil {
			want["failure_message"] = fmt.Sprint(r["failure_message"])
		}
	}
	return want
}

// legacyTwin is the body in the legacy shape: event_type instead of object_type and
// metric, under its own event_id.
func legacyTwin(b specBody) map[string]any {
	twin := map[string]any{}
	for k, v := range b.obj {
		twin[k] = v
	}
	delete(twin, "object_type")
	delete(twin, "metric")
	twin["event_type"] = b.objType + "_" + b.metric
	twin["event_id"] = "L" + b.id
	if d, ok := b.data["delivery_id"]; ok {
		data := map[string]any{}
		for k, v := range b.data {
			data[k] = v
		}
		data["delivery_id"] = fmt.Sprint(d, "-legacy") // a funnel row of its own
		twin["data"] = data
	}
	return twin
}

func mustInt(t *testing.T, v any) int64 {
	t.Helper()
	n, err := v.(json.Number).Int64()
	require.NoError(t, err)
	return n
}

// Ensure subtables carry every Stitch system column, copied from their event's row.
func TestSubtableSystemColumns(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Subtable Columns")
	status, resp := app.Post(t, u.URL, `{"event_id":"p1","object_type":"push","metric":"bounced","timestamp":1700000000,
		"data":{"delivery_id":"d1","recipients":[{"device_id":"a","failure_message":"gone"},{"device_id":"b"}]}}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	conn := app.DB(t)
	rows := query(t, conn, `SELECT count(*) AS n,
		count(*) FILTER (WHERE r._sdc_received_at = d._sdc_received_at AND r._sdc_batched_at = d._sdc_batched_at
		                   AND r._sdc_sequence = d._sdc_sequence AND r._sdc_table_version IS NULL) AS same
		FROM subtable_columns.data__data__recipients r JOIN subtable_columns.data d ON d.event_id = r._sdc_source_key_event_id`)
	require.Equal(t, []map[string]string{{"n": "2", "same": "2"}}, rows)
	rows = query(t, conn, `SELECT failure_message FROM subtable_columns.push_events WHERE event_id = 'p1'`)
	require.Equal(t, []map[string]string{{"failure_message": "gone"}}, rows, "a push bounce's reason is in events")
}

// Ensure a start upgrades what an older version made: views with fewer columns (no
// whatsapp view) and subtables without the system columns. The old shapes are
// rebuilt by hand here, with the columns and types the previous release had.
func TestUpgradeOlderViewsAndSubtables(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Old Shapes")
	status, resp := app.Post(t, u.URL, `{"event_id":"p1","object_type":"push","metric":"bounced","timestamp":1700000000,
		"data":{"delivery_id":"d1","recipients":[{"device_id":"a","failure_message":"gone"}]}}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	conn := app.DB(t)
	_, err := conn.Exec(t.Context(), `
		DROP VIEW old_shapes.delivery_funnel, old_shapes.email_events, old_shapes.push_events, old_shapes.sms_events,
			old_shapes.whatsapp_events, old_shapes.in_app_events, old_shapes.slack_events, old_shapes.webhook_events,
			old_shapes.customer_events, old_shapes.events;
		CREATE VIEW old_shapes.events AS SELECT event_id, NULL::text AS object_type, NULL::text AS metric,
			NULL::text AS event_name, NULL::timestamptz AS occurred_at, NULL::text AS customer_id, NULL::text AS email,
			NULL::text AS delivery_id, NULL::text AS campaign_id, NULL::text AS broadcast_id, NULL::text AS action_id,
			NULL::text AS journey_id, _sdc_received_at AS received_at, _sdc_raw::jsonb AS raw FROM old_shapes.data;
		CREATE VIEW old_shapes.push_events AS SELECT * FROM old_shapes.events;
		CREATE VIEW old_shapes.delivery_funnel AS SELECT delivery_id, object_type, min(campaign_id) AS campaign_id,
			min(broadcast_id) AS broadcast_id, min(action_id) AS action_id, min(customer_id) AS customer_id,
			min(occurred_at) AS sent_at, min(occurred_at) AS delivered_at, min(occurred_at) AS opened_at,
			min(occurred_at) AS clicked_at, min(occurred_at) AS converted_at, min(occurred_at) AS bounced_at
			FROM old_shapes.events GROUP BY 1, 2;
		ALTER TABLE old_shapes.data__data__recipients DROP COLUMN _sdc_received_at, DROP COLUMN _sdc_batched_at,
			DROP COLUMN _sdc_table_version;
		DROP VIEW old_shapes.rudder_payloads;
		DROP TABLE old_shapes.event_facts;
		DROP TABLE old_shapes.delivery_facts;
		DROP VIEW old_shapes.rudder_events CASCADE;
		ALTER TABLE old_shapes.rudder_rows RENAME TO rudder_events;
		UPDATE old_shapes.rudder_events SET context = '{"library":{"name":"unknown","version":"unknown"},"integration":{"name":"Customer.io"}}'::jsonb || context;
		ALTER TABLE old_shapes.rudder_events DROP COLUMN nonstring_ids, ADD COLUMN payload jsonb;
		UPDATE old_shapes.rudder_events SET user_id = '200102', payload = '{"userId": 200102, "anonymousId": "x"}'`)
	require.NoError(t, err)
	app.Stop()

	upgraded := apptest.StartOn(t, app.DatabaseURL)
	status, resp = upgraded.Post(t, strings.Replace(u.URL, app.URL, upgraded.URL, 1), `{"event_id":"p2","object_type":"push","metric":"bounced","timestamp":1700000001,
		"data":{"delivery_id":"d2","recipients":[{"device_id":"b"}]}}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	conn = upgraded.DB(t)
	require.Equal(t, eventsColumns, viewColumns(t, conn, "old_shapes", "push_events"))
	require.Equal(t, eventsColumns, viewColumns(t, conn, "old_shapes", "whatsapp_events"))
	require.Contains(t, viewColumns(t, conn, "old_shapes", "delivery_funnel"), "replied_at")
	require.Equal(t, []map[string]string{{"d": "d1", "b": "t"}, {"d": "d2", "b": "t"}},
		query(t, conn, `SELECT delivery_id AS d, bounced_at IS NOT NULL AS b FROM old_shapes.delivery_funnel ORDER BY 1`),
		"delivery_facts is filled from the events on upgrade")
	rows := query(t, conn, `SELECT failure_message, metric FROM old_shapes.push_events WHERE event_id = 'p1'`)
	require.Equal(t, []map[string]string{{"failure_message": "gone", "metric": "bounced"}}, rows)
	rows = query(t, conn, `SELECT p.payload->>'userId' AS uid, jsonb_typeof(p.payload->'userId') AS type
		FROM old_shapes.rudder_payloads p WHERE event_id = 'p1'`)
	require.Equal(t, []map[string]string{{"uid": "200102", "type": "number"}}, rows, "a numeric userId keeps its type")
	require.NotContains(t, viewColumns(t, conn, "old_shapes", "rudder_events"), "payload")
	require.Equal(t, []map[string]string{{"kind": "v"}}, query(t, conn, `SELECT relkind::text AS kind FROM pg_class WHERE oid = 'old_shapes.rudder_events'::regclass`),
		"the rudder_events table became rudder_rows, behind a view of that name")
	require.Equal(t, []map[string]string{{"id": "p1", "lib": "unknown", "integ": "Customer.io"}, {"id": "p2", "lib": "unknown", "integ": "Customer.io"}},
		query(t, conn, `SELECT event_id AS id, context #>> '{library,name}' AS lib, context #>> '{integration,name}' AS integ
			FROM old_shapes.rudder_events ORDER BY 1`), "a whole stored context and a trimmed one read the same")
	require.Equal(t, []map[string]string{{"n": "2"}}, query(t, conn, `SELECT count(context_library_name)::text AS n FROM old_shapes.tracks`),
		"the warehouse views were made again over the view")
	rows = query(t, conn, `SELECT _sdc_source_key_event_id AS id, _sdc_batched_at IS NOT NULL AS batched
		FROM old_shapes.data__data__recipients ORDER BY 1`)
	require.Equal(t, []map[string]string{{"id": "p1", "batched": "f"}, {"id": "p2", "batched": "t"}}, rows)
}

// Ensure rudder_payloads.payload, derived from rudder_events' columns, is the event
// `cioloader transform` prints (rudder.Transform with the schema and the arrival
// time), for the upstream vectors, the spec bodies and testdata/events: compared as
// jsonb values.
func TestRudderPayloadDerived(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Derived Payloads")
	var files []string
	for _, glob := range []string{"../../testdata/rudder/*.input.json", "../../testdata/customerio/bodies/*.json", "../../testdata/events/*.json"} {
		f, err := filepath.Glob(glob)
		require.NoError(t, err)
		files = append(files, f...)
	}
	objs := map[string]map[string]any{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var obj map[string]any
		if dec.Decode(&obj) != nil || obj == nil {
			continue // not an object: not an event
		}
		id, ok := obj["event_id"].(string)
		if !ok || id == "" || objs[id] != nil {
			continue // rejected at ingest, or a vector reusing an id
		}
		objs[id] = obj
		status, resp := app.Post(t, u.URL, raw)
		require.Equal(t, http.StatusOK, status, "%s: %s", f, resp)
	}
	require.Greater(t, len(objs), 140)
	conn := app.DB(t)
	for id, obj := range objs {
		var received time.Time
		require.NoError(t, conn.QueryRow(t.Context(), `SELECT received_at FROM derived_payloads.rudder_events WHERE event_id = $1`, id).Scan(&received))
		want, err := rudder.Transform(obj, rudder.Options{Namespace: in.Schema, ReceivedAt: received}).MarshalJSON()
		require.NoError(t, err)
		var same bool
		var got string
		require.NoError(t, conn.QueryRow(t.Context(), `SELECT payload = $2::jsonb, payload::text FROM derived_payloads.rudder_payloads
			WHERE event_id = $1`, id, string(want)).Scan(&same, &got))
		require.True(t, same, "%s:\nwant %s\ngot  %s", id, want, got)
	}
}

// Ensure delivery_facts (what delivery_funnel reads) follows the events: metrics of
// one delivery posted concurrently all land in its row, replay recomputes a damaged
// row, and an erasure (and a tombstoned re-delivery) leaves no row of the person.
func TestDeliveryFactsFollowEvents(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Deliveries")
	metrics := []string{"drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted", "bounced",
		"dropped", "failed", "spammed", "unsubscribed", "undeliverable", "replied"}
	event := func(id, metric string, ts int) string {
		return fmt.Sprintf(`{"event_id":"%s","object_type":"email","metric":"%s","timestamp":%d,
			"data":{"delivery_id":"d1","newsletter_id":7,"identifiers":{"id":"u1","email":"ann@example.com"}}}`, id, metric, ts)
	}
	errs := make(chan error, 2*len(metrics))
	for i, m := range metrics {
		for range 2 { // a retry of each event too (the same body, as Customer.io resends it), concurrently
			go func() {
				status, resp := app.Post(t, u.URL, event(fmt.Sprintf("e%02d", i), m, 1700000000+i*60))
				if status != http.StatusOK {
					errs <- fmt.Errorf("%d %s", status, resp)
					return
				}
				errs <- nil
			}()
		}
	}
	for range 2 * len(metrics) {
		require.NoError(t, <-errs)
	}
	conn := app.DB(t)
	funnel := func() []map[string]string {
		return query(t, conn, `SELECT * FROM deliveries.delivery_funnel`)
	}
	rows := funnel()
	require.Len(t, rows, 1)
	require.Equal(t, "7", rows[0]["newsletter_id"])
	for _, m := range metrics {
		require.NotEqual(t, null, rows[0][m+"_at"], m)
	}
	want := rows[0]
	exact := query(t, conn, `SELECT min(occurred_at) FILTER (WHERE metric = 'delivered') AS d FROM deliveries.events`)
	require.Equal(t, exact[0]["d"], want["delivered_at"], "the merged row is the aggregate of the events")

	_, err := conn.Exec(t.Context(), `UPDATE deliveries.delivery_facts SET sent_at = NULL, newsletter_id = 'x'`)
	require.NoError(t, err)
	_, err = app.Store.Replay(t.Context(), in.Schema, 5, nil)
	require.NoError(t, err)
	require.Equal(t, []map[string]string{want}, funnel(), "replay recomputes the row")

	status, body := app.Admin(t, http.MethodPost, fmt.Sprintf("/v1/integrations/%d/erasures", in.ID), map[string]any{"email": "ann@example.com"})
	require.Equal(t, http.StatusCreated, status, string(body))
	require.Empty(t, funnel(), "the erasure removes the person's deliveries")
	status, body = app.Post(t, u.URL, event("e00", "sent", 1700000000))
	require.Equal(t, http.StatusOK, status, string(body))
	require.Empty(t, funnel(), "a tombstoned re-delivery makes no delivery row")
}
