package main

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
	"github.com/cioloader/cioloader/migrations"
)

// dbVars is the environment of a command working on a fresh test database.
func dbVars(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{"DATABASE_URL": testdb.New(t), "CIOLOADER_PUBLIC_URL": "https://hooks.example.com/"}
}

func TestIntegrationsCLI(t *testing.T) {
	t.Parallel()
	vars := dbVars(t)

	r := cli(t, vars, "", "integrations", "list")
	requireOK(t, r)
	require.Equal(t, "ID  NAME  SCHEMA  CREATED  STATUS\n", r.stdout, "only the header when there are none")
	r = cli(t, vars, "", "integrations", "list", "--json")
	requireOK(t, r)
	require.Equal(t, "[]\n", r.stdout)

	r = cli(t, vars, "", "integrations", "create", "Shop One")
	requireOK(t, r)
	require.Equal(t, "created integration 1 \"Shop One\" with schema shop_one\n", r.stdout)
	require.Empty(t, r.stderr)

	r = cli(t, vars, "", "integrations", "create", "--json", "Second Shop")
	requireOK(t, r)
	second := decode[domain.Integration](t, r.stdout)
	require.Equal(t, "Second Shop", second.Name)
	require.Equal(t, "second_shop", second.Schema)
	require.Nil(t, second.DisabledAt)
	r = cli(t, vars, "", "integrations", "create", "Third", "--json") // flags after the arguments too
	requireOK(t, r)
	third := decode[domain.Integration](t, r.stdout)

	r = cli(t, vars, "", "integrations", "create", "shop one")
	requireFailure(t, r, exitFail, `schema "shop_one" already exists`)
	r = cli(t, vars, "", "integrations", "create", "   ")
	requireFailure(t, r, exitFail, `"name" is required`)

	r = cli(t, vars, "", "integrations", "list")
	requireOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4)
	require.Regexp(t, `^1\s+Shop One\s+shop_one\s+\S+Z\s+active$`, lines[1])
	require.Regexp(t, `^2\s+Second Shop\s+second_shop\s+\S+Z\s+active$`, lines[2])

	// delete by name (--json), by schema (text), by id.
	r = cli(t, vars, "", "integrations", "delete", "Second Shop", "--json")
	requireOK(t, r)
	deleted := decode[domain.Integration](t, r.stdout)
	require.Equal(t, second.ID, deleted.ID)
	require.NotNil(t, deleted.DisabledAt)
	r = cli(t, vars, "", "integrations", "delete", "shop_one")
	requireOK(t, r)
	require.Equal(t, "deleted integration 1 \"Shop One\": its URLs are revoked; schema shop_one and its data stay\n", r.stdout)
	r = cli(t, vars, "", "integrations", "delete", strconv.FormatInt(third.ID, 10))
	requireOK(t, r)
	require.Contains(t, r.stdout, fmt.Sprintf("deleted integration %d \"Third\"", third.ID))
	r = cli(t, vars, "", "integrations", "delete", "shop_one", "--json")
	requireOK(t, r) // deleting twice is not an error
	require.NotNil(t, decode[domain.Integration](t, r.stdout).DisabledAt)

	for _, ref := range []string{"nope", "999"} {
		r = cli(t, vars, "", "integrations", "delete", ref)
		requireFailure(t, r, exitFail, ref)
	}

	r = cli(t, vars, "", "integrations", "list", "--json")
	requireOK(t, r)
	list := decode[[]domain.Integration](t, r.stdout)
	require.Len(t, list, 3)
	for _, in := range list {
		require.NotNil(t, in.DisabledAt, in.Name)
	}
	r = cli(t, vars, "", "integrations", "list")
	requireOK(t, r)
	require.Equal(t, 3, strings.Count(r.stdout, "deleted\n"))
}

