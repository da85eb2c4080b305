package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CheckPrivileges says, before anything is migrated or created, which of
// the database privileges cioloader's own role needs it lacks
// (deploy/README.md, "Database privileges"): CREATE on the database (the
// control schema and every integration's schema), ownership of the control
// schema, of its migrations table and of every integration's schema and
// relations (it adds columns, tables and indexes there), or CREATE where the
// migrations table is to be made. The error is one line naming each missing
// privilege, and never the role, host or password (SPEC 10.11). notes are
// what only some commands need: CREATEROLE, for `access grant --create`. A
// superuser has everything.
func CheckPrivileges(ctx context.Context, databaseURL string) (notes []string, err error) {
	cc, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %s", sanitize(err))
	}
	cc.ConnectTimeout = 5 * time.Second
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, nil // not reachable: the migration says so, as without this check
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var super, createRole, dbCreate, schemaCreate bool
	var ownsControl, ownsMigrations *bool
	var db string
	var schema *string
	err = conn.QueryRow(ctx, `SELECT r.rolsuper, r.rolcreaterole, current_database(),
		       has_database_privilege(current_database(), 'CREATE'),
		       (SELECT pg_has_role(CURRENT_USER, nspowner, 'USAGE') FROM pg_namespace WHERE nspname = 'cioloader'),
		       (SELECT pg_has_role(CURRENT_USER, relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass($1)),
		       current_schema(), coalesce(has_schema_privilege(current_schema(), 'CREATE'), false)
		FROM pg_roles r WHERE r.rolname = CURRENT_USER`, migrationsTable).
		Scan(&super, &createRole, &db, &dbCreate, &ownsControl, &ownsMigrations, &schema, &schemaCreate)
	if err != nil {
		return nil, fmt.Errorf("database privileges: %w", translate(err))
	}
	if super {
		return nil, nil
	}
	if !createRole {
		notes = append(notes, "cioloader's database role has no CREATEROLE: `access grant --create` is refused; granting read access to an existing role works")
	}
	var missing []string
	if !dbCreate {
		missing = append(missing, fmt.Sprintf("CREATE on database %s (GRANT CREATE ON DATABASE %s TO the role), for the control and integration schemas", ident(db), ident(db)))
	}
	switch {
	case ownsMigrations != nil && !*ownsMigrations:
		missing = append(missing, "ownership of table "+migrationsTable)
	case ownsMigrations == nil && !schemaCreate:
		where := "the first schema of its search_path"
		if schema != nil {
			where = "schema " + ident(*schema)
		}
		missing = append(missing, "CREATE on "+where+", for table "+migrationsTable+" (or make the role the database's owner)")
	}
	if ownsControl != nil && !*ownsControl {
		missing = append(missing, "ownership of schema cioloader")
	}
	if ownsControl != nil && *ownsControl {
		foreign, err := notOwned(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("database privileges: %w", translate(err))
		}
		if len(foreign) > 0 {
			missing = append(missing, "ownership of "+strings.Join(foreign, ", ")+" (ALTER ... OWNER TO the role)")
		}
	}
	if len(missing) > 0 {
		return notes, fmt.Errorf("database privileges: cioloader's database role lacks %s: see deploy/README.md, \"Database privileges\"", strings.Join(missing, "; "))
	}
	return notes, nil
}

// notOwned lists (up to 3, then "…") the relations of the control schema
// and the integration schemas and relations owned by a role cioloader's role
// does not act as.
func notOwned(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT 'cioloader.' || quote_ident(relname) FROM pg_class
		WHERE relnamespace = 'cioloader'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S')
		  AND NOT pg_has_role(CURRENT_USER, relowner, 'USAGE') ORDER BY 1 LIMIT 4`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) > 0 { // cioloader.integrations may be among them: it cannot be read
		return ellipsis(names), err
	}
	rows, err = conn.Query(ctx, `SELECT name FROM (
		  SELECT quote_ident(n.nspname) AS name, n.nspowner AS owner
		    FROM cioloader.integrations i JOIN pg_namespace n ON n.nspname = i.schema_name
		  UNION ALL
		  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relowner
		    FROM cioloader.integrations i JOIN pg_namespace n ON n.nspname = i.schema_name
		    JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm')
		) o WHERE NOT pg_has_role(CURRENT_USER, owner, 'USAGE') ORDER BY name LIMIT 4`)
	if err != nil {
		return nil, err
	}
	names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return ellipsis(names), err
}

func ellipsis(names []string) []string {
	if len(names) > 3 {
		return append(names[:3], "…")
	}
	return names
}
