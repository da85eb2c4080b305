package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/webhook"
)

// writeReceived writes bodies to schema as one request received at received.
func writeReceived(t *testing.T, store *postgres.Store, schema string, received time.Time, bodies ...string) {
	t.Helper()
	batch, err := webhook.Decode([]byte("["+strings.Join(bodies, ",")+"]"), 10000)
	require.NoError(t, err)
	r := ingest.Prepare(schema, received, batch, ingest.NewSequencer(nil), app.FlattenLimits(config.Defaults()))
	require.NoError(t, store.WriteBatch(context.Background(), []*ingest.Request{r}))
}

// retentionEvents are events around a 395-day window ending at now: the
// "old-" ones are older than it (by timestamp, or without a usable one by
// arrival), the others inside it. received is when they arrive.
func retentionEvents(now time.Time) (received map[string]time.Time, bodies map[string][]string) {
	old, young := now.AddDate(0, 0, -400).Unix(), now.AddDate(0, 0, -10).Unix()
	recent := now.AddDate(0, 0, -5).Unix()
	ev := func(id, objectType, metric string, ts any, data string) string {
		tsField := ""
		if ts != nil {
			tsField = fmt.Sprintf(`"timestamp":%v,`, ts)
		}
		return fmt.Sprintf(`{"event_id":%q,"object_type":%q,"metric":%q,%s"data":%s}`, id, objectType, metric, tsField, data)
	}
	return map[string]time.Time{"now": now, "long ago": now.AddDate(0, 0, -400)}, map[string][]string{
		"now": {
			// d1: sent long ago, opened inside the window: the delivery stays, without its sent time.
			ev("old-sent", "email", "sent", old, `{"delivery_id":"d1","campaign_id":7,"identifiers":{"id":"u1","email":"a@x.org"}}`),
			ev("opened", "email", "opened", young, `{"delivery_id":"d1","campaign_id":7,"identifiers":{"id":"u1","email":"a@x.org"}}`),
			// d2, d3: every event old: the deliveries go.
			ev("old-push", "push", "sent", old, `{"delivery_id":"d2","identifiers":{"id":"u2"},"recipients":[{"device_id":"p1"},{"device_id":"p2"}]}`),
			ev("old-delivered", "email", "delivered", old, `{"delivery_id":"d3","identifiers":{"id":"u3"}}`),
			// A timestamp that is not a number of seconds: its age is its arrival (now).
			ev("odd-ts", "email", "clicked", `"2020-01-01"`, `{"delivery_id":"d6","identifiers":{"id":"u6"}}`),
			ev("push", "push", "sent", recent, `{"delivery_id":"d7","identifiers":{"id":"u7"},"recipients":[{"device_id":"p3"}]}`),
			ev("no-ts", "email", "sent", nil, `{"delivery_id":"d5","identifiers":{"id":"u5"}}`),
			`{"object_type":"email","metric":"sent"}`, // no event_id: a young _sdc_rejected row
		},
		"long ago": {
			ev("old-no-ts", "email", "sent", nil, `{"delivery_id":"d4","identifiers":{"id":"u4"}}`),
		},
	}
}