func TestURLsCLI(t *testing.T) {
	t.Parallel()
	vars := dbVars(t)
	in := decode[domain.Integration](t, cli(t, vars, "", "integrations", "create", "My Shop", "--json").stdout)
	require.Equal(t, "my_shop", in.Schema)
	other := decode[domain.Integration](t, cli(t, vars, "", "integrations", "create", "Other", "--json").stdout)

	// generate by id (text): the URL alone on stdout, the advice on stderr.
	r := cli(t, vars, "", "urls", "generate", strconv.FormatInt(in.ID, 10))
	requireOK(t, r)
	require.Regexp(t, `^https://hooks\.example\.com/v1/webhooks/whk_[A-Za-z0-9_-]+\n$`, r.stdout)
	require.Contains(t, r.stderr, "only time it is shown")
	firstURL := strings.TrimSpace(r.stdout)

	// generate by name (--json).
	r = cli(t, vars, "", "urls", "generate", "My Shop", "--json")
	requireOK(t, r)
	second := decode[admin.GeneratedURL](t, r.stdout)
	require.Equal(t, in.ID, second.IntegrationID)
	require.Equal(t, "https://hooks.example.com/v1/webhooks/"+second.Token, second.URL)
	require.NotEqual(t, firstURL, second.URL)

	// A third active URL is refused (by schema).
	r = cli(t, vars, "", "urls", "generate", "my_shop")
	requireFailure(t, r, exitFail, "already has 2 active webhook URLs: revoke one before generating another")
	require.Empty(t, r.stdout)

	// list by schema (text) and by id and name (--json): newest first.
	r = cli(t, vars, "", "urls", "list", "my_shop")
	requireOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ID\s+TOKEN\s+CREATED\s+LAST USED\s+REVOKED$`, lines[0])
	require.Regexp(t, fmt.Sprintf(`^%d\s+whk_\S+…\s+\S+Z\s+-\s+-$`, second.ID), lines[1])
	require.NotContains(t, r.stdout, second.Token, "tokens are never listed")
	for _, ref := range []string{strconv.FormatInt(in.ID, 10), "My Shop"} {
		r = cli(t, vars, "", "urls", "list", "--json", ref)
		requireOK(t, r)
		urls := decode[[]domain.WebhookURL](t, r.stdout)
		require.Len(t, urls, 2)
		require.Equal(t, second.ID, urls[0].ID)
		require.True(t, strings.HasPrefix(second.Token, urls[0].TokenPrefix))
		require.Nil(t, urls[0].RevokedAt)
	}
	r = cli(t, vars, "", "urls", "list", "other", "--json")
	requireOK(t, r)
	require.Equal(t, "[]\n", r.stdout)
	r = cli(t, vars, "", "urls", "list", "nobody")
	requireFailure(t, r, exitFail, `no integration has the id, name or schema "nobody"`)

	// revoke (--json, then text), then a new URL can be made.
	r = cli(t, vars, "", "urls", "revoke", strconv.FormatInt(second.ID, 10), "--json")
	requireOK(t, r)
	require.JSONEq(t, fmt.Sprintf(`{"id": %d, "revoked": true}`, second.ID), r.stdout)
	r = cli(t, vars, "", "urls", "revoke", strconv.FormatInt(second.ID, 10))
	requireOK(t, r)
	require.Equal(t, fmt.Sprintf("revoked webhook URL %d\n", second.ID), r.stdout)
	r = cli(t, vars, "", "urls", "revoke", "999999")
	requireFailure(t, r, exitFail, "webhook URL 999999 does not exist")

	r = cli(t, vars, "", "urls", "list", "my_shop", "--json")
	requireOK(t, r)
	urls := decode[[]domain.WebhookURL](t, r.stdout)
	require.NotNil(t, urls[0].RevokedAt)
	require.Nil(t, urls[1].RevokedAt)
	r = cli(t, vars, "", "urls", "generate", "my_shop", "--json")
	requireOK(t, r)
	require.Equal(t, in.ID, decode[admin.GeneratedURL](t, r.stdout).IntegrationID)

	// Deleting the integration revokes its URLs; new ones are refused.
	requireOK(t, cli(t, vars, "", "integrations", "delete", "my_shop"))
	r = cli(t, vars, "", "urls", "list", "my_shop", "--json")
	requireOK(t, r)
	for _, u := range decode[[]domain.WebhookURL](t, r.stdout) {
		require.NotNil(t, u.RevokedAt)
	}
	r = cli(t, vars, "", "urls", "generate", "my_shop")
	requireFailure(t, r, exitFail, "is deleted")
	requireOK(t, cli(t, vars, "", "urls", "generate", strconv.FormatInt(other.ID, 10)))
}

// previousMigration is the highest migration version below latest.
func previousMigration(t *testing.T, latest uint) uint {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, ".")
	require.NoError(t, err)
	var prev uint
	for _, e := range entries {
		n, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseUint(n, 10, 64)
		if ok && err == nil && uint(v) < latest && uint(v) > prev {
			prev = uint(v)
		}
	}
	require.NotZero(t, prev)
	return prev
}

func TestMigrateCLI(t *testing.T) {
	t.Parallel()
	vars := dbVars(t)
	latest, err := postgres.Latest()
	require.NoError(t, err)

	r := cli(t, vars, "", "migrate", "version")
	requireOK(t, r)
	require.Equal(t, fmt.Sprintf("control schema version %d (dirty=false; this binary's latest is %d)\n", latest, latest), r.stdout)
	r = cli(t, vars, "", "migrate", "version", "--json")
	requireOK(t, r)
	require.Equal(t, admin.MigrationStatus{Action: "version", Version: latest, Latest: latest}, decode[admin.MigrationStatus](t, r.stdout))

	// Migration numbers may have gaps: one step down is the previous file's version.
	previous := previousMigration(t, latest)
	r = cli(t, vars, "", "migrate", "down", "1", "--json")
	requireOK(t, r)
	require.Equal(t, admin.MigrationStatus{Action: "down", Version: previous, Latest: latest}, decode[admin.MigrationStatus](t, r.stdout))
	r = cli(t, vars, "", "migrate", "version")
	requireOK(t, r)
	require.Contains(t, r.stdout, fmt.Sprintf("control schema version %d (dirty=false", previous))

	r = cli(t, vars, "", "migrate", "up")
	requireOK(t, r)
	require.Contains(t, r.stdout, fmt.Sprintf("control schema version %d (dirty=false", latest))
	r = cli(t, vars, "", "migrate", "--json") // up is the default; a second up is no change
	requireOK(t, r)
	require.Equal(t, admin.MigrationStatus{Action: "up", Version: latest, Latest: latest}, decode[admin.MigrationStatus](t, r.stdout))

	// The control schema works again.
	requireOK(t, cli(t, vars, "", "integrations", "create", "after migrations"))
	r = cli(t, vars, "", "migrate", "down", "99")
	requireFailure(t, r, exitFail, fmt.Sprintf("cannot roll back 99 migrations: %d applied (control schema version %d)", postgres.AppliedMigrations(latest), latest))
}
