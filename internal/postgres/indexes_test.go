package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

// An integration made with the old per-customer index gets the new one at the
// next start, valid, and the old one is dropped; the README's last-event
// query then reads that index alone. A schema an operator dropped by hand
// does not stop the start: it is made again, empty.
func TestLateIndexesOnUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testdb.New(t)
	store, err := postgres.Open(ctx, dbURL, storeConfig(4), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	defer store.Close()
	_, err = store.CreateIntegration(ctx, "Old Shop")
	require.NoError(t, err)
	_, err = store.CreateIntegration(ctx, "Dropped Shop")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP INDEX old_shop.event_facts_customer_last;
		CREATE INDEX event_facts_customer ON old_shop.event_facts (customer_id, occurred_at DESC NULLS LAST, received_at DESC) INCLUDE (event_name);
		INSERT INTO old_shop.event_facts (event_id, customer_id, event_name, occurred_at, _sdc_sequence)
		SELECT 'e' || g, 'c' || (g % 100), 'Email Sent', now() - g * interval '1 minute', g FROM generate_series(1, 3000) g;
		DROP SCHEMA dropped_shop CASCADE`)
	require.NoError(t, err)

	require.NoError(t, store.EnsureIntegrationObjects(ctx))

	var valid, oldGone bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT indisvalid, to_regclass('old_shop.event_facts_customer') IS NULL
		FROM pg_index WHERE indexrelid = 'old_shop.event_facts_customer_last'::regclass`).Scan(&valid, &oldGone))
	require.True(t, valid)
	require.True(t, oldGone, "the index it replaces is dropped")
	_, err = conn.Exec(ctx, `VACUUM ANALYZE old_shop.event_facts`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `SET enable_seqscan = off`)
	require.NoError(t, err)
	var plan []string
	rows, err := conn.Query(ctx, `EXPLAIN (COSTS OFF) SELECT DISTINCT ON (customer_id) customer_id, event_name, occurred_at,
		count(*) OVER (PARTITION BY customer_id ORDER BY occurred_at DESC NULLS LAST, received_at DESC
		               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
		FROM old_shop.events WHERE customer_id IS NOT NULL ORDER BY customer_id, occurred_at DESC NULLS LAST, received_at DESC`)
	require.NoError(t, err)
	plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, plan[len(plan)-2]+plan[len(plan)-1], "Index Only Scan using event_facts_customer_last", "plan: %v", plan)

	var recreated bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT to_regclass('dropped_shop.data') IS NOT NULL`).Scan(&recreated))
	require.True(t, recreated)
}

// Two replicas starting at once both build the missing index: one builds it,
// the other waits for it without holding a snapshot the build must outwait
// (which Postgres would break as a deadlock, failing that replica's start).
func TestLateIndexesTwoReplicasAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testdb.New(t)
	open := func() *postgres.Store {
		store, err := postgres.Open(ctx, dbURL, storeConfig(4), slog.New(slog.DiscardHandler), nil)
		require.NoError(t, err)
		t.Cleanup(store.Close)
		return store
	}
	a, b := open(), open()
	_, err := a.CreateIntegration(ctx, "Busy Shop")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP INDEX busy_shop.event_facts_customer_last;
		INSERT INTO busy_shop.event_facts (event_id, customer_id, event_name, occurred_at, _sdc_sequence)
		SELECT 'e' || g, 'c' || (g % 1000), 'Email Sent', now() - g * interval '1 second', g FROM generate_series(1, 300000) g`)
	require.NoError(t, err)

	errs := make(chan error, 2)
	for _, s := range []*postgres.Store{a, b} {
		go func() { errs <- s.EnsureIntegrationObjects(ctx) }()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	var valid bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'busy_shop.event_facts_customer_last'::regclass`).Scan(&valid))
	require.True(t, valid)
}
