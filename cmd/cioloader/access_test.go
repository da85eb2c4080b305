package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/testdb"
)

func TestAccessCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	role := testdb.RoleName(t, "analyst")
	dbURL := testdb.New(t)
	vars := map[string]string{"DATABASE_URL": dbURL}
	requireOK(t, cli(t, vars, "", "integrations", "create", "Access Shop"))

	r := cli(t, vars, "", "access", "grant", "access_shop", role, "--create")
	requireOK(t, r)
	url := strings.TrimSpace(r.stdout)
	require.True(t, strings.HasPrefix(url, "postgres://"+role+":"), url)
	require.Contains(t, r.stderr, "only time its password is shown")
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT * FROM access_shop.events`)
	require.NoError(t, err)

	r = cli(t, vars, "", "access", "list", "access_shop")
	requireOK(t, r)
	require.Regexp(t, `(?m)^`+role+`\s+yes\s+\d+ of \d+\s+yes\s+granted$`, r.stdout)
	r = cli(t, vars, "", "access", "list", "--json", "1")
	requireOK(t, r)
	list := decode[[]domain.Reader](t, r.stdout)
	require.Len(t, list, 1)
	require.True(t, list[0].Complete)

	r = cli(t, vars, "", "access", "grant", "Access Shop", role)
	requireOK(t, r)
	require.Equal(t, "granted role "+role+" read access to access_shop: every table and view now, and what cioloader creates there later\n", r.stdout)
	requireFailure(t, cli(t, vars, "", "access", "grant", "access_shop", role, "--create"), exitFail, "already exists")
	requireFailure(t, cli(t, vars, "", "access", "grant", "access_shop", "Bad-Name"), exitFail, "not a plain identifier")
	requireFailure(t, cli(t, vars, "", "access", "grant", "access_shop", "postgres"), exitFail, "postgres")
	requireFailure(t, cli(t, vars, "", "access", "grant", "access_shop"), exitUsage, "usage: cioloader access grant INTEGRATION ROLE")
	requireFailure(t, cli(t, vars, "", "access", "list", "no_such"), exitFail, "no_such")
	requireFailure(t, cli(t, vars, "", "access"), exitUsage, "grant, revoke, list")

	r = cli(t, vars, "", "access", "revoke", "access_shop", role)
	requireOK(t, r)
	require.Contains(t, r.stdout, "revoked role "+role+"'s access to access_shop")
	r = cli(t, vars, "", "access", "list", "access_shop")
	requireOK(t, r)
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), "the header only: %s", r.stdout)
	_, err = conn.Exec(ctx, `SELECT * FROM access_shop.events`)
	require.ErrorContains(t, err, "permission denied")

	r = cli(t, vars, "", "db-url", "--role", role)
	requireOK(t, r)
	require.True(t, strings.HasPrefix(r.stdout, "postgres://"+role+"@"), r.stdout)
	requireFailure(t, cli(t, vars, "", "db-url", "--role", "Bad-Name"), exitUsage, "not a plain identifier")
}
