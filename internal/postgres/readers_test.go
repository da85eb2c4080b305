package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

// readerBundle is cioloader running as a role that is not a superuser (LOGIN
// CREATEROLE, owner of its database, as deploy/README.md asks), with two
// integrations, one event in the first.
type readerBundle struct {
	*writeBundle
	svc          *admin.Service
	shop, other  domain.Integration
	superuser    *pgx.Conn // on the same database
	loaderRole   string
	databaseName string
}

func setupReaders(t *testing.T) *readerBundle {
	t.Helper()
	ctx := context.Background()
	loader, pw := testdb.Role(t, "loader", "LOGIN CREATEROLE")
	url := testdb.NewOwnedBy(t, loader, pw)
	require.NoError(t, postgres.MigrateUp(ctx, url))
	cfg := storeConfig(4)
	store, err := postgres.Open(ctx, url, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	svc := &admin.Service{Store: store, BaseURL: "http://localhost:8080"}
	shop, err := svc.CreateIntegration(ctx, "Shop")
	require.NoError(t, err)
	other, err := svc.CreateIntegration(ctx, "Other Shop")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	pc, err := pgconn.ParseConfig(url)
	require.NoError(t, err)
	adminURL, _ := testdb.Server(t)
	su, err := pgx.Connect(ctx, testdb.DatabaseURL(adminURL, pc.Database))
	require.NoError(t, err)
	t.Cleanup(func() { _ = su.Close(context.Background()) })
	b := &readerBundle{
		writeBundle: &writeBundle{store: store, schema: shop.Schema, conn: conn, url: url, cfg: cfg},
		svc:         svc, shop: shop, other: other, superuser: su, loaderRole: loader, databaseName: pc.Database,
	}
	b.write(t, 1, event("e1", `{"identifiers":{"id":"u1","email":"a@example.com"}}`))
	// The warehouse views of that event are made in the background, as the
	// loader: wait for them, so the tests see the schema settled (an ownership
	// check after REASSIGN OWNED would otherwise meet a view made after it).
	store.WaitWarehouse()
	return b
}

// relations lists the schema's tables and views, as the loader sees them.
func (b *readerBundle) relations(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := b.conn.Query(context.Background(), `SELECT relname FROM pg_class
		WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY relname`, schema)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// sqlState is the SQLSTATE of err, "" for none.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// Ensure a reader made with --create, logged in as itself, reads every table
// and view of its integration, including a subtable, a view replaced and a
// table created after the grant; is refused everything else; and after the
// revoke reads nothing, not even what is created later.
func TestReaderReadsItsSchemaNowAndLaterAndNothingElse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	role := testdb.RoleName(t, "analyst") // before the database: dropped after it
	b := setupReaders(t)
	nr, err := b.svc.GrantReader(ctx, b.shop.ID, role, true)
	require.NoError(t, err)
	require.Equal(t, role, nr.Role)
	require.Len(t, nr.Password, 32)
	require.Contains(t, nr.URL, "postgres://"+role+":"+nr.Password+"@")
	require.Contains(t, nr.URL, "/"+b.databaseName)
	require.NotContains(t, nr.URL, b.loaderRole)

	reader, err := pgx.Connect(ctx, nr.URL)
	require.NoError(t, err)
	defer reader.Close(ctx)
	var who string
	require.NoError(t, reader.QueryRow(ctx, `SELECT current_user`).Scan(&who))
	require.Equal(t, role, who)
	readsAll := func(what string) {
		t.Helper()
		for _, rel := range b.relations(t, b.shop.Schema) {
			_, err := reader.Exec(ctx, `SELECT * FROM `+pgx.Identifier{b.shop.Schema, rel}.Sanitize()+` LIMIT 1`)
			require.NoError(t, err, "%s: %s", what, rel)
		}
	}
	readsAll("right after the grant")

	// Later: a new array makes a subtable, the views are replaced (as at every
	// start), and a table appears (a summary of a later release).
	b.write(t, 2, event("e2", `{"items":[{"sku":"a"}]}`))
	require.NoError(t, b.store.EnsureIntegrationObjects(ctx))
	_, err = b.conn.Exec(ctx, `CREATE TABLE `+b.table("later_summary")+` AS SELECT 1 AS n`)
	require.NoError(t, err)
	require.Contains(t, b.relations(t, b.shop.Schema), "data__data__items")
	readsAll("after a subtable, replaced views and a new table")
	var skus string
	require.NoError(t, reader.QueryRow(ctx, `SELECT string_agg(sku, ',') FROM `+b.table("data__data__items")).Scan(&skus))
	require.Equal(t, "a", skus)
	var email string
	require.NoError(t, reader.QueryRow(ctx, `SELECT email FROM `+b.table("events")+` WHERE event_id = 'e1'`).Scan(&email))
	require.Equal(t, "a@example.com", email, "the views read data and event_facts with their owner's rights")

	other := pgx.Identifier{b.other.Schema, "data"}.Sanitize()
	for _, stmt := range []string{
		`SELECT signing_key FROM cioloader.integrations`,
		`SELECT cioloader.erasure_key('email', 'a@example.com')`,
		`SELECT * FROM public.cioloader_schema_migrations`,
		`SELECT * FROM ` + other,
		`INSERT INTO ` + b.table("data") + ` (event_id, _sdc_sequence) VALUES ('x', 1)`,
		`UPDATE ` + b.table("data") + ` SET _sdc_sequence = 0`,
		`DELETE FROM ` + b.table("data"),
		`TRUNCATE ` + b.table("data"),
		`TRUNCATE ` + b.table("data__data__items"),
		`DELETE FROM ` + b.table("later_summary"),
		`CREATE TABLE ` + b.table("mine") + ` (a int)`,
		`CREATE VIEW ` + b.table("mine") + ` AS SELECT 1`,
		`ALTER TABLE ` + b.table("data") + ` ADD COLUMN x int`,
		`DROP VIEW ` + b.table("events"),
		`CREATE TABLE public.mine (a int)`, // PUBLIC's CREATE on public is gone since Postgres 15 (deploy/README.md)
		`CREATE SCHEMA mine`,
	} {
		_, err := reader.Exec(ctx, stmt)
		require.Equal(t, "42501", sqlState(err), "%s: want permission denied", stmt)
	}
	// Kept, and said in the README: PUBLIC's TEMP on the database (a temporary
	// table holds only the session's own rows).
	_, err = reader.Exec(ctx, `CREATE TEMP TABLE scratch AS SELECT 1 AS n`)
	require.NoError(t, err)

	list, err := b.svc.ListReaders(ctx, b.shop.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, role, list[0].Role)
	require.True(t, list[0].Complete, "%+v", list[0])
	require.True(t, list[0].CanLogin)
	list, err = b.svc.ListReaders(ctx, b.other.ID)
	require.NoError(t, err)
	require.Empty(t, list)

	// Granting again is no error; revoking takes everything back.
	_, err = b.svc.GrantReader(ctx, b.shop.ID, role, false)
	require.NoError(t, err)
	require.NoError(t, b.svc.RevokeReader(ctx, b.shop.ID, role))
	require.NoError(t, b.svc.RevokeReader(ctx, b.shop.ID, role), "revoking twice is no error")
	b.write(t, 3, event("e3", `{"tags":["x"]}`))
	_, err = b.conn.Exec(ctx, `CREATE TABLE `+b.table("even_later")+` AS SELECT 1 AS n`)
	require.NoError(t, err)
	for _, rel := range b.relations(t, b.shop.Schema) {
		_, err := reader.Exec(ctx, `SELECT * FROM `+pgx.Identifier{b.shop.Schema, rel}.Sanitize()+` LIMIT 1`)
		require.Equal(t, "42501", sqlState(err), "after revoke: %s", rel)
	}
	var grants int
	require.NoError(t, b.superuser.QueryRow(ctx, `SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a
		WHERE c.relnamespace = $1::regnamespace AND a.grantee = $2::regrole`, b.shop.Schema, role).Scan(&grants))
	require.Zero(t, grants, "no grant is left on any relation")
	require.NoError(t, b.superuser.QueryRow(ctx, `SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a
		WHERE a.grantee = $1::regrole`, role).Scan(&grants))
	require.Zero(t, grants, "no default privilege is left")
	list, err = b.svc.ListReaders(ctx, b.shop.ID)
	require.NoError(t, err)
	require.Empty(t, list)

	// The password is real: a SCRAM secret, and a login with it works where
	// the server asks for one (see requirePasswordLogin).
	var secret string
	require.NoError(t, b.superuser.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&secret))
	require.True(t, strings.HasPrefix(secret, "SCRAM-SHA-256$4096:"), secret)
	requirePasswordLogin(t, b, role, nr.Password)
}

