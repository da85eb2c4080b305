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

// An integration made before the summaries, with the old covering per-customer
// index, gets the new index at the next start, valid, and the old one is
// dropped; its summaries are made and filled from the events it holds. A schema
// an operator dropped by hand does not stop the start: it is made again, empty.
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
	_, err = conn.Exec(ctx, `DROP INDEX old_shop.event_facts_by_customer;
		CREATE INDEX event_facts_customer_last ON old_shop.event_facts (customer_id, occurred_at DESC NULLS LAST, received_at DESC) INCLUDE (event_name, event_id);
		DROP TRIGGER customer_facts_ins ON old_shop.event_facts; DROP TRIGGER customer_facts_upd ON old_shop.event_facts;
		DROP TRIGGER customer_facts_del ON old_shop.event_facts; DROP TRIGGER message_facts_ins ON old_shop.delivery_facts;
		DROP TRIGGER message_facts_upd ON old_shop.delivery_facts; DROP TRIGGER message_facts_del ON old_shop.delivery_facts;
		DROP TABLE old_shop.customer_facts, old_shop.bounce_facts, old_shop.message_facts CASCADE;
		INSERT INTO old_shop.event_facts (event_id, customer_id, event_name, metric, object_type, delivery_id, email, occurred_at, _sdc_sequence)
		SELECT 'e' || g, 'c' || (g % 100), 'email_' || m, m, 'email', 'd' || (g / 3), 'c' || (g % 100) || '@example.com',
		       now() - g * interval '1 minute', g
		FROM generate_series(1, 3000) g, LATERAL (SELECT CASE WHEN g % 3 = 0 THEN 'sent' WHEN g % 7 = 0 THEN 'bounced' ELSE 'opened' END AS m) AS x;
		INSERT INTO old_shop.data (event_id, _sdc_sequence, _sdc_raw)
		SELECT 'e' || g, g, json_build_object('data', json_build_object('identifiers', json_build_object('email', 'c' || (g % 100) || '@example.com')))
		FROM generate_series(1, 3000) g;
		INSERT INTO old_shop.delivery_facts (delivery_id, object_type, campaign_id, sent_at, opened_at, bounced_at)
		SELECT delivery_id, object_type, (min(_sdc_sequence) % 5)::text, min(occurred_at) FILTER (WHERE metric = 'sent'),
		       min(occurred_at) FILTER (WHERE metric = 'opened'), min(occurred_at) FILTER (WHERE metric = 'bounced')
		FROM old_shop.event_facts GROUP BY 1, 2;
		DROP SCHEMA dropped_shop CASCADE`)
	require.NoError(t, err)

	require.NoError(t, store.EnsureIntegrationObjects(ctx))

	var valid, oldGone bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT indisvalid, to_regclass('old_shop.event_facts_customer_last') IS NULL
		FROM pg_index WHERE indexrelid = 'old_shop.event_facts_by_customer'::regclass`).Scan(&valid, &oldGone))
	require.True(t, valid)
	require.True(t, oldGone, "the index it replaces is dropped")
	(&writeBundle{conn: conn, schema: "old_shop"}).requireSummariesMatch(t, "an upgrade")
	_, err = conn.Exec(ctx, `INSERT INTO old_shop.event_facts (event_id, customer_id, event_name, metric, object_type, occurred_at, _sdc_sequence)
		VALUES ('late', 'c1', 'email_bounced', 'bounced', 'email', now(), 9999)`)
	require.NoError(t, err)
	(&writeBundle{conn: conn, schema: "old_shop"}).requireSummariesMatch(t, "an event after the upgrade")

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
	_, err = conn.Exec(ctx, `DROP INDEX busy_shop.event_facts_by_customer;
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
	require.NoError(t, conn.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'busy_shop.event_facts_by_customer'::regclass`).Scan(&valid))
	require.True(t, valid)
}
