package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/rudder"
	"github.com/cioloader/cioloader/internal/testdb"
	"github.com/cioloader/cioloader/internal/warehouse"
	"github.com/cioloader/cioloader/internal/webhook"
)

// pipelineCase is one line of testdata/rudder-warehouse/vectors_pipeline.jsonl: the
// rows RudderStack's warehouse transformer made of a vector's event, as a
// RudderStack user's warehouse holds them.
type pipelineCase struct {
	Name string `json:"name"`
	Rows []struct {
		Table   string            `json:"table"`
		Data    map[string]any    `json:"data"`
		Columns map[string]string `json:"columns"`
	} `json:"rows"`
}

func readPipelineCases(t *testing.T) []pipelineCase {
	t.Helper()
	f, err := os.Open("../../testdata/rudder-warehouse/vectors_pipeline.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var cases []pipelineCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var c pipelineCase
		require.NoError(t, dec.Decode(&c))
		cases = append(cases, c)
	}
	require.NoError(t, sc.Err())
	return cases
}

// whSkipped are the vectors whose event we deliberately make differently (README,
// "Differences from RudderStack's transformer"; internal/rudder tests each), so
// RudderStack's rows for them are not ours: the quirks, and the array body (a list
// of events for us, one empty event upstream).
func whSkipped(name string) bool {
	return strings.HasPrefix(name, "qk") || name == "dv40_body_json_array"
}

// whRenamed are the vectors of spec pairs that RudderStack calls "Unknown Event"
// and we name: their rows are in the relation of their name.
var whRenamed = map[string]string{
	"dv12_unknown_pair_in_app_clicked":               "In-App Message Link Clicked",
	"dv13_unknown_pair_customer_preferences_changed": "Customer Subscription Preferences Changed",
	"dv14_unknown_metric_email_undeliverable":        "Email Undeliverable",
}

// whRunColumns are the columns whose value RudderStack takes from its own run; the
// test checks ours by our rule instead.
var whRunColumns = map[string]bool{
	"id": true, "received_at": true, "timestamp": true, "uuid_ts": true,
	"context_ip": true, "context_request_ip": true, "context_source_id": true, "context_destination_id": true,
}

// TestWarehouseMatchesRudderStack ingests every vector's Customer.io body into an
// integration of its own (so each relation's types are those its one event gives,
// as in RudderStack's output) and checks that tracks and the event's relation have
// exactly RudderStack's columns, Postgres types and values.
func TestWarehouseMatchesRudderStack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.New(t)
	store, err := postgres.Open(ctx, url, storeConfig(8), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `SET TimeZone = 'UTC'`)
	require.NoError(t, err)

	cases := readPipelineCases(t)
	require.Len(t, cases, 71)
	checked, rejected := 0, []string(nil)
	for i, c := range cases {
		if whSkipped(c.Name) {
			continue
		}
		in, err := store.CreateIntegration(ctx, fmt.Sprintf("wh %d", i))
		require.NoError(t, err)
		body, err := os.ReadFile("../../testdata/rudder/" + c.Name + ".input.json")
		require.NoError(t, err)
		batch, err := webhook.Decode(body, 10000)
		require.NoError(t, err)
		req := ingest.Prepare(in.Schema, time.Now().UTC(), batch, ingest.NewSequencer(nil), app.FlattenLimits(config.Defaults()))
		require.NoError(t, store.WriteBatch(ctx, []*ingest.Request{req}), c.Name)
		store.WaitWarehouse()
		if len(req.Events) == 0 {
			rejected = append(rejected, c.Name)
			continue
		}
		require.Len(t, req.Events, 1, c.Name)
		for _, row := range c.Rows {
			checkWarehouseRow(t, conn, in.Schema, c.Name, row.Table, row.Data, row.Columns, req.Events[0].Rudder)
		}
		checked++
	}
	// No usable top-level event_id: SPEC 3.1 puts the body in _sdc_rejected; it is
	// not an event.
	require.Equal(t, []string{"dv24_event_id_fallback_to_data_event_id", "dv39_body_empty_object"}, rejected)
	require.Equal(t, 62, checked)
}

