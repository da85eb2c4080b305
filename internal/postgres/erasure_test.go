package postgres_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

// The matching rule on Customer.io's own payloads: every identifier each
// testdata event names its person by, current and legacy.
func TestErasureKeysOfTestdata(t *testing.T) {
	t.Parallel()
	conn, err := pgx.Connect(context.Background(), testdb.New(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	want := map[string][]string{
		"email_opened.json":        {"cio_id:d9c106000001", "email:test@example.com", "id:user-123"},
		"push_sent.json":           {"id:0200102"},
		"sms_sent.json":            {"id:0200102"}, // a phone number recipient is not an identifier
		"customer_subscribed.json": {"email:test@example.com", "id:0200102"},
		"legacy_email_opened.json": {"email:legacy@example.com", "id:42"},
	}
	for file, keys := range want {
		body, err := os.ReadFile(filepath.Join("../../testdata/events", file))
		require.NoError(t, err)
		var got []string
		require.NoError(t, conn.QueryRow(context.Background(),
			`SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}') FROM unnest(cioloader.erasure_keys($1::jsonb)) k`, string(body)).Scan(&got))
		require.Equal(t, keys, got, file)
	}
	var got []string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT cioloader.erasure_keys('{"data":{"recipient":"X@Y.org","customer_id":7,"identifiers":"odd"}}')`).Scan(&got))
	require.Equal(t, []string{"email:x@y.org", "id:7"}, got, "emails lower-cased, numbers as their JSON text, odd shapes ignored")
}

// An integration made before the index existed gets it at the next start,
// valid, and the erasure's look-up uses it; an expired tombstone drops nothing
// and is purged by the next erasure.
func TestErasureIndexAndTombstoneExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testdb.New(t)
	store, err := postgres.Open(ctx, dbURL, storeConfig(4), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	defer store.Close()
	in, err := store.CreateIntegration(ctx, "Old Shop")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP INDEX old_shop.event_facts_erasure;
		INSERT INTO old_shop.data (event_id, _sdc_sequence, _sdc_raw)
		SELECT 'e' || g, g, json_build_object('data', json_build_object('identifiers', json_build_object('id', 'u' || (g % 100))))
		FROM generate_series(1, 2000) g;
		INSERT INTO old_shop.event_facts (event_id, _sdc_sequence, erasure_hashes)
		SELECT event_id, _sdc_sequence, cioloader.erasure_key_hashes(cioloader.erasure_keys(_sdc_raw::jsonb)) FROM old_shop.data;
		-- As this release writes them: the id equal to customer_id has no hash.
		INSERT INTO old_shop.data (event_id, _sdc_sequence, _sdc_raw)
		SELECT 'f' || g, 10000 + g, json_build_object('data', json_build_object('identifiers', json_build_object('id', 'v' || (g % 100))))
		FROM generate_series(1, 1000) g;
		INSERT INTO old_shop.event_facts (event_id, _sdc_sequence, customer_id, erasure_hashes)
		SELECT 'f' || g, 10000 + g, 'v' || (g % 100), '{}' FROM generate_series(1, 1000) g;
		ANALYZE old_shop.data, old_shop.event_facts`)
	require.NoError(t, err)
	require.NoError(t, store.EnsureIntegrationObjects(ctx))
	var valid bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'old_shop.event_facts_erasure'::regclass`).Scan(&valid))
	require.True(t, valid)
	var plan string
	require.NoError(t, conn.QueryRow(ctx, `EXPLAIN (COSTS OFF) SELECT event_id FROM old_shop.event_facts WHERE erasure_hashes && cioloader.erasure_key_hashes('{id:u7}')`).Scan(&plan))
	require.Contains(t, plan, "Bitmap Heap Scan on event_facts", "by event_facts_erasure, its one index on erasure_hashes")
	var rawIndex bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT to_regclass('old_shop.data_erasure_idx') IS NOT NULL`).Scan(&rawIndex))
	require.False(t, rawIndex, "a new schema has no index on _sdc_raw")

	er, err := store.Erase(ctx, in, []domain.PersonIdentifier{{Kind: domain.KindID, Value: "u7"}}, "cli", time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(20), er.RowsDeleted["data"])
	er, err = store.Erase(ctx, in, []domain.PersonIdentifier{{Kind: domain.KindID, Value: "v7"}}, "cli", time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(10), er.RowsDeleted["data"], "found by event_facts.customer_id")
	require.Equal(t, int64(10), er.RowsDeleted["event_facts"])

	_, err = conn.Exec(ctx, `UPDATE cioloader.erasure_tombstones SET expires_at = now() - interval '1 second'`)
	require.NoError(t, err)
	_, err = store.Erase(ctx, in, []domain.PersonIdentifier{{Kind: domain.KindID, Value: "u8"}}, "cli", time.Hour)
	require.NoError(t, err)
	var left []string
	rows, err := conn.Query(ctx, `SELECT encode(key_hash, 'hex') FROM cioloader.erasure_tombstones`)
	require.NoError(t, err)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, left, 1, "the expired tombstones are purged, the new one stays")
}
