package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
)

// Erasure: deleting every stored event of one person (GDPR, CCPA).
//
// Contract:
//   - A person is matched by cioloader.erasure_keys(_sdc_raw::jsonb) (migration
//     000003): data.identifiers.email/id/cio_id, data.customer_id,
//     data.email_address, data.recipient when it holds an "@", and in legacy
//     bodies data.variables.customer.id/email. Exact match; emails compared
//     lower-cased.
//   - data rows are found through event_facts_erasure, a GIN index on
//     event_facts.erasure_hashes (the hashes of those keys, written with every
//     event: migration 000012; an id equal to the event's customer_id has none,
//     event_facts_by_customer finds it), then matched by the expression itself, so a
//     hash collision deletes nothing. A schema made before that still has
//     data_erasure_idx, a GIN index on the expression, for the rows written
//     before it (erasure_hashes NULL) until `cioloader upgrade`; while it
//     exists it is read too. rudder_events and the subtables are found through
//     their keys (event_id, _sdc_source_key_event_id). _sdc_rejected has no
//     key: see deleteRejected.
//   - Race with ingest: the tombstones are committed first; then a barrier
//     (the exclusive form of the advisory lock every ingest transaction holds
//     shared, see erasure_write.go) waits for the ingest transactions that may
//     have started before them; then one transaction deletes. Every ingest
//     transaction is therefore either committed before the deletion's snapshot
//     (its rows are deleted) or sees the tombstones (it drops the events).
//     Ingest waits only while queued behind the barrier.

// erasureLockKey is the per-schema lock that orders erasures and ingest, for
// the schema $1 (erasureLockKeyOfS: for l.s).
const (
	erasureLockKey    = erasureLockKeyOf + `$1::text, 0)`
	erasureLockKeyOfS = erasureLockKeyOf + `l.s, 0)`
	erasureLockKeyOf  = `hashtextextended('erasure:' || `
)

// oldErasureIndex is the erasure index of a data table made before
// event_facts_erasure: a GIN index on cioloader.erasure_keys(_sdc_raw::jsonb).
const oldErasureIndex = "data_erasure_idx"

// erasureLateIndex is the erasure index of every event_facts (see lateIndex).
var erasureLateIndex = lateIndex{name: "event_facts_erasure", table: "event_facts", def: "USING gin (erasure_hashes)"}

// eraser deletes a person's events on request and keeps the audit trail.
type eraser struct {
	pool *pgxpool.Pool
	m    *metrics.Metrics
}

const erasureCols = `id, integration_id, requested_at, requested_by, identifier_hashes, tombstones_until, completed_at, coalesce(rows_deleted, '{}')`

func scanErasure(row pgx.Row) (domain.Erasure, error) {
	var e domain.Erasure
	err := row.Scan(&e.ID, &e.IntegrationID, &e.RequestedAt, &e.RequestedBy, &e.IdentifierHashes, &e.TombstonesUntil, &e.CompletedAt, &e.RowsDeleted)
	return e, err
}

// Erase deletes every event of the person named by ids from in's schema
// (data, its subtables, rudder_events, _sdc_rejected), records the erasure
// with hashed identifiers, and keeps tombstones for ttl so that re-delivered
// events of that person are dropped at ingest. requestedBy is "api" or "cli".
// The deletion is one transaction; if it fails, the audit row stays without
// completed_at and the tombstones stay: running the request again finishes it.
func (s *eraser) Erase(ctx context.Context, in domain.Integration, ids []domain.PersonIdentifier, requestedBy string, ttl time.Duration) (domain.Erasure, error) {
	kinds, values := make([]string, len(ids)), make([]string, len(ids))
	for i, id := range ids {
		kinds[i], values[i] = id.Kind, id.Value
	}
	var er domain.Erasure
	var keys []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		er, keys, err = recordErasure(ctx, tx, in, kinds, values, requestedBy, ttl)
		return err
	})
	if err != nil {
		return er, fmt.Errorf("erase: %w", translate(err))
	}
	var deleted map[string]int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The barrier: wait until no ingest transaction that may have missed
		// the tombstones is in flight, and let ingest go on at once.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_lock(`+erasureLockKey+`), pg_advisory_unlock(`+erasureLockKey+`)`, in.Schema); err != nil {
			return err
		}
		var err error
		if deleted, err = deletePerson(ctx, tx, in.Schema, keys, ids); err != nil {
			return err
		}
		row := tx.QueryRow(ctx, `UPDATE cioloader.erasures SET completed_at = now(), rows_deleted = $2 WHERE id = $1 RETURNING `+erasureCols, er.ID, deleted)
		er, err = scanErasure(row)
		return err
	})
	if err != nil {
		return er, fmt.Errorf("erase: %w", translate(err))
	}
	if s.m != nil {
		s.m.EventsErased.WithLabelValues(in.Schema).Add(float64(deleted["data"]))
	}
	return er, nil
}