// requirePasswordLogin logs in as role over TCP with password, and with a
// wrong one, on the local test cluster, after asking it for SCRAM
// authentication for that role alone (the test cluster trusts everyone
// else). On another server (TEST_DATABASE_URL, a container) the reader's
// URL was already its login, with whatever authentication that server asks.
func requirePasswordLogin(t *testing.T, b *readerBundle, role, password string) {
	t.Helper()
	ctx := context.Background()
	_, cluster := testdb.Server(t)
	if cluster == nil {
		t.Log("not the local test cluster: the password was checked by the server's own authentication, if it asks for one")
		return
	}
	hba := filepath.Join(cluster.DataDir(), "pg_hba.conf")
	old, err := os.ReadFile(hba)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(hba, append([]byte("host all "+role+" 127.0.0.1/32 scram-sha-256\n"), old...), 0o600))
	_, err = b.superuser.Exec(ctx, `SELECT pg_reload_conf()`)
	require.NoError(t, err)
	tcp := cluster.TCPURL(b.databaseName)
	require.Eventually(t, func() bool {
		conn, err := pgx.Connect(ctx, testdb.As(tcp, role, "wrong"))
		if err == nil {
			_ = conn.Close(ctx)
		}
		return sqlState(err) == "28P01" // invalid_password: SCRAM is asked for
	}, 10*time.Second, 50*time.Millisecond)
	conn, err := pgx.Connect(ctx, testdb.As(tcp, role, password))
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
}