// checkWarehouseRow compares our relation's one row with RudderStack's.
func checkWarehouseRow(t *testing.T, conn *pgx.Conn, schema, name, table string, data map[string]any, columns map[string]string, ev *rudder.Event) {
	t.Helper()
	data, columns = copyMap(data), copyStrings(columns)
	if renamed := whRenamed[name]; renamed != "" && table != "tracks" {
		require.Equal(t, "unknown_event", table, name)
		table = warehouse.TableName(renamed)
	}
	if renamed := whRenamed[name]; renamed != "" {
		data["event"], data["event_text"] = warehouse.EventValue(renamed), renamed
	}
	msg := name + ": " + table
	got := warehouseColumns(t, conn, schema, table)
	want := map[string]string{}
	for col, typ := range columns {
		wt, ok := warehouse.ParseType(typ)
		require.True(t, ok, "%s: type %s", msg, typ)
		want[col] = wt.SQL()
	}
	require.Equal(t, want, got, "%s: columns and types", msg)

	rows := query(t, conn, "SELECT * FROM "+pgx.Identifier{schema, table}.Sanitize())
	require.Len(t, rows, 1, msg)
	row := rows[0]
	for col := range columns {
		if whRunColumns[col] {
			continue
		}
		if _, has := ev.OriginalTimestamp(); !has && (col == "sent_at" || col == "original_timestamp") {
			// No timestamp: RudderStack's processor puts its receivedAt here, we our received_at.
			require.Equal(t, data["received_at"], data[col], "%s: %s", msg, col)
			require.Equal(t, row["received_at"], row[col], "%s: %s", msg, col)
			continue
		}
		wantText, ok := rudderText(data[col], columns[col])
		if !ok {
			require.Equal(t, null, row[col], "%s: %s", msg, col)
			continue
		}
		if columns[col] == "datetime" {
			require.Equal(t, wantText, isoOf(t, row[col]), "%s: %s", msg, col)
			continue
		}
		require.Equal(t, wantText, row[col], "%s: %s", msg, col)
	}
	// Run-dependent columns hold the nearest value we have.
	require.Equal(t, ev.MessageID(), row["id"], msg)
	require.Equal(t, schema, row["context_source_id"], msg)
	require.Equal(t, "cioloader", row["context_destination_id"], msg)
	require.Equal(t, row["received_at"], row["timestamp"], msg)
	require.NotEqual(t, null, row["uuid_ts"], msg)
	require.Equal(t, null, row["context_ip"], msg)
}

