package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/webhook"
)

// Ensure an event written alone (one row per statement, which the writer sends
// as scalars and merges without aggregates) stores exactly what it stores in a
// batch of many (arrays under unnest): every table, view and summary of the
// schema holds the same rows either way. The bodies are Customer.io's spec
// bodies plus a delivery's life (sent, delivered, opened twice, a bounce of
// another) and a newer copy of one event. The batch also holds a request for a
// second schema, so its transaction opens with the locks of two schemas.
func TestWriteOneEventAsInABatch(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	alone := b.schema
	var batched, other string
	for i, into := range []*string{&batched, &other} {
		in, err := b.store.CreateIntegration(ctx, fmt.Sprintf("Writer Test Batched %d", i))
		require.NoError(t, err)
		*into = in.Schema
	}

	var bodies []string
	for _, sb := range readSpecBodies(t) {
		bodies = append(bodies, string(sb.raw))
	}
	life := func(id, metric string, ts int, delivery string) string {
		return fmt.Sprintf(`{"event_id":%q,"object_type":"email","metric":%q,"timestamp":%d,
			"data":{"identifiers":{"id":"cust-1","email":"Someone@Example.com"},"customer_id":"cust-1","delivery_id":%q,
			"campaign_id":7,"action_id":3,"recipient":"someone@example.com","subject":"hi","failure_message":"mailbox full"}}`,
			id, metric, ts, delivery)
	}
	bodies = append(bodies,
		life("life-1", "sent", 1700000000, "dlv-1"), life("life-2", "delivered", 1700000010, "dlv-1"),
		life("life-3", "opened", 1700000020, "dlv-1"), life("life-4", "opened", 1700000030, "dlv-1"),
		life("life-5", "bounced", 1700000040, "dlv-2"))
	newer := life("life-2", "delivered", 1700000015, "dlv-1") // a newer copy of life-2

	received := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	request := func(schema string, seq0 int64, bodies ...string) *ingest.Request {
		batch, err := webhook.Decode([]byte("["+strings.Join(bodies, ",")+"]"), 10000)
		require.NoError(t, err)
		r := ingest.Prepare(schema, received, batch, ingest.NewSequencer(nil), app.FlattenLimits(config.Defaults()))
		for i := range r.Events {
			r.Events[i].Seq = seq0 + int64(i)
		}
		return r
	}
	// Alone: one transaction per event, in event_id order (a batch's order, so
	// that columns are added in the same order), then the newer copy.
	slices.SortFunc(bodies, func(x, y string) int { return strings.Compare(eventID(t, x), eventID(t, y)) })
	for i, body := range bodies {
		require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{request(alone, int64(i+1), body)}), eventID(t, body))
	}
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{request(alone, 1000, newer)}))
	// Batched: every event in one transaction, then the newer copy.
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{request(batched, 1, bodies...), request(other, 1, bodies[0])}))
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{request(batched, 1000, newer)}))

	relations := []string{"data", "rudder_events", "events", "event_facts", "delivery_facts", "delivery_funnel",
		"customer_facts", "customer_summary", "bounce_facts", "bounces", "message_funnel", "email_events"}
	subtables := query(t, b.conn, `SELECT table_name AS name FROM information_schema.tables
		WHERE table_schema = $1 AND table_name LIKE 'data\_\_%' ORDER BY 1`, alone)
	require.NotEmpty(t, subtables, "the spec bodies have arrays")
	for _, r := range subtables {
		relations = append(relations, r["name"])
	}
	for _, rel := range relations {
		rows := func(schema string) []string {
			var out []string
			// _sdc_batched_at is the time of the write, different for each
			// transaction; RudderStack's message_id is derived from the schema.
			q := `SELECT (to_jsonb(t) - '_sdc_batched_at' - 'message_id')::text FROM ` + pgx.Identifier{schema, rel}.Sanitize() + ` AS t ORDER BY 1`
			got, err := b.conn.Query(ctx, q)
			require.NoError(t, err, q)
			for got.Next() {
				var s string
				require.NoError(t, got.Scan(&s))
				out = append(out, strings.ReplaceAll(s, schema, "<schema>"))
			}
			require.NoError(t, got.Err())
			return out
		}
		want, got := rows(batched), rows(alone)
		require.NotEmpty(t, want, rel)
		require.Len(t, got, len(want), "%s: one event per transaction stored another number of rows than one batch", rel)
		for i := range want {
			require.Equal(t, want[i], got[i], "%s: one event per transaction stored another row than one batch", rel)
		}
	}
	require.Equal(t, "1", b.scalar(t, `SELECT count(*)::text FROM `+pgx.Identifier{other, "data"}.Sanitize()),
		"the second schema of the batch")
	require.Equal(t, "1700000015", b.scalar(t, `SELECT extract(epoch FROM occurred_at)::bigint::text FROM `+
		pgx.Identifier{alone, "events"}.Sanitize()+` WHERE event_id = 'life-2'`), "the newer copy")
}

// eventID is the event_id of a JSON body.
func eventID(t *testing.T, body string) string {
	t.Helper()
	batch, err := webhook.Decode([]byte(body), 10000)
	require.NoError(t, err)
	require.Len(t, batch.Events, 1)
	return batch.Events[0].ID
}
