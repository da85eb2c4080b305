package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
)

// Schema evolution through WriteBatch: what a batch's keys add to the tables.

// columns returns table's columns and their types.
func (b *writeBundle) columns(t *testing.T, table string) map[string]string {
	t.Helper()
	rows, err := b.conn.Query(context.Background(), `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2`, b.schema, table)
	require.NoError(t, err)
	out := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error { out[name] = typ; return nil })
	require.NoError(t, err)
	return out
}

func (b *writeBundle) write(t *testing.T, seq int64, body string) {
	t.Helper()
	require.NoError(t, b.store.WriteBatch(context.Background(), []*ingest.Request{b.request(t, []int64{seq}, body)}))
}

func (b *writeBundle) table(name string) string { return pgx.Identifier{b.schema, name}.Sanitize() }

func event(id, data string) string {
	return fmt.Sprintf(`{"event_id":%q,"object_type":"email","metric":"sent","timestamp":1700000000,"data":%s}`, id, data)
}

// Ensure keys seen for the first time become columns of their JSON type, and
// a later event's new key adds its column without disturbing the first.
func TestWriteBatchAddsNewColumns(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	b.write(t, 1, event("e1", `{"a":1}`))
	b.write(t, 2, event("e2", `{"b":"x","c":true,"d":0.5}`))

	cols := b.columns(t, "data")
	require.Equal(t, "bigint", cols["data__a"])
	require.Equal(t, "text", cols["data__b"])
	require.Equal(t, "boolean", cols["data__c"])
	require.Equal(t, "double precision", cols["data__d"])
	require.Equal(t, "1", b.scalar(t, `SELECT data__a::text FROM `+b.table("data")+` WHERE event_id = 'e1'`))
	require.Equal(t, "x", b.scalar(t, `SELECT data__b FROM `+b.table("data")+` WHERE event_id = 'e2'`))
}

// Ensure a key whose type changes keeps its first column and sends the other
// types to Stitch's split columns (__st, __bi, …), never retyping a column.
func TestWriteBatchTypeConflictSplitsColumns(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	b.write(t, 1, event("e1", `{"v":1}`))
	b.write(t, 2, event("e2", `{"v":"text now"}`))
	b.write(t, 3, event("e3", `{"v":true}`))

	cols := b.columns(t, "data")
	require.Equal(t, "bigint", cols["data__v"])
	require.Equal(t, "text", cols["data__v__st"])
	require.Equal(t, "boolean", cols["data__v__bo"])
	require.Equal(t, "text now", b.scalar(t, `SELECT data__v__st FROM `+b.table("data")+` WHERE event_id = 'e2'`))
	require.Equal(t, null, b.scalar(t, `SELECT data__v::text FROM `+b.table("data")+` WHERE event_id = 'e2'`))
	require.Equal(t, "true", b.scalar(t, `SELECT data__v__bo::text FROM `+b.table("data")+` WHERE event_id = 'e3'`))
}

// Ensure an array makes a subtable keyed by the event and the element's index.
func TestWriteBatchCreatesSubtable(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	b.write(t, 1, event("e1", `{"items":[{"sku":"a","n":1},{"sku":"b","n":2}]}`))

	cols := b.columns(t, "data__data__items")
	require.Equal(t, "text", cols["_sdc_source_key_event_id"])
	require.Equal(t, "bigint", cols["_sdc_level_0_id"])
	require.Equal(t, "text", cols["sku"])
	require.Equal(t, "bigint", cols["n"])
	require.Equal(t, "a:1,b:2", b.scalar(t, `SELECT string_agg(sku || ':' || n, ',' ORDER BY _sdc_level_0_id) FROM `+
		b.table("data__data__items")+` WHERE _sdc_source_key_event_id = 'e1'`))
}

// Ensure the column cap holds: keys past it add no column and stay in
// _sdc_raw, each logged in _sdc_rejected.
func TestWriteBatchColumnCapHolds(t *testing.T) {
	t.Parallel()
	cfg := storeConfig(4)
	cfg.MaxColumns = 9 // the six system columns of data, then three keys
	b := setupWriteWith(t, cfg)
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%02d":%d`, i, i)
	}
	b.write(t, 1, event("e1", "{"+strings.Join(keys, ",")+"}"))

	require.Len(t, b.columns(t, "data"), cfg.MaxColumns)
	// 13 fields (the ten keys, object_type, metric, timestamp), 3 columns.
	require.Equal(t, "10", b.scalar(t, `SELECT count(*)::text FROM `+b.table("_sdc_rejected")+` WHERE reason LIKE '%column limit%'`))
	require.Equal(t, "9", b.scalar(t, `SELECT _sdc_raw#>>'{data,k09}' FROM `+b.table("data")+` WHERE event_id = 'e1'`))
}

