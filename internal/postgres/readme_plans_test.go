package postgres_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

// Ensure the README's unsubscribe query reads its partial index and the bounce
// query the bounces alone (bounce_facts), never every event, and that a huge
// value in a bounce is still stored (no index entry holds text).
func TestReadmeQueriesUsePartialIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testdb.New(t)
	store, err := postgres.Open(ctx, dbURL, storeConfig(4), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	defer store.Close()
	_, err = store.CreateIntegration(ctx, "Stitch Customer.io")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO stitch_customerio.event_facts (event_id, object_type, metric, customer_id, email, occurred_at, _sdc_sequence)
		SELECT 'e' || g, 'email', CASE WHEN g % 33 = 0 THEN 'bounced' WHEN g % 500 = 0 THEN 'unsubscribed' ELSE 'delivered' END,
		       'c' || (g % 100), 'c' || (g % 100) || '@example.com', now() - g * interval '1 minute', g
		FROM generate_series(1, 20000) g`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `VACUUM ANALYZE stitch_customerio.event_facts`)
	require.NoError(t, err)
	queries := readmeQueries(t)
	for name, index := range map[string]string{"bounces_by_day": "Seq Scan on bounce_facts", "unsubscribes": "Index Scan using event_facts_unsubscribed"} {
		rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) "+queries[name])
		require.NoError(t, err)
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Contains(t, strings.Join(plan, "\n"), index, name)
		require.NotContains(t, strings.Join(plan, "\n"), "Seq Scan on event_facts", name)
	}
	_, err = conn.Exec(ctx, `INSERT INTO stitch_customerio.event_facts (event_id, object_type, metric, email, failure_message, occurred_at, _sdc_sequence)
		SELECT 'huge', h, 'bounced', h, h, now(), 1 FROM (SELECT string_agg(md5(i::text), '') AS h FROM generate_series(1, 200) i) AS x`)
	require.NoError(t, err, "a 6 KB failure message, email or object_type must fit every index")
	var kept int
	require.NoError(t, conn.QueryRow(ctx, `SELECT length(failure_message) FROM stitch_customerio.bounces WHERE event_id = 'huge'`).Scan(&kept))
	require.Equal(t, 6400, kept)
}
