package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

// Postgres reads the writer's text[] parameters back as they were sent.
func TestTextParamRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.New(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	postgres.RegisterTextParam(conn.TypeMap())
	for name, vals := range postgres.TextParamCases {
		var back []pgtype.Text
		var isNull bool
		require.NoError(t, conn.QueryRow(ctx, `SELECT $1::text[], $1::text[] IS NULL`, postgres.TextParam(vals)).Scan(&back, &isNull), name)
		require.Equal(t, vals == nil, isNull, name)
		require.Equal(t, len(vals), len(back), name)
		for i := range vals {
			require.Equal(t, vals[i], back[i], "%s: element %d", name, i)
		}
	}
	// A unnest of two of them, as the writer sends them.
	rows, err := conn.Query(ctx, `SELECT a, b FROM unnest($1::text[], $2::text[]) AS u(a, b)`,
		postgres.TextParam{{String: "1", Valid: true}, {}}, postgres.TextParam{{}, {String: "2", Valid: true}})
	require.NoError(t, err)
	pairs, err := pgx.CollectRows(rows, pgx.RowToMap)
	require.NoError(t, err)
	require.Equal(t, []map[string]any{{"a": "1", "b": nil}, {"a": nil, "b": "2"}}, pairs)
}