// Ensure a role that could do more than read, or already does, is refused
// with a clear message and nothing is granted; a bad or reserved name is
// refused before the database is asked.
func TestReaderGrantRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mk := func(prefix, attrs string) string { name, _ := testdb.Role(t, prefix, attrs); return name }
	super, createrole, bypass, repl := mk("su", "SUPERUSER"), mk("cr", "CREATEROLE"), mk("rls", "BYPASSRLS"), mk("repl", "REPLICATION")
	inSuper, member, writer, owner, readAll, existing := mk("insu", ""), mk("member", ""), mk("writer", ""), mk("owner", ""), mk("readall", ""), mk("existing", "LOGIN")
	b := setupReaders(t)
	for _, stmt := range []string{
		`GRANT ` + super + ` TO ` + inSuper,
		`GRANT ` + b.loaderRole + ` TO ` + member,
		`GRANT USAGE ON SCHEMA ` + b.shop.Schema + ` TO ` + writer,
		`GRANT INSERT ON ` + b.table("data") + ` TO ` + writer,
		`CREATE TABLE ` + b.table("owned") + ` (a int)`,
		`ALTER TABLE ` + b.table("owned") + ` OWNER TO ` + owner,
		`GRANT pg_read_all_data TO ` + readAll,
	} {
		_, err := b.superuser.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	for role, want := range map[string]string{
		b.loaderRole:   "is cioloader's own role",
		super:          "has SUPERUSER",
		createrole:     "has CREATEROLE",
		bypass:         "has BYPASSRLS",
		repl:           "has REPLICATION",
		inSuper:        "has SUPERUSER through its membership in role " + super,
		member:         "is a member of cioloader's own role",
		writer:         "can already write or create in schema",
		owner:          "owns schema",
		readAll:        "can reach the control schema cioloader",
		"no_such_role": "does not exist",
		"Analyst":      "is not a plain identifier",
		"a-b":          "is not a plain identifier",
		"public":       "is reserved",
		"pg_monitor":   "is reserved",
	} {
		_, err := b.svc.GrantReader(ctx, b.shop.ID, role, false)
		require.ErrorContains(t, err, want, role)
		require.False(t, errors.Is(err, domain.ErrUnavailable), role)
	}
	_, err := b.svc.GrantReader(ctx, b.shop.ID, existing, true)
	require.ErrorIs(t, err, domain.ErrConflict)
	require.ErrorContains(t, err, "grant it without --create")
	_, err = b.svc.GrantReader(ctx, 999, existing, false)
	require.ErrorIs(t, err, domain.ErrNotFound)

	var n int
	require.NoError(t, b.superuser.QueryRow(ctx, `SELECT count(*) FROM pg_default_acl`).Scan(&n))
	require.Zero(t, n, "no refused grant left default privileges")
	list, err := b.svc.ListReaders(ctx, b.shop.ID)
	require.NoError(t, err)
	require.Len(t, list, 1, "only the hand-made writer shows, as it is")
	require.Equal(t, writer, list[0].Role)
	require.False(t, list[0].Complete)

	require.ErrorContains(t, b.svc.RevokeReader(ctx, b.shop.ID, b.loaderRole), "revoking would take cioloader's rights")
	require.ErrorIs(t, b.svc.RevokeReader(ctx, b.shop.ID, "no_such_role"), domain.ErrNotFound)
	require.NoError(t, b.svc.RevokeReader(ctx, b.shop.ID, writer))
	var canInsert bool
	require.NoError(t, b.superuser.QueryRow(ctx, `SELECT has_table_privilege($1, $2, 'INSERT')`, writer, b.table("data")).Scan(&canInsert))
	require.False(t, canInsert, "revoke takes every right on the schema's tables")
}