// recordErasure writes the audit row and the tombstones (purging expired
// ones), and returns the normalised keys; Erase commits them before deleting. The hashes are computed by
// cioloader.erasure_hash, the same function the ingest check uses.
func recordErasure(ctx context.Context, tx pgx.Tx, in domain.Integration, kinds, values []string, by string, ttl time.Duration) (domain.Erasure, []string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM cioloader.erasure_tombstones WHERE expires_at <= now()`); err != nil {
		return domain.Erasure{}, nil, err
	}
	var keys []string
	if err := tx.QueryRow(ctx, `SELECT array_agg(DISTINCT cioloader.erasure_key(k, v))
		FROM unnest($1::text[], $2::text[]) AS u(k, v)`, kinds, values).Scan(&keys); err != nil {
		return domain.Erasure{}, nil, err
	}
	er, err := scanErasure(tx.QueryRow(ctx, `INSERT INTO cioloader.erasures (integration_id, requested_by, identifier_hashes, tombstones_until)
		SELECT $1, $2, array_agg(encode(cioloader.erasure_hash(k), 'hex') ORDER BY k), now() + make_interval(secs => $4)
		FROM unnest($3::text[]) AS k
		RETURNING `+erasureCols, in.ID, by, keys, ttl.Seconds()))
	if err != nil {
		return er, nil, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO cioloader.erasure_tombstones AS t (schema_name, key_hash, erasure_id, expires_at)
		SELECT $1, cioloader.erasure_hash(k), $2, $3 FROM unnest($4::text[]) AS k
		ON CONFLICT (schema_name, key_hash) DO UPDATE
		SET erasure_id = EXCLUDED.erasure_id, expires_at = greatest(t.expires_at, EXCLUDED.expires_at)`,
		in.Schema, er.ID, er.TombstonesUntil, keys)
	return er, keys, err
}

// deletePerson deletes the person's rows from every table of schema and
// returns the counts per table. The data rows are locked in event_id order
// first, the order ingest locks them in, so a concurrent re-delivery of the
// same events waits rather than deadlocks.
func deletePerson(ctx context.Context, tx pgx.Tx, schema string, keys []string, ids []domain.PersonIdentifier) (map[string]int64, error) {
	eventIDs, err := personEvents(ctx, tx, schema, keys)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	del := func(table, q string, args ...any) error {
		tag, err := tx.Exec(ctx, q, args...)
		out[table] = tag.RowsAffected()
		return err
	}
	subtables, err := subtablesOf(ctx, tx, schema)
	if err != nil {
		return nil, err
	}
	// The person's deliveries first: they are found through event_facts.
	if err := del("delivery_facts", fmt.Sprintf(`DELETE FROM %s WHERE (delivery_id, object_type) IN (%s)`,
		ident(schema, "delivery_facts"), deliveriesOf(schema, "$1")), eventIDs); err != nil {
		return nil, err
	}
	for _, t := range append([]string{"data", "rudder_events", "event_facts"}, subtables...) {
		key := "event_id"
		if t != "data" && t != "rudder_events" && t != "event_facts" {
			key = "_sdc_source_key_event_id"
		}
		if err := del(t, fmt.Sprintf(`DELETE FROM %s WHERE %s = ANY($1)`, ident(schema, t), ident(key)), eventIDs); err != nil {
			return nil, err
		}
	}
	return out, deleteRejected(ctx, tx, schema, keys, ids, del)
}

