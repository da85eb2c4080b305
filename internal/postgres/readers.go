package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
)

// readers gives Postgres roles read-only access to integration schemas
// (SPEC 10.14). Nothing is recorded outside the catalogs: ListReaders reads
// the grants themselves, so it also shows one undone by hand.
//
// A grant is USAGE on the schema, SELECT on every relation in it, and the
// default privilege "SELECT on what cioloader's role creates in the schema
// from now on" (ALTER DEFAULT PRIVILEGES FOR ROLE CURRENT_USER). Every
// replica runs as that role, so subtables and summaries any replica creates
// later are readable at once; views are CREATE OR REPLACE, which keeps their
// grants. A view runs with its owner's rights, so the reader reads through
// it what it reads (the schema's own tables) without a grant on them.
type readers struct {
	pool *pgxpool.Pool
	url  string // the loader's own DATABASE_URL, for readers' URLs
}

// accessLockKey serialises grants and revokes on one schema across replicas.
const accessLockKey = `hashtextextended('access:' || $1::text, 0)`

// defaultsLockKey orders a change of the schema's default privileges against
// the creation of a table in it: the transaction that changes them holds it
// exclusively, a new subtable's holds it shared (createSubtable). Without it, a
// CREATE TABLE that read the old defaults just before the change committed,
// but took its transaction id just after catchUp looked at the running ones,
// made a table the reader could not read.
const defaultsLockKey = `hashtextextended('access-defaults:' || $1::text, 0)`

// lockDefaults takes defaultsLockKey exclusively for the transaction.
func lockDefaults(ctx context.Context, tx pgx.Tx, schema string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+defaultsLockKey+`)`, schema)
	return err
}

// relkinds are the relations a reader reads: tables, partitioned tables,
// views, materialized views, foreign tables.
const relkinds = `('r', 'p', 'v', 'm', 'f')`

// GrantReader gives role read access to schema. With password set it first
// creates role as a LOGIN role with that password (ErrConflict when the role
// exists); otherwise the role must exist (ErrNotFound). A role that could do
// more than read, or already can, is refused (ErrInvalid): see refusal.
// Granting twice is no error.
func (r *readers) GrantReader(ctx context.Context, schema, role, password string) error {
	return r.underSchemaLock(ctx, "grant", schema, func(conn *pgxpool.Conn) error {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := lockDefaults(ctx, tx, schema); err != nil {
				return err
			}
			if password != "" {
				if err := createRole(ctx, tx, role, password); err != nil {
					return err
				}
			}
			if err := refusal(ctx, tx, schema, role); err != nil {
				return err
			}
			return execAll(ctx, tx, []string{
				`ALTER DEFAULT PRIVILEGES FOR ROLE CURRENT_USER IN SCHEMA ` + ident(schema) + ` GRANT SELECT ON TABLES TO ` + ident(role),
				`GRANT USAGE ON SCHEMA ` + ident(schema) + ` TO ` + ident(role),
			})
		})
		if err != nil {
			return err
		}
		err = catchUp(ctx, conn, schema, func(tables string) string { return `GRANT SELECT ON ` + tables + ` TO ` + ident(role) })
		if err != nil {
			return fmt.Errorf("%w (role %q can read what is created from now on, not yet what exists: grant it again, without --create)", err, role)
		}
		return nil
	})
}

// RevokeReader removes every right GrantReader gave role on schema: USAGE,
// SELECT on every relation (any other right on them too) and the default
// privileges. The role itself stays (it may read other integrations); an
// unknown role is ErrNotFound, and one cioloader's own rights come from is
// refused. Revoking twice is no error.
func (r *readers) RevokeReader(ctx context.Context, schema, role string) error {
	return r.underSchemaLock(ctx, "revoke", schema, func(conn *pgxpool.Conn) error {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := lockDefaults(ctx, tx, schema); err != nil {
				return err
			}
			var exists, loaderNeedsIt bool
			// Whether cioloader's role inherits rights from role ('USAGE': since
			// Postgres 16 a role's creator is a member of it without inheriting,
			// which takes nothing from cioloader here). A superuser has every
			// role's rights: only its own name counts.
			err := tx.QueryRow(ctx, `SELECT true, r.rolname = CURRENT_USER
				  OR (NOT (SELECT rolsuper FROM pg_roles WHERE rolname = CURRENT_USER) AND pg_has_role(CURRENT_USER, r.oid, 'USAGE'))
				  OR r.oid = (SELECT nspowner FROM pg_namespace WHERE nspname = $2)
				FROM pg_roles r WHERE r.rolname = $1`, role, schema).Scan(&exists, &loaderNeedsIt)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return domain.Errorf(domain.ErrNotFound, "role %q does not exist", role)
			case err != nil:
				return err
			case loaderNeedsIt:
				return domain.Errorf(domain.ErrInvalid, "role %q is cioloader's own role, one it inherits from, or the schema's owner: revoking would take cioloader's rights", role)
			}
			return execAll(ctx, tx, []string{
				`ALTER DEFAULT PRIVILEGES FOR ROLE CURRENT_USER IN SCHEMA ` + ident(schema) + ` REVOKE ALL ON TABLES FROM ` + ident(role),
				`REVOKE ALL ON SCHEMA ` + ident(schema) + ` FROM ` + ident(role),
			})
		})
		if err != nil {
			return err
		}
		return catchUp(ctx, conn, schema, func(tables string) string { return `REVOKE ALL ON ` + tables + ` FROM ` + ident(role) })
	})
}

