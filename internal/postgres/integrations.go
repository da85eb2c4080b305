package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/naming"
)

// registry keeps the control schema's integrations and their webhook URLs.
// It drops the token cache after every change that revokes a token.
type registry struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	tokens *tokenCache
}

const integrationCols = `id, name, schema_name, created_at, disabled_at, signing_key IS NOT NULL, retention_days`

func scanIntegration(row pgx.Row) (domain.Integration, error) {
	var in domain.Integration
	err := row.Scan(&in.ID, &in.Name, &in.Schema, &in.CreatedAt, &in.DisabledAt, &in.HasSigningKey, &in.RetentionDays)
	return in, err
}

// CreateIntegration records an integration and creates its schema, tables and
// views in one transaction. The schema name is derived from name and never changes.
func (s *registry) CreateIntegration(ctx context.Context, name string) (domain.Integration, error) {
	if len(name) > 200 {
		return domain.Integration{}, domain.Errorf(domain.ErrInvalid, "integration name is longer than 200 bytes")
	}
	schema, err := naming.SchemaName(name)
	if err != nil {
		return domain.Integration{}, domain.Errorf(domain.ErrInvalid, "%s", err.Error())
	}
	var in domain.Integration
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return domain.Errorf(domain.ErrConflict, "schema %q already exists: choose another integration name", schema)
		}
		row := tx.QueryRow(ctx, `INSERT INTO cioloader.integrations (name, schema_name) VALUES ($1, $2) RETURNING `+integrationCols, name, schema)
		if in, err = scanIntegration(row); err != nil {
			return err
		}
		return execAll(ctx, tx, integrationDDL(schema))
	})
	var de *domain.Error
	if errors.As(err, &de) {
		return domain.Integration{}, err
	}
	if err = translate(err); errors.Is(err, domain.ErrConflict) {
		return domain.Integration{}, domain.Errorf(domain.ErrConflict, "an integration with schema %q already exists", schema)
	}
	if err != nil {
		return domain.Integration{}, fmt.Errorf("create integration: %w", err)
	}
	return in, nil
}

func execAll(ctx context.Context, tx pgx.Tx, stmts []string) error {
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// EnsureIntegrationObjects is the per-integration migration step: it re-runs
// the idempotent DDL for every integration so tables and views added by a
// newer release exist for integrations created before it.
func (s *registry) EnsureIntegrationObjects(ctx context.Context) error {
	list, err := s.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	for _, in := range list {
		// The columns a late index is on (event_facts.erasure_hashes), then the
		// indexes, before the transaction below, whose DDL then finds them and
		// takes no lock.
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ddl:"+in.Schema); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, factsUpgrade(in.Schema))
			return err
		})
		if err != nil {
			return fmt.Errorf("upgrade event_facts of %s: %w", in.Schema, translate(err))
		}
		for _, ix := range lateIndexes {
			if err := ix.ensure(ctx, s.pool, s.log, in.Schema); err != nil {
				return fmt.Errorf("index %s of %s: %w", ix.name, in.Schema, translate(err))
			}
		}
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ddl:"+in.Schema); err != nil {
				return err
			}
			var renaming bool // rudder_events is still a table: the DDL renames it to rudder_rows
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'r')`,
				ident(in.Schema, "rudder_events")).Scan(&renaming); err != nil {
				return err
			}
			if err := execAll(ctx, tx, integrationDDL(in.Schema)); err != nil {
				return err
			}
			if renaming { // the warehouse views followed the table: make them again over the view
				return remakeWarehouseViews(ctx, tx, in.Schema)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("upgrade schema %s: %w", in.Schema, translate(err))
		}
	}
	return nil
}

// ListIntegrations returns every integration, oldest first.
func (s *registry) ListIntegrations(ctx context.Context) ([]domain.Integration, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationCols+` FROM cioloader.integrations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Integration, error) { return scanIntegration(r) })
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", translate(err))
	}
	return list, nil
}

// FindIntegrationByID returns one integration or ErrNotFound.
func (s *registry) FindIntegrationByID(ctx context.Context, id int64) (domain.Integration, error) {
	return findIntegrationByID(ctx, s.pool, id)
}

