package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

// Ensure cioloader runs as a role that is not a superuser when it owns its
// database (deploy/README.md), says at start that --create needs CREATEROLE,
// and refuses to start, in one line naming each missing privilege but not
// the role, as a role that lacks them.
func TestCheckPrivilegesAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stranger, strangerPW := testdb.Role(t, "stranger", "LOGIN")
	plain, plainPW := testdb.Role(t, "plain", "LOGIN")
	b := setupReaders(t) // its loader owns the database, has CREATEROLE, and made two integrations
	notes, err := postgres.CheckPrivileges(ctx, b.url)
	require.NoError(t, err)
	require.Empty(t, notes)

	_, err = b.superuser.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{b.databaseName}.Sanitize()+` OWNER TO `+plain)
	require.NoError(t, err)
	for _, stmt := range []string{`REASSIGN OWNED BY ` + b.loaderRole + ` TO ` + plain} {
		_, err := b.superuser.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	pc, err := pgconn.ParseConfig(b.url)
	require.NoError(t, err)
	adminURL, _ := testdb.Server(t)
	plainURL := testdb.As(testdb.DatabaseURL(adminURL, pc.Database), plain, plainPW)
	notes, err = postgres.CheckPrivileges(ctx, plainURL)
	require.NoError(t, err)
	require.Equal(t, []string{"cioloader's database role has no CREATEROLE: `access grant --create` is refused; granting read access to an existing role works"}, notes)

	strangerURL := testdb.As(testdb.DatabaseURL(adminURL, pc.Database), stranger, strangerPW)
	_, err = postgres.CheckPrivileges(ctx, strangerURL)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, `lacks CREATE on database `+pgx.Identifier{b.databaseName}.Sanitize())
	require.Contains(t, msg, "ownership of table cioloader_schema_migrations")
	require.Contains(t, msg, "ownership of schema cioloader")
	require.Contains(t, msg, `deploy/README.md, "Database privileges"`)
	require.NotContains(t, msg, stranger)
	require.NotContains(t, msg, "\n")

	cfg := config.Defaults()
	cfg.AdminToken = "test-admin-token-0123456789abcdef"
	_, err = app.New(ctx, cfg, strangerURL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.ErrorContains(t, err, "lacks CREATE on database", "the server does not start")

	// Owning the control schema but not an integration's tables.
	_, err = b.superuser.Exec(ctx, `GRANT CREATE ON DATABASE `+pgx.Identifier{b.databaseName}.Sanitize()+` TO `+stranger)
	require.NoError(t, err)
	_, err = b.superuser.Exec(ctx, `ALTER SCHEMA cioloader OWNER TO `+stranger)
	require.NoError(t, err)
	_, err = postgres.CheckPrivileges(ctx, strangerURL)
	require.ErrorContains(t, err, "lacks ownership of table cioloader_schema_migrations; ownership of cioloader.activity, cioloader.column_sources, cioloader.erasure_tombstones, … (ALTER ... OWNER TO the role)")
	_, err = b.superuser.Exec(ctx, `REASSIGN OWNED BY `+plain+` TO `+stranger)
	require.NoError(t, err)
	_, err = b.superuser.Exec(ctx, `ALTER TABLE other_shop.data OWNER TO `+plain)
	require.NoError(t, err)
	_, err = postgres.CheckPrivileges(ctx, strangerURL)
	require.EqualError(t, err, `database privileges: cioloader's database role lacks ownership of other_shop.data (ALTER ... OWNER TO the role): see deploy/README.md, "Database privileges"`)
}