// warehouseColumns are a relation's columns and their Postgres types.
func warehouseColumns(t *testing.T, conn *pgx.Conn, schema, table string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range query(t, conn, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2`, schema, table) {
		out[r["column_name"]] = map[string]string{"timestamp with time zone": "timestamptz"}[r["data_type"]]
		if out[r["column_name"]] == "" {
			out[r["column_name"]] = r["data_type"]
		}
	}
	require.NotEmpty(t, out, "%s.%s does not exist", schema, table)
	return out
}

// rudderText is how Postgres prints RudderStack's value v of type typ (false: no
// value, the column is NULL). Arrays are loaded as their compact JSON text.
func rudderText(v any, typ string) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "", false
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		if t {
			return "t", true
		}
		return "f", true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}

// isoOf prints a timestamptz as RudderStack prints instants.
func isoOf(t *testing.T, pg string) string {
	t.Helper()
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05-07"} {
		if ts, err := time.Parse(layout, pg); err == nil {
			return ts.UTC().Format("2006-01-02T15:04:05.000Z")
		}
	}
	t.Fatalf("not a timestamptz: %q", pg)
	return ""
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyStrings(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestWarehouseGrows: tracks exists from the start; an event name gets its relation
// with its first event, a property its column when it first appears; a column keeps
// its first type (a later string in a bigint column is NULL, a fraction is cut, as
// RudderStack's loader does); replay makes a dropped view again.
func TestWarehouseGrows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWrite(t)
	s := func(rel string) string { return pgx.Identifier{b.schema, rel}.Sanitize() }
	cols := func(rel string) map[string]string { return warehouseColumns(t, b.conn, b.schema, rel) }
	exists := func(rel string) bool { return b.scalar(t, `SELECT to_regclass($1)::text`, s(rel)) != null }

	require.True(t, exists("tracks"))
	require.Equal(t, "0", b.scalar(t, "SELECT count(*)::text FROM "+s("tracks")))
	require.Contains(t, cols("tracks"), "context_source_id")
	require.False(t, exists("email_opened"))

	opened := func(id, extra string) string {
		return `{"event_id":"` + id + `","object_type":"email","metric":"opened","timestamp":1585250199,
			"data":{"customer_id":"user-1","delivery_id":"d-` + id + `","identifiers":{"email":"a@example.com"}` + extra + `}}`
	}
	write := func(seq int64, bodies ...string) {
		seqs := make([]int64, len(bodies))
		for i := range seqs {
			seqs[i] = seq + int64(i)
		}
		require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, seqs, bodies...)}))
		b.store.WaitWarehouse()
	}
	write(1, opened("e1", `,"action_id":42`))
	require.True(t, exists("email_opened"))
	require.Equal(t, "bigint", cols("email_opened")["action_id"])
	require.NotContains(t, cols("email_opened"), "journey_id")
	require.Equal(t, "42", b.scalar(t, "SELECT action_id::text FROM "+s("email_opened")))
	require.Equal(t, "email_opened", b.scalar(t, "SELECT event FROM "+s("tracks")))

	write(2, opened("e2", `,"action_id":"not a number","journey_id":"j-1"`), opened("e3", `,"action_id":7.9`))
	require.Equal(t, "bigint", cols("email_opened")["action_id"], "the first type stays")
	require.Equal(t, "text", cols("email_opened")["journey_id"], "a new property gets its column")
	require.Equal(t, "42,<NULL>,7", b.scalar(t, "SELECT string_agg(coalesce(action_id::text, '<NULL>'), ',' ORDER BY delivery_id) FROM "+s("email_opened")))
	require.Equal(t, "j-1", b.scalar(t, "SELECT journey_id FROM "+s("email_opened")+" WHERE delivery_id = 'd-e2'"))

	write(10, `{"event_id":"c1","object_type":"in_app","metric":"clicked","timestamp":1585250199,"data":{"customer_id":"user-1","href":"https://x"}}`)
	require.Equal(t, "1", b.scalar(t, "SELECT count(*)::text FROM "+s("in_app_message_link_clicked")))
	require.Equal(t, "https://x", b.scalar(t, "SELECT link_url FROM "+s("in_app_message_link_clicked")))
	require.Equal(t, "4", b.scalar(t, "SELECT count(*)::text FROM "+s("tracks")))

	_, err := b.conn.Exec(ctx, "DROP VIEW "+s("email_opened"))
	require.NoError(t, err)
	_, err = b.store.Replay(ctx, b.schema, 100, nil)
	b.store.WaitWarehouse()
	require.NoError(t, err)
	require.Equal(t, "3", b.scalar(t, "SELECT count(*)::text FROM "+s("email_opened")))
	require.Equal(t, "bigint", cols("email_opened")["action_id"])
}

// TestWarehouseViewLockedDoesNotStallIngest: while an analyst's query holds a view,
// a batch that brings a new column is still written at once (the view change waits
// 100 ms at most, then is left to a later batch), and the column appears once the
// view is free.
func TestWarehouseViewLockedDoesNotStallIngest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWrite(t)
	view := pgx.Identifier{b.schema, "email_sent"}.Sanitize()
	sent := func(id, extra string) string {
		return `{"event_id":"` + id + `","object_type":"email","metric":"sent","timestamp":1585250199,"data":{"customer_id":"u"` + extra + `}}`
	}
	// data gets its journey_id column now: while a view is read, its base tables are
	// too, and adding a column to data waits for them (that is the Stitch side's rule).
	delivered := `{"event_id":"d1","object_type":"email","metric":"delivered","timestamp":1585250199,"data":{"customer_id":"u","journey_id":"x"}}`
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{1, 2}, sent("s1", ""), delivered)}))
	b.store.WaitWarehouse()

	analyst, err := pgx.Connect(ctx, b.url)
	require.NoError(t, err)
	defer analyst.Close(ctx)
	tx, err := analyst.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+view+" IN ACCESS SHARE MODE") // what a running SELECT holds
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{3}, sent("s2", `,"journey_id":"j"`))}))
	require.Less(t, time.Since(start), 2*time.Second)
	b.store.WaitWarehouse() // the change gave up on the view's lock
	require.Equal(t, "3", b.scalar(t, "SELECT count(*)::text FROM "+pgx.Identifier{b.schema, "rudder_events"}.Sanitize()))
	require.NotContains(t, warehouseColumns(t, b.conn, b.schema, "email_sent"), "journey_id")
	require.NoError(t, tx.Rollback(ctx))

	// A later batch (after the retry pause) brings the view up to date.
	time.Sleep(1100 * time.Millisecond)
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{4}, sent("s3", `,"journey_id":"k"`))}))
	b.store.WaitWarehouse()
	require.Equal(t, "j,k", b.scalar(t, "SELECT string_agg(journey_id, ',' ORDER BY journey_id) FROM "+view))
}