// Ensure subtables created while the grant runs are readable too: those made
// before its default privileges committed are caught by the grant on
// existing relations, which waits for their transactions.
func TestReaderGrantWhileSubtablesAppear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	role := testdb.RoleName(t, "racer") // before the database: dropped after it
	b := setupReaders(t)
	var reqs []*ingest.Request
	for i := range 40 {
		reqs = append(reqs, b.request(t, []int64{int64(10 + i)}, event(fmt.Sprintf("r%d", i), fmt.Sprintf(`{"list_%d":[{"v":1}]}`, i))))
	}
	written := make(chan error, 1)
	go func() {
		for _, r := range reqs {
			if err := b.store.WriteBatch(ctx, []*ingest.Request{r}); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	began := time.Now()
	nr, err := b.svc.GrantReader(ctx, b.shop.ID, role, true)
	require.NoError(t, err)
	t.Logf("grant while subtables appear: %s", time.Since(began).Round(time.Millisecond))
	require.NoError(t, <-written)
	reader, err := pgx.Connect(ctx, nr.URL)
	require.NoError(t, err)
	defer reader.Close(ctx)
	rels := b.relations(t, b.shop.Schema)
	require.Greater(t, len(rels), 40)
	for _, rel := range rels {
		_, err := reader.Exec(ctx, `SELECT * FROM `+pgx.Identifier{b.shop.Schema, rel}.Sanitize()+` LIMIT 1`)
		require.NoError(t, err, rel)
	}
}
