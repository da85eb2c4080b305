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

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
	"github.com/cioloader/cioloader/internal/webhook"
)

// writeBundle is a store on a fresh database with one integration.
type writeBundle struct {
	store  *postgres.Store
	schema string
	conn   *pgx.Conn
	url    string
	cfg    postgres.Config
}

func setupWrite(t *testing.T) *writeBundle {
	t.Helper()
	return setupWriteWith(t, storeConfig(8))
}

// setupWriteWith is setupWrite with the store configured by cfg.
func setupWriteWith(t *testing.T, cfg postgres.Config) *writeBundle {
	t.Helper()
	ctx := context.Background()
	url := testdb.New(t)
	store, err := postgres.Open(ctx, url, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	in, err := store.CreateIntegration(ctx, "Writer Test")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &writeBundle{store: store, schema: in.Schema, conn: conn, url: url, cfg: cfg}
}

// request builds one ingest request from JSON bodies, giving the events the
// sequences seqs (in body order).
func (b *writeBundle) request(t *testing.T, seqs []int64, bodies ...string) *ingest.Request {
	t.Helper()
	batch, err := webhook.Decode([]byte("["+strings.Join(bodies, ",")+"]"), 10000)
	require.NoError(t, err)
	require.Len(t, batch.Events, len(seqs))
	r := ingest.Prepare(b.schema, time.Now().UTC(), batch, ingest.NewSequencer(nil), app.FlattenLimits(config.Defaults()))
	for i := range r.Events {
		r.Events[i].Seq = seqs[i]
	}
	return r
}

func (b *writeBundle) scalar(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var v *string
	require.NoError(t, b.conn.QueryRow(context.Background(), sql, args...).Scan(&v), sql)
	if v == nil {
		return null
	}
	return *v
}

// Ensure an older copy written after a newer one (two group commits finishing
// out of order, or a Customer.io retry of an old version) changes nothing: data,
// rudder_events and the subtables all keep the newer copy. This is the
// sequence guard of the data and rudder_events upserts.
func TestWriteBatchOlderCopyLosesEverywhere(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	newer := `{"event_id":"e1","object_type":"email","metric":"clicked","timestamp":1700000100,"data":{"v":"new","tags":["n1"]}}`
	older := `{"event_id":"e1","object_type":"email","metric":"sent","timestamp":1700000000,"data":{"v":"old","tags":["o1","o2"]}}`
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{200}, newer)}))
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{100}, older)}))

	s := func(table string) string { return pgx.Identifier{b.schema, table}.Sanitize() }
	require.Equal(t, "new", b.scalar(t, `SELECT data__v FROM `+s("data")+` WHERE event_id = 'e1'`), "data took the older copy's columns")
	require.Equal(t, "200", b.scalar(t, `SELECT _sdc_sequence::text FROM `+s("data")+` WHERE event_id = 'e1'`), "data took the older copy's sequence")
	require.Equal(t, "clicked", b.scalar(t, `SELECT _sdc_raw->>'metric' FROM `+s("data")+` WHERE event_id = 'e1'`), "data took the older copy's _sdc_raw")
	require.Equal(t, "clicked", b.scalar(t, `SELECT metric FROM `+s("rudder_events")+` WHERE event_id = 'e1'`), "rudder_events took the older copy")
	require.Equal(t, "200", b.scalar(t, `SELECT _sdc_sequence::text FROM `+s("rudder_events")+` WHERE event_id = 'e1'`), "rudder_events took the older copy's sequence")
	require.Equal(t, "n1", b.scalar(t, `SELECT string_agg(value, ',' ORDER BY _sdc_level_0_id) FROM `+s("data__data__tags")+` WHERE _sdc_source_key_event_id = 'e1'`),
		"the subtable must hold the newer copy's elements only")
	require.Equal(t, "200", b.scalar(t, `SELECT string_agg(DISTINCT _sdc_sequence::text, ',') FROM `+s("data__data__tags")), "subtable rows of the older copy")
}

// Ensure batches that hold the same event_ids in opposite orders never
// deadlock (SPEC 3.1: a deadlock is a 503 and a stalled webhook): every
// statement of the writer takes its row locks in event_id order, whatever the
// order of arrival.
func TestWriteBatchOppositeOrdersDoNotDeadlock(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	const n = 60
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"event_id":"id-%03d","object_type":"email","metric":"sent","data":{"k":%d,"list":[1,2,{"x":%d}]}}`, i, i, i)
	}
	reversed := make([]string, n)
	for i := range bodies {
		reversed[i] = bodies[n-1-i]
	}
	seqs := func(round int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(round*n + i + 1)
		}
		return out
	}
	// Create the tables and columns first, so the rounds below only take row locks.
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, seqs(0), bodies...)}))

	var deadlocks []error
	for round := 1; round <= 15; round++ {
		forward, backward := b.request(t, seqs(2*round), bodies...), b.request(t, seqs(2*round+1), reversed...)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, r := range []*ingest.Request{forward, backward} {
			wg.Go(func() { errs[i] = b.store.WriteBatch(ctx, []*ingest.Request{r}) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				require.ErrorIs(t, err, domain.ErrUnavailable, "an unexpected error")
				deadlocks = append(deadlocks, err)
			}
		}
	}
	require.Empty(t, deadlocks, "batches holding the same ids in opposite orders failed (deadlock): %v", deadlocks)
}