// ListReaders lists the roles with any grant on schema or its default
// privileges (other than the owner and cioloader's own role), with what
// they can read now.
func (r *readers) ListReaders(ctx context.Context, schema string) ([]domain.Reader, error) {
	rows, err := r.pool.Query(ctx, `
		WITH s AS (SELECT oid, nspowner, nspacl FROM pg_namespace WHERE nspname = $1),
		grantees AS (
			SELECT a.grantee FROM s, aclexplode(s.nspacl) a
			UNION
			SELECT a.grantee FROM s, pg_default_acl d, aclexplode(d.defaclacl) a WHERE d.defaclnamespace = s.oid
		)
		SELECT ro.rolname, ro.rolcanlogin, has_schema_privilege(ro.oid, s.oid, 'USAGE'),
		       EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
		                WHERE d.defaclnamespace = s.oid AND d.defaclobjtype = 'r' AND d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = CURRENT_USER)
		                  AND a.grantee = ro.oid AND a.privilege_type = 'SELECT'),
		       rel.readable, rel.total
		FROM s, grantees g JOIN pg_roles ro ON ro.oid = g.grantee,
		     LATERAL (SELECT count(*) FILTER (WHERE has_table_privilege(ro.oid, c.oid, 'SELECT')) AS readable, count(*) AS total
		                FROM pg_class c WHERE c.relnamespace = s.oid AND c.relkind IN `+relkinds+`) rel
		WHERE ro.oid <> s.nspowner AND ro.rolname <> CURRENT_USER
		ORDER BY ro.rolname`, schema)
	if err != nil {
		return nil, fmt.Errorf("list readers: %w", translate(err))
	}
	var out []domain.Reader
	var rd domain.Reader
	_, err = pgx.ForEachRow(rows, []any{&rd.Role, &rd.CanLogin, &rd.Usage, &rd.Future, &rd.Readable, &rd.Relations}, func() error {
		rd.Complete = rd.Usage && rd.Future && rd.Readable == rd.Relations
		out = append(out, rd)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list readers: %w", translate(err))
	}
	return out, nil
}

// ReaderURL is the URL a reader connects with: the loader's own host, port,
// database and TLS settings, with role and password as the user.
func (r *readers) ReaderURL(role, password string) (string, error) {
	return ReaderURL(r.url, role, password)
}

// underSchemaLock runs fn on one connection holding the session advisory
// lock of schema's access, so that two grants or revokes on one schema, from
// any replica, run one after the other, both of their steps included.
func (r *readers) underSchemaLock(ctx context.Context, what, schema string, fn func(*pgxpool.Conn) error) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return accessError(what, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+accessLockKey+`)`, schema); err != nil {
		return accessError(what, err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+accessLockKey+`)`, schema); err != nil {
			_ = conn.Conn().PgConn().Close(context.WithoutCancel(ctx)) // a closed session holds no lock
		}
	}()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return accessError(what, err)
	}
	if !exists {
		return domain.Errorf(domain.ErrNotFound, "schema %q does not exist (restart cioloader to create it again)", schema)
	}
	return accessError(what, fn(conn))
}

// createRole makes a LOGIN role that can do nothing else. The password
// reaches Postgres as a SCRAM verifier, never in clear, so no statement log
// holds it.
func createRole(ctx context.Context, tx pgx.Tx, role, password string) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `CREATE ROLE `+ident(role)+` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD `+quoteLiteral(verifier))
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42710": // duplicate_object
		return domain.Errorf(domain.ErrConflict, "role %q already exists: grant it without --create (its password stays as it is)", role)
	case errors.As(err, &pgErr) && pgErr.Code == "42501": // insufficient_privilege
		return domain.Errorf(domain.ErrInvalid, "cioloader's database role cannot create roles (it needs CREATEROLE): create role %q yourself and grant it without --create", role)
	}
	return err
}