// Ensure a pass deletes every row of every event older than the window, from
// every table, recomputes the deliveries they leave, deletes those they
// empty, prunes _sdc_rejected by its own time, and does not touch (not even
// rewrite) a row of anything younger, nor another integration's events.
func TestRetentionPrunesEveryTableAndNothingYounger(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	now := time.Now().UTC()
	other, err := b.store.CreateIntegration(ctx, "Keep Everything")
	require.NoError(t, err)
	received, bodies := retentionEvents(now)
	for _, schema := range []string{b.schema, other.Schema} {
		for when, list := range bodies {
			writeReceived(t, b.store, schema, received[when], list...)
		}
		_, err := b.conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (_sdc_rejected_at, table_name, reason, record)
			VALUES (now() - interval '396 days', 'data', 'old', '{}')`, pgx.Identifier{schema, "_sdc_rejected"}.Sanitize()))
		require.NoError(t, err)
	}
	kept := []string{"opened", "odd-ts", "push", "no-ts"}
	tables := map[string]string{"data": "event_id", "rudder_rows": "event_id", "event_facts": "event_id", "data__data__recipients": "_sdc_source_key_event_id"}
	snapshot := func(schema string) map[string]string {
		out := map[string]string{}
		for table, key := range tables {
			// xmin too: a row rewritten with the same values would change it.
			out[table] = b.scalar(t, fmt.Sprintf(`SELECT coalesce(string_agg(t.xmin::text || t::text, E'\n' ORDER BY t::text), '')
				FROM %s t WHERE %s = ANY($1)`, pgx.Identifier{schema, table}.Sanitize(), key), kept)
		}
		out["delivery_facts"] = b.scalar(t, fmt.Sprintf(`SELECT string_agg(t.xmin::text || t::text, E'\n' ORDER BY t::text) FROM %s t
			WHERE delivery_id IN ('d5', 'd6', 'd7')`, pgx.Identifier{schema, "delivery_facts"}.Sanitize()))
		out["_sdc_rejected"] = b.scalar(t, fmt.Sprintf(`SELECT string_agg(t.xmin::text || t::text, E'\n' ORDER BY t::text) FROM %s t
			WHERE _sdc_rejected_at > now() - interval '1 day'`, pgx.Identifier{schema, "_sdc_rejected"}.Sanitize()))
		return out
	}
	before, otherBefore := snapshot(b.schema), snapshot(other.Schema)
	otherAll := b.scalar(t, `SELECT count(*)::text FROM `+pgx.Identifier{other.Schema, "data"}.Sanitize())

	days := 395
	in, err := b.store.SetRetention(ctx, mustFind(t, b.store, b.schema).ID, &days)
	require.NoError(t, err)
	require.Equal(t, &days, in.RetentionDays)
	rep, err := b.store.PruneExpired(ctx, now)
	require.NoError(t, err)
	require.False(t, rep.Skipped)
	require.Equal(t, map[string]int64{b.schema: 4}, rep.Events)
	require.Equal(t, map[string]int64{b.schema: 1}, rep.Rejected)

	s := func(table string) string { return pgx.Identifier{b.schema, table}.Sanitize() }
	for table, key := range tables {
		want := "no-ts,odd-ts,opened,push"
		if strings.HasPrefix(table, "data__") {
			want = "push"
		}
		require.Equal(t, want, b.scalar(t, fmt.Sprintf(`SELECT string_agg(DISTINCT %s, ',' ORDER BY %[1]s) FROM %s`, key, s(table))), table)
	}
	require.Equal(t, "d1,d5,d6,d7", b.scalar(t, `SELECT string_agg(delivery_id, ',' ORDER BY delivery_id) FROM `+s("delivery_facts")),
		"d2, d3 and d4 have no event left")
	require.Equal(t, fmt.Sprintf("<NULL> %s 7 u1", time.Unix(now.AddDate(0, 0, -10).Unix(), 0).UTC().Format("2006-01-02 15:04:05")),
		b.scalar(t, `SELECT coalesce(sent_at::text, '<NULL>') || ' ' || to_char(opened_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
			|| ' ' || campaign_id || ' ' || customer_id FROM `+s("delivery_facts")+` WHERE delivery_id = 'd1'`),
		"d1 is recomputed from the event left: no sent time, its open kept")
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+s("_sdc_rejected")+` WHERE _sdc_rejected_at < now() - interval '395 days'`))
	require.Equal(t, before, snapshot(b.schema), "a row younger than the window was deleted or rewritten")
	require.Equal(t, otherBefore, snapshot(other.Schema), "an integration without a window was touched")
	require.Equal(t, otherAll, b.scalar(t, `SELECT count(*)::text FROM `+pgx.Identifier{other.Schema, "data"}.Sanitize()))

	oldest, err := b.store.OldestEvent(ctx, in)
	require.NoError(t, err)
	require.Equal(t, time.Unix(now.AddDate(0, 0, -10).Unix(), 0).UTC(), *oldest, "the open is the oldest event kept")

	rep, err = b.store.PruneExpired(ctx, now)
	require.NoError(t, err)
	require.Empty(t, rep.Events, "a second pass finds nothing")
	require.Equal(t, before, snapshot(b.schema))
}

// Ensure the retention indexes exist only while a window is set: built by
// the first pass after it is set, dropped by the first after it is cleared.
func TestRetentionIndexesFollowTheWindow(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	in := mustFind(t, b.store, b.schema)
	indexes := func() string {
		return b.scalar(t, `SELECT coalesce(string_agg(indexname, ',' ORDER BY indexname), '') FROM pg_indexes
			WHERE schemaname = $1 AND indexname IN ('event_facts_age', 'event_facts_delivery', '_sdc_rejected_at_idx')`, b.schema)
	}
	days := 30
	_, err := b.store.SetRetention(ctx, in.ID, &days)
	require.NoError(t, err)
	_, err = b.store.PruneExpired(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, "_sdc_rejected_at_idx,event_facts_age,event_facts_delivery", indexes())
	in, err = b.store.SetRetention(ctx, in.ID, nil)
	require.NoError(t, err)
	require.Nil(t, in.RetentionDays)
	oldest, err := b.store.OldestEvent(ctx, in)
	require.NoError(t, err)
	require.Nil(t, oldest, "without a window the oldest event is not looked for")
	_, err = b.store.PruneExpired(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, "", indexes())

	_, err = b.store.SetRetention(ctx, 9999, &days)
	require.ErrorIs(t, err, domain.ErrNotFound)
	bad := 0
	_, err = b.store.SetRetention(ctx, in.ID, &bad)
	require.Error(t, err, "the database refuses a window out of range too")
}

// Ensure one replica prunes at a time: while another session holds the
// retention lock, a pass does nothing.
func TestRetentionOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	now := time.Now().UTC()
	writeReceived(t, b.store, b.schema, now.AddDate(0, 0, -40), `{"event_id":"e1","object_type":"email","metric":"sent"}`)
	days := 30
	_, err := b.store.SetRetention(ctx, mustFind(t, b.store, b.schema).ID, &days)
	require.NoError(t, err)
	_, err = b.conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('retention', 0))`)
	require.NoError(t, err)
	rep, err := b.store.PruneExpired(ctx, now)
	require.NoError(t, err)
	require.True(t, rep.Skipped)
	require.Equal(t, "1", b.scalar(t, `SELECT count(*)::text FROM `+pgx.Identifier{b.schema, "data"}.Sanitize()))
	_, err = b.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended('retention', 0))`)
	require.NoError(t, err)
	rep, err = b.store.PruneExpired(ctx, now)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{b.schema: 1}, rep.Events)
}

func mustFind(t *testing.T, store *postgres.Store, ref string) domain.Integration {
	t.Helper()
	in, err := store.FindIntegration(context.Background(), ref)
	require.NoError(t, err)
	return in
}
