package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
)

// SPEC 10.13: a server that accepts no writes (a standby reached without
// target_session_attrs, a primary being demoted) makes a write fail with
// domain.ErrUnavailable (503, which passes on a retry once the URL finds the
// primary), never an unknown error, and the migrator says what to do in one
// line. default_transaction_read_only gives the same SQLSTATE 25006 a hot
// standby does.
func TestReadOnlyDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	event := `{"event_id":"ro-1","object_type":"email","metric":"sent","data":{"v":"x"}}`
	require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{1}, event)}))

	var db string
	require.NoError(t, b.conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	_, err := b.conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET default_transaction_read_only = on")
	require.NoError(t, err)
	ro, err := postgres.Open(ctx, b.url, b.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	t.Cleanup(ro.Close)

	err = ro.WriteBatch(ctx, []*ingest.Request{b.request(t, []int64{2}, event)})
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Contains(t, err.Error(), "read-only")
	_, err = ro.CreateIntegration(ctx, "Read Only")
	require.ErrorIs(t, err, domain.ErrUnavailable, "an admin write too")

	// A migration to apply on a read-only server: one line that says so.
	// (The test's own connection predates the setting, so it still writes.)
	_, err = b.conn.Exec(ctx, "DELETE FROM public.cioloader_schema_migrations")
	require.NoError(t, err)
	err = postgres.MigrateUp(ctx, b.url)
	require.Error(t, err)
	require.Contains(t, err.Error(), "the database is read-only")
	require.NotContains(t, err.Error(), "\n")
}