func findIntegrationByID(ctx context.Context, pool *pgxpool.Pool, id int64) (domain.Integration, error) {
	in, err := scanIntegration(pool.QueryRow(ctx, `SELECT `+integrationCols+` FROM cioloader.integrations WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return in, domain.Errorf(domain.ErrNotFound, "integration %d does not exist", id)
	}
	if err != nil {
		return in, fmt.Errorf("find integration: %w", translate(err))
	}
	return in, nil
}

// FindIntegration resolves a CLI reference: an id, a name or a schema.
func (s *registry) FindIntegration(ctx context.Context, ref string) (domain.Integration, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return s.FindIntegrationByID(ctx, id)
	}
	in, err := scanIntegration(s.pool.QueryRow(ctx, `SELECT `+integrationCols+` FROM cioloader.integrations
		WHERE name = $1 OR schema_name = $1 ORDER BY (name = $1) DESC, id LIMIT 1`, ref))
	if errors.Is(err, pgx.ErrNoRows) {
		return in, domain.Errorf(domain.ErrNotFound, "no integration has the id, name or schema %q", ref)
	}
	if err != nil {
		return in, fmt.Errorf("find integration: %w", translate(err))
	}
	return in, nil
}

// DisableIntegration revokes every URL of the integration and marks it
// disabled. Its schema and data stay.
func (s *registry) DisableIntegration(ctx context.Context, id int64) error {
	if _, err := s.FindIntegrationByID(ctx, id); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE cioloader.integrations SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE cioloader.webhook_urls SET revoked_at = now() WHERE integration_id = $1 AND revoked_at IS NULL`, id); err != nil {
			return err
		}
		return notifyRevoked(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("disable integration: %w", translate(err))
	}
	s.tokens.clear()
	return nil
}

// SetSigningKey sets (key != nil) or clears the Customer.io signing key of an
// integration that is not deleted (ErrConflict: a deleted one stays as it was).
func (s *registry) SetSigningKey(ctx context.Context, id int64, key *string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// FOR UPDATE: a concurrent DisableIntegration either comes first (and
		// is seen here) or waits for this transaction.
		var disabled bool
		err := tx.QueryRow(ctx, `SELECT disabled_at IS NOT NULL FROM cioloader.integrations WHERE id = $1 FOR UPDATE`, id).Scan(&disabled)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return domain.Errorf(domain.ErrNotFound, "integration %d does not exist", id)
		case err != nil:
			return err
		case disabled:
			return domain.Errorf(domain.ErrConflict, "integration %d is deleted; its signing key can no longer be changed", id)
		}
		if _, err := tx.Exec(ctx, `UPDATE cioloader.integrations SET signing_key = $2 WHERE id = $1`, id, key); err != nil {
			return err
		}
		return notifyRevoked(ctx, tx)
	})
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if err != nil {
		return fmt.Errorf("set signing key: %w", translate(err))
	}
	s.tokens.clear()
	return nil
}

// IntegrationStats counts an integration's events.
func (s *registry) IntegrationStats(ctx context.Context, in domain.Integration) (domain.IntegrationStats, error) {
	var st domain.IntegrationStats
	q := fmt.Sprintf(`SELECT (SELECT count(*) FROM %s), (SELECT count(*) FROM %s), (SELECT count(*) FROM %s),
		(SELECT max(_sdc_received_at) FROM %s)`,
		ident(in.Schema, "data"), ident(in.Schema, "rudder_events"), ident(in.Schema, "_sdc_rejected"), ident(in.Schema, "data"))
	err := s.pool.QueryRow(ctx, q).Scan(&st.Events, &st.RudderEvents, &st.Rejected, &st.LastReceivedAt)
	if err != nil {
		return st, fmt.Errorf("integration stats: %w", translate(err))
	}
	if st.LastReceivedAt != nil {
		t := st.LastReceivedAt.UTC().Truncate(time.Microsecond)
		st.LastReceivedAt = &t
	}
	return st, nil
}