// refusal says why role must not become a reader of schema, or nil. A
// reader is refused when it is (or can become, through membership)
// cioloader's own role or a role with SUPERUSER, CREATEROLE, REPLICATION or
// BYPASSRLS; when it owns the schema or anything in it; when it can already
// write there or create in it; or when it can reach the control schema.
func refusal(ctx context.Context, tx pgx.Tx, schema, role string) error {
	var isLoader, inLoader, owns, writes, control bool
	var attrs *string
	err := tx.QueryRow(ctx, `
		SELECT r.rolname = CURRENT_USER, pg_has_role(r.oid, CURRENT_USER, 'MEMBER'),
		       (SELECT concat_ws(' ', CASE WHEN x.rolsuper THEN 'SUPERUSER' END, CASE WHEN x.rolcreaterole THEN 'CREATEROLE' END,
		                   CASE WHEN x.rolreplication THEN 'REPLICATION' END, CASE WHEN x.rolbypassrls THEN 'BYPASSRLS' END)
		               || CASE WHEN x.oid <> r.oid THEN ' through its membership in role ' || quote_ident(x.rolname) ELSE '' END
		          FROM pg_roles x WHERE pg_has_role(r.oid, x.oid, 'MEMBER') AND x.rolname <> CURRENT_USER AND (x.rolsuper OR x.rolcreaterole OR x.rolreplication OR x.rolbypassrls)
		         ORDER BY x.oid <> r.oid, x.rolname LIMIT 1),
		       pg_has_role(r.oid, n.nspowner, 'MEMBER')
		         OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND pg_has_role(r.oid, c.relowner, 'MEMBER'))
		         OR EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = n.oid AND pg_has_role(r.oid, p.proowner, 'MEMBER')),
		       has_schema_privilege(r.oid, n.oid, 'CREATE')
		         OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN `+relkinds+`
		                       AND (has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
		                            OR has_any_column_privilege(r.oid, c.oid, 'INSERT, UPDATE, REFERENCES'))),
		       has_schema_privilege(r.oid, 'cioloader', 'USAGE') OR has_schema_privilege(r.oid, 'cioloader', 'CREATE')
		FROM pg_roles r, pg_namespace n WHERE r.rolname = $1 AND n.nspname = $2`, role, schema).
		Scan(&isLoader, &inLoader, &attrs, &owns, &writes, &control)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return domain.Errorf(domain.ErrNotFound, "role %q does not exist: create it first, or use --create (\"create\": true)", role)
	case err != nil:
		return err
	case isLoader:
		return domain.Errorf(domain.ErrInvalid, "role %q is cioloader's own role: a reader needs a role of its own", role)
	case attrs != nil:
		return domain.Errorf(domain.ErrInvalid, "role %q has %s: a reader must not", role, *attrs)
	case inLoader:
		return domain.Errorf(domain.ErrInvalid, "role %q is a member of cioloader's own role, so it can write everything: use a role of its own", role)
	case owns:
		return domain.Errorf(domain.ErrInvalid, "role %q owns schema %q or objects in it: a reader must not", role, schema)
	case writes:
		return domain.Errorf(domain.ErrInvalid, "role %q can already write or create in schema %q: take that back first (cioloader access revoke takes every right on the schema)", role, schema)
	case control:
		return domain.Errorf(domain.ErrInvalid, "role %q can reach the control schema cioloader, where signing keys are kept: a reader must not", role)
	}
	return nil
}

// catchUp runs the GRANT or REVOKE stmt(tables) on the schema's relations
// that cioloader's role owns (one owned by another role, made by hand, is
// not its to grant) once the transactions running when the default
// privileges changed have ended: a subtable created by one of them used the
// old defaults, and the statement must see it. A long transaction elsewhere
// is waited for a few seconds at most. GRANT and ALTER TABLE both update the
// table's pg_class row, and on older servers the later one fails with "tuple
// concurrently updated": that is retried.
func catchUp(ctx context.Context, conn *pgxpool.Conn, schema string, stmt func(tables string) string) error {
	if err := waitForRunningTransactions(ctx, conn, 5*time.Second); err != nil {
		return fmt.Errorf("apply to existing tables: %w", err)
	}
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if err = applyToTables(ctx, conn, schema, stmt); !retryableCatalogError(err) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("apply to existing tables: %w", ctx.Err())
		case <-time.After(time.Duration(10*(attempt+1)) * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("apply to existing tables: %w", err)
	}
	return nil
}

func applyToTables(ctx context.Context, conn *pgxpool.Conn, schema string, stmt func(tables string) string) error {
	var tables string
	err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(format('%I.%I', $1::text, c.relname), ', ' ORDER BY c.relname), '')
		FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND c.relkind IN `+relkinds+`
		  AND pg_has_role(CURRENT_USER, c.relowner, 'USAGE')`, schema).Scan(&tables)
	if err != nil || tables == "" {
		return err
	}
	_, err = conn.Exec(ctx, stmt(tables))
	return err
}

// waitForRunningTransactions waits until the transactions that hold a
// transaction id now have ended, or for max.
func waitForRunningTransactions(ctx context.Context, conn *pgxpool.Conn, max time.Duration) error {
	var running []string
	if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(x::text), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) x`).Scan(&running); err != nil {
		return err
	}
	deadline := time.Now().Add(max)
	for len(running) > 0 && time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) x WHERE pg_xact_status(x::xid8) = 'in progress'`, running).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func retryableCatalogError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", "40P01", "55P03":
		return true
	case "XX000":
		return pgErr.Message == "tuple concurrently updated"
	}
	return false
}

// accessError keeps domain errors as they are and says what failed otherwise.
func accessError(what string, err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("reader access: %s: %w", what, translate(err))
}