// personEvents locks and returns the data rows whose erasure keys meet keys:
// the candidates event_facts_erasure finds by hash (and data_erasure_idx, while
// an older schema has it), matched exactly by cioloader.erasure_keys.
func personEvents(ctx context.Context, tx pgx.Tx, schema string, keys []string) ([]string, error) {
	var hasOld bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ident(schema, oldErasureIndex)).Scan(&hasOld); err != nil {
		return nil, err
	}
	// An id equal to the event's customer_id has no hash (facts.Facts.Identifiers):
	// event_facts_by_customer finds it.
	candidates := fmt.Sprintf(`SELECT event_id FROM %[1]s WHERE erasure_hashes && cioloader.erasure_key_hashes($1::text[])
		UNION SELECT event_id FROM %[1]s WHERE customer_id = ANY(ARRAY(SELECT substr(k, 4) FROM unnest($1::text[]) AS k WHERE k LIKE 'id:%%'))`,
		ident(schema, "event_facts"))
	if hasOld {
		candidates += fmt.Sprintf(` UNION SELECT event_id FROM %s WHERE cioloader.erasure_keys(_sdc_raw::jsonb) && $1::text[]`, ident(schema, "data"))
	}
	var ids []string
	err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(array_agg(event_id), '{}') FROM (
		SELECT d.event_id FROM %s AS d WHERE d.event_id IN (%s) AND cioloader.erasure_keys(d._sdc_raw::jsonb) && $1::text[]
		ORDER BY d.event_id FOR UPDATE OF d) AS l`, ident(schema, "data"), candidates), keys).Scan(&ids)
	return ids, err
}

// deleteRejected deletes the _sdc_rejected rows that name the person. Their
// record is text (possibly truncated to 8 KiB), so:
//   - a record that is valid JSON is matched by the same rule as data
//     (erasure_keys), exactly;
//   - a record that is not (truncated, or not JSON) is deleted when it holds
//     one of the identifiers as a JSON string, quotes included: the email
//     case-insensitively, ids exactly. An identifier written with JSON escapes
//     in such a record, or a numeric id in one, is not found.
//
// Rows written by the tombstone check carry no record and are kept as counts.
// The table has no index: this is a scan of _sdc_rejected, with a substring
// test before any JSON parsing.
func deleteRejected(ctx context.Context, tx pgx.Tx, schema string, keys []string, ids []domain.PersonIdentifier, del func(string, string, ...any) error) error {
	var needles, quotedCI, quotedCS []string
	for _, id := range ids {
		needles = append(needles, strings.ToLower(id.Value))
		if id.Kind == domain.KindEmail {
			quotedCI = append(quotedCI, `"`+strings.ToLower(id.Value)+`"`)
		} else {
			quotedCS = append(quotedCS, `"`+id.Value+`"`)
		}
	}
	q := fmt.Sprintf(`DELETE FROM %s AS r
		WHERE r.record IS NOT NULL
		  AND EXISTS (SELECT 1 FROM unnest($1::text[]) AS n WHERE strpos(lower(r.record), n) > 0)
		  AND (SELECT CASE WHEN p.j IS NOT NULL THEN cioloader.erasure_keys(p.j) && $2::text[]
		              ELSE EXISTS (SELECT 1 FROM unnest($3::text[]) AS q WHERE strpos(lower(r.record), q) > 0)
		                OR EXISTS (SELECT 1 FROM unnest($4::text[]) AS q WHERE strpos(r.record, q) > 0) END
		       FROM (SELECT cioloader.try_jsonb(r.record) AS j) AS p)`, ident(schema, "_sdc_rejected"))
	return del("_sdc_rejected", q, needles, keys, quotedCI, quotedCS)
}

// subtablesOf lists schema's array subtables (data__…).
func subtablesOf(ctx context.Context, tx pgx.Tx, schema string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname LIKE 'data\_\_%' ORDER BY c.relname`, schema)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ListErasures returns the integration's erasure records, newest first.
func (s *eraser) ListErasures(ctx context.Context, integrationID int64) ([]domain.Erasure, error) {
	if _, err := findIntegrationByID(ctx, s.pool, integrationID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+erasureCols+` FROM cioloader.erasures WHERE integration_id = $1 ORDER BY id DESC LIMIT 1000`, integrationID)
	if err != nil {
		return nil, fmt.Errorf("list erasures: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Erasure, error) { return scanErasure(r) })
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("list erasures: %w", translate(err))
	}
	return list, nil
}
