package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
	"github.com/cioloader/cioloader/internal/webhook"
)

// ingester writes Customer.io events through the real ingest path (decode,
// prepare, the store's batch writer), as the server does for a request.
type ingester struct {
	store  *postgres.Store
	schema string
	seq    *ingest.Sequencer
}

// event is a Customer.io email event (JSON) whose subject maps to properties.emailSubject.
func event(i int, subject string) []byte {
	return fmt.Appendf(nil, `{"event_id":"ev%06d","object_type":"email","metric":"sent","timestamp":%d,`+
		`"data":{"customer_id":"c%d","subject":%q,"delivery_id":"d%d"}}`, i, 1700000000+i, i%5000, subject, i)
}

// write sends events as one request body (a JSON array).
func (g *ingester) write(ctx context.Context, events [][]byte) error {
	body := append([]byte("["), bytes.Join(events, []byte(","))...)
	body = append(body, ']')
	b, err := webhook.Decode(body, 10000)
	if err != nil {
		return err
	}
	if len(b.Events) != len(events) {
		return fmt.Errorf("%d of %d events accepted", len(b.Events), len(events))
	}
	return g.store.WriteBatch(ctx, []*ingest.Request{ingest.Prepare(g.schema, time.Now(), b, g.seq, app.FlattenLimits(config.Defaults()))})
}

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, conn.QueryRow(context.Background(), sql, args...).Scan(&n), sql)
	return n
}