// Ensure two WriteBatch calls that add the same new column at once both
// succeed: two stores, as two replicas with their own caches, race for the
// table's advisory lock and the loser finds the column already there.
func TestWriteBatchConcurrentSameNewColumn(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	other, err := postgres.Open(context.Background(), b.url, b.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	t.Cleanup(other.Close)
	for round := range 5 {
		key := fmt.Sprintf("fresh%d", round)
		stores := []*postgres.Store{b.store, other}
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			r := b.request(t, []int64{int64(round*2 + i + 1)}, event(fmt.Sprintf("r%d-%d", round, i), fmt.Sprintf(`{%q:%d}`, key, i)))
			wg.Go(func() { errs[i] = s.WriteBatch(context.Background(), []*ingest.Request{r}) })
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.Equal(t, "bigint", b.columns(t, "data")["data__"+key])
		require.Equal(t, "2", b.scalar(t, `SELECT count(`+pgx.Identifier{"data__" + key}.Sanitize()+`)::text FROM `+b.table("data")))
	}
}

// Ensure Open refuses a zero configuration instead of inventing defaults
// (they live in internal/config).
func TestOpenRefusesZeroConfig(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/x", postgres.Config{}, slog.New(slog.DiscardHandler), nil)
	require.ErrorContains(t, err, "MaxConns")
	cfg := storeConfig(2)
	cfg.MaxColumns = 0
	_, err = postgres.Open(context.Background(), "postgres://127.0.0.1:1/x", cfg, slog.New(slog.DiscardHandler), nil)
	require.ErrorContains(t, err, "MaxColumns")
}

// Ensure a schema change that cannot get its table lock at once does not hold
// the table's other users behind it: it gives up after a short wait and tries
// again, so a reader queued behind it waits a fraction of the blocker's time,
// and the change lands once the blocker is gone.
func TestSchemaChangeWaitsInShortAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWrite(t)
	b.write(t, 1, event("e1", `{"a":1}`))

	// A long reader holds the data table (as autovacuum or a slow query would).
	blocker, err := pgx.Connect(ctx, b.url)
	require.NoError(t, err)
	tx, err := blocker.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE `+b.table("data")+` IN ACCESS SHARE MODE`)
	require.NoError(t, err)
	const held = 1500 * time.Millisecond
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(held)
		_ = tx.Rollback(ctx)
	}()
	defer func() { <-released; _ = blocker.Close(ctx) }() // the connection is the goroutine's until it has rolled back

	wrote := make(chan error, 1)
	go func() { // needs ADD COLUMN data__b: waits for the blocker
		wrote <- b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{2}, event("e2", `{"b":"x"}`))})
	}()
	time.Sleep(50 * time.Millisecond)
	other, err := pgx.Connect(ctx, b.url)
	require.NoError(t, err)
	defer other.Close(ctx)
	var worst time.Duration
	for range 5 { // readers arriving while the change waits are not queued behind it for long
		start := time.Now()
		var n int
		require.NoError(t, other.QueryRow(ctx, `SELECT count(*) FROM `+b.table("data")).Scan(&n))
		worst = max(worst, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	require.Less(t, worst, held/2, "a reader waited behind the schema change")
	require.NoError(t, <-wrote)
	require.Equal(t, "x", b.scalar(t, `SELECT data__b FROM `+b.table("data")+` WHERE event_id = 'e2'`))
}

// Ensure the statement texts the writer caches do not pile up when every
// batch reloads a table's shape: at the column cap, each batch with a key
// past the cap re-reads the table, which makes a new shape each time.
func TestStatementTextsDoNotPileUpAtTheColumnCap(t *testing.T) {
	t.Parallel()
	cfg := storeConfig(8)
	cfg.MaxColumns = 9
	b := setupWriteWith(t, cfg)
	b.write(t, 1, event("e1", `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}`))
	after := b.store.CachedTexts()
	for i := range 20 {
		b.write(t, int64(i+2), event(fmt.Sprintf("x%d", i), `{"a":1,"past_the_cap":true}`))
	}
	require.Equal(t, after, b.store.CachedTexts())
}