// TestReplayAcceptance: 100,000 events ingested, rudder_events damaged, then
// `cioloader replay` rebuilds it with a progress bar while ingest keeps
// rewriting a few events: every row ends up matching data, and the events
// rewritten meanwhile keep their newest copy.
func TestReplayAcceptance(t *testing.T) {
	t.Parallel()
	total, perRequest := 100_000, 1_000
	if testing.Short() {
		total = 10_000
	}
	ctx := context.Background()
	dbURL := testdb.New(t)
	vars := map[string]string{"DATABASE_URL": dbURL}
	r := cli(t, vars, "", "integrations", "create", "Replay Shop", "--json")
	requireOK(t, r)
	schema := decode[domain.Integration](t, r.stdout).Schema

	store, err := postgres.Open(ctx, dbURL, storeConfig(8), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	g := &ingester{store: store, schema: schema, seq: ingest.NewSequencer(nil)}

	// Load: the first request creates the columns, then 4 writers in parallel.
	began := time.Now()
	requests := make([][][]byte, total/perRequest)
	for i := range total {
		requests[i/perRequest] = append(requests[i/perRequest], event(i, "original"))
	}
	require.NoError(t, g.write(ctx, requests[0]))
	work := make(chan [][]byte)
	errs := make(chan error, len(requests))
	var writers sync.WaitGroup
	for range 4 {
		writers.Go(func() {
			for req := range work {
				errs <- g.write(ctx, req)
			}
		})
	}
	for _, req := range requests[1:] {
		work <- req
	}
	close(work)
	writers.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("ingested %d events in %s", total, time.Since(began).Round(time.Millisecond))

	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	data, rudder := pgx.Identifier{schema, "data"}.Sanitize(), pgx.Identifier{schema, "rudder_events"}.Sanitize()
	require.EqualValues(t, total, count(t, conn, "SELECT count(*) FROM "+data))
	require.EqualValues(t, total, count(t, conn, "SELECT count(*) FROM "+rudder))

	// Damage rudder_events: a tenth of it gone, some rows stale.
	_, err = conn.Exec(ctx, "DELETE FROM "+rudder+" WHERE event_id < 'ev001000' OR event_id >= $1", fmt.Sprintf("ev%06d", total-total/10))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "UPDATE "+strings.Replace(rudder, "rudder_events", "rudder_rows", 1)+` SET event = 'stale', context = '{}', properties = NULL WHERE event_id BETWEEN 'ev005000' AND 'ev005999'`)
	require.NoError(t, err)
	require.EqualValues(t, total-total/10-1000, count(t, conn, "SELECT count(*) FROM "+rudder))

	// Ingest continues during the replay: a few events (in the deleted
	// range, the stale range, elsewhere, first and last) get new copies
	// again and again until the replay is over.
	hot := []int{0, 500, 999, 1000, 5500, total / 3, total - total/10 + 1, total - 1}
	var version atomic.Int64
	var duringReplay atomic.Int64
	replaying := atomic.Bool{}
	replaying.Store(true)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var updErr error
	wg.Go(func() {
		for v := 1; ; v++ {
			evs := make([][]byte, len(hot))
			for i, id := range hot {
				evs[i] = event(id, "v"+strconv.Itoa(v))
			}
			if updErr = g.write(ctx, evs); updErr != nil {
				return
			}
			version.Store(int64(v))
			if replaying.Load() {
				duringReplay.Add(1)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})

	began = time.Now()
	r = cli(t, vars, "", "replay", "Replay Shop", "--batch", "2000") // by name
	replaying.Store(false)
	elapsed := time.Since(began)
	close(stop)
	wg.Wait()
	require.NoError(t, updErr)
	requireOK(t, r)
	t.Logf("replay took %s; %d updates of %d hot events landed during it", elapsed.Round(time.Millisecond), duringReplay.Load(), len(hot))
	require.GreaterOrEqual(t, duringReplay.Load(), int64(2), "ingest must have overlapped the replay")

	// Output: a progress bar on stderr, the summary line on stdout.
	require.Contains(t, r.stderr, "replay "+schema)
	require.Contains(t, r.stderr, "100%")
	require.Regexp(t, `\(\d+/\d+, \d+ events/s\)`, r.stderr)
	m := regexp.MustCompile(`^replayed ` + schema + `: (\d+) rows read, (\d+) rudder_events written, 0 skipped, in \S+\n$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	require.Equal(t, strconv.Itoa(total), m[1])
	written, _ := strconv.Atoi(m[2])
	require.LessOrEqual(t, written, total)
	require.GreaterOrEqual(t, written, total-len(hot), "only rows rewritten by ingest meanwhile may be skipped")

	// rudder_events = data again, row for row, with data's sequence.
	require.EqualValues(t, total, count(t, conn, "SELECT count(*) FROM "+data))
	require.EqualValues(t, total, count(t, conn, "SELECT count(*) FROM "+rudder))
	require.EqualValues(t, total, count(t, conn, `SELECT count(*) FROM `+data+` d JOIN `+rudder+` r USING (event_id)
		WHERE r._sdc_sequence = d._sdc_sequence AND r.event = 'Email Sent'
		AND r.properties->>'emailSubject' = d._sdc_raw->'data'->>'subject'
		AND r.context ? 'library'`))
	require.Zero(t, count(t, conn, "SELECT count(*) FROM "+rudder+" WHERE event = 'stale' OR context = '{}'"))

	// The events rewritten during the replay hold their newest copy.
	last := "v" + strconv.FormatInt(version.Load(), 10)
	for _, id := range hot {
		evID := fmt.Sprintf("ev%06d", id)
		var dataSubject, rudderSubject string
		require.NoError(t, conn.QueryRow(ctx, `SELECT d._sdc_raw->'data'->>'subject', r.properties->>'emailSubject'
			FROM `+data+` d JOIN `+rudder+` r USING (event_id) WHERE event_id = $1`, evID).Scan(&dataSubject, &rudderSubject))
		require.Equal(t, last, dataSubject, evID)
		require.Equal(t, last, rudderSubject, evID)
	}
	require.EqualValues(t, total-len(hot), count(t, conn, "SELECT count(*) FROM "+rudder+" WHERE properties->>'emailSubject' = 'original'"))
}

func TestReplayCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testdb.New(t)
	vars := map[string]string{"DATABASE_URL": dbURL}
	in := decode[domain.Integration](t, cli(t, vars, "", "integrations", "create", "Small", "--json").stdout)

	// No events: nothing to do, no bar.
	r := cli(t, vars, "", "replay", "small")
	requireOK(t, r)
	require.Empty(t, r.stderr)
	require.Regexp(t, `^replayed small: 0 rows read, 0 rudder_events written, 0 skipped, in \S+\n$`, r.stdout)

	store, err := postgres.Open(ctx, dbURL, storeConfig(2), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	g := &ingester{store: store, schema: in.Schema, seq: ingest.NewSequencer(nil)}
	var evs [][]byte
	for i := range 25 {
		evs = append(evs, event(i, "s"))
	}
	require.NoError(t, g.write(ctx, evs))

	// By id, small batches, --json, --quiet: no bar, a JSON summary.
	r = cli(t, vars, "", "replay", strconv.FormatInt(in.ID, 10), "--batch", "7", "--json", "--quiet")
	requireOK(t, r)
	require.Empty(t, r.stderr)
	sum := decode[replaySummary](t, r.stdout)
	require.Equal(t, replaySummary{Schema: "small", Rows: 25, Written: 25, Skipped: 0, Seconds: sum.Seconds}, sum)

	// By schema, with the bar.
	r = cli(t, vars, "", "replay", "small", "--batch", "10")
	requireOK(t, r)
	require.Contains(t, r.stderr, "replay small")
	require.Contains(t, r.stderr, "100%")
	require.Contains(t, r.stderr, "(25/25,")

	r = cli(t, vars, "", "replay", "missing")
	requireFailure(t, r, exitFail, `no integration has the id, name or schema "missing"`)
	require.Empty(t, r.stdout)
}

// TestReplayRenamesOlderRows: rows an older version stored as "Unknown Event" (every
// in_app and whatsapp event, legacy bodies) get their names from replay.
func TestReplayRenamesOlderRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testdb.New(t)
	vars := map[string]string{"DATABASE_URL": dbURL}
	in := decode[domain.Integration](t, cli(t, vars, "", "integrations", "create", "Older", "--json").stdout)
	store, err := postgres.Open(ctx, dbURL, storeConfig(2), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	g := &ingester{store: store, schema: in.Schema, seq: ingest.NewSequencer(nil)}
	require.NoError(t, g.write(ctx, [][]byte{
		[]byte(`{"event_id":"a","object_type":"in_app","metric":"clicked","timestamp":1700000000}`),
		[]byte(`{"event_id":"b","object_type":"whatsapp","metric":"sent","timestamp":1700000000}`),
		[]byte(`{"event_id":"c","event_type":"email_undeliverable","timestamp":1700000000}`),
	}))
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(ctx) })
	_, err = conn.Exec(ctx, `UPDATE older.rudder_events SET event = 'Unknown Event', object_type = NULL, metric = NULL WHERE event_id = 'c';
		UPDATE older.rudder_events SET event = 'Unknown Event'`)
	require.NoError(t, err)

	requireOK(t, cli(t, vars, "", "replay", "older", "--quiet"))
	rows, err := conn.Query(ctx, `SELECT event_id || ': ' || event || ' ' || object_type || '/' || metric FROM older.rudder_events ORDER BY 1`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"a: In-App Message Link Clicked in_app/clicked", "b: WhatsApp Sent whatsapp/sent",
		"c: Email Undeliverable email/undeliverable"}, got)
}

// storeConfig is the default store configuration with a pool of maxConns.
func storeConfig(maxConns int32) postgres.Config {
	sc := app.StoreConfig(config.Defaults())
	sc.MaxConns = maxConns
	return sc
}
