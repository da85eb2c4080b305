package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// eventAge is an event's time in event_facts (alias f): its timestamp, else
// its arrival. retentionIndexes[0] indexes exactly this expression.
const eventAge = `coalesce(f.occurred_at, f.received_at)`

// pruneEventBatch deletes, in one transaction, up to pruneBatch of schema's
// events older than cutoff (the oldest first) from every table, and
// recomputes or deletes their deliveries. It returns how many candidates it
// looked at (fewer than pruneBatch: none is left) and how many events (data
// rows) it deleted.
func pruneEventBatch(ctx context.Context, conn *pgxpool.Conn, schema string, cutoff time.Time) (seen, deleted int64, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Every statement below finds rows by key (see writerPlanSettings).
		if _, err := tx.Exec(ctx, writerPlanSettings); err != nil {
			return err
		}
		var candidates []string
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(array_agg(f.event_id), '{}') FROM (
			SELECT f.event_id FROM %s AS f WHERE %s < $1 ORDER BY %[2]s LIMIT $2) AS f`,
			ident(schema, "event_facts"), eventAge), cutoff, pruneBatch).Scan(&candidates); err != nil {
			return err
		}
		seen = int64(len(candidates))
		if seen == 0 {
			return nil
		}
		ids, err := lockExpired(ctx, tx, schema, candidates, cutoff)
		if err != nil || len(ids) == 0 {
			return err
		}
		deliveries, objectTypes, err := deliveriesOfEvents(ctx, tx, schema, ids)
		if err != nil {
			return err
		}
		if deleted, err = deleteEvents(ctx, tx, schema, ids); err != nil {
			return err
		}
		return recomputeDeliveries(ctx, tx, schema, deliveries, objectTypes)
	})
	return seen, deleted, err
}

// lockExpired locks the candidates' data rows in event_id order (ingest's
// order, so the two queue rather than deadlock) and returns the candidates
// still older than cutoff once locked: a re-delivery committed meanwhile may
// have given one a younger time. A facts row without its data row (none
// should exist) is returned too, so it cannot stay first in line forever.
func lockExpired(ctx context.Context, tx pgx.Tx, schema string, candidates []string, cutoff time.Time) ([]string, error) {
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %s AS d WHERE d.event_id = ANY($1)
		ORDER BY d.event_id COLLATE "C" FOR UPDATE) AS l`, ident(schema, "data")), candidates); err != nil {
		return nil, err
	}
	var ids []string
	err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(array_agg(f.event_id ORDER BY f.event_id COLLATE "C"), '{}')
		FROM %s AS f WHERE f.event_id = ANY($1) AND %s < $2`, ident(schema, "event_facts"), eventAge), candidates, cutoff).Scan(&ids)
	return ids, err
}

// deliveriesOfEvents returns the (delivery_id, object_type) keys of the
// events ids, in delivery_facts' lock order, as two parallel arrays.
func deliveriesOfEvents(ctx context.Context, tx pgx.Tx, schema string, ids []string) (deliveries, objectTypes []string, err error) {
	err = tx.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(array_agg(k.delivery_id ORDER BY k.delivery_id COLLATE "C", k.object_type COLLATE "C"), '{}'),
		coalesce(array_agg(k.object_type ORDER BY k.delivery_id COLLATE "C", k.object_type COLLATE "C"), '{}')
		FROM (SELECT DISTINCT f.delivery_id, f.object_type FROM %s AS f
		      WHERE f.event_id = ANY($1) AND f.delivery_id IS NOT NULL AND f.object_type IS NOT NULL) AS k`,
		ident(schema, "event_facts")), ids).Scan(&deliveries, &objectTypes)
	return deliveries, objectTypes, err
}

// deleteEvents deletes the events ids from every subtable, rudder_events,
// event_facts and data, and returns the data rows deleted.
func deleteEvents(ctx context.Context, tx pgx.Tx, schema string, ids []string) (int64, error) {
	subtables, err := subtablesOf(ctx, tx, schema)
	if err != nil {
		return 0, err
	}
	for _, t := range subtables {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE _sdc_source_key_event_id = ANY($1)`, ident(schema, t)), ids); err != nil {
			return 0, err
		}
	}
	for _, t := range []string{"rudder_events", "event_facts"} {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE event_id = ANY($1)`, ident(schema, t)), ids); err != nil {
			return 0, err
		}
	}
	tag, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE event_id = ANY($1)`, ident(schema, "data")), ids)
	return tag.RowsAffected(), err
}

// deliveryKeys is the where-clause of deliveriesMerge for the keys $1, $2.
const deliveryKeys = `(f.delivery_id, f.object_type) IN (SELECT u.d, u.o FROM unnest($1::text[], $2::text[]) AS u(d, o))`

// recomputeDeliveries rewrites the delivery_facts rows of the given keys from
// the events left (exactly, as replay does) and deletes those with none left.
// The rows are locked first, in key order, the order ingest merges them in.
func recomputeDeliveries(ctx context.Context, tx pgx.Tx, schema string, deliveries, objectTypes []string) error {
	if len(deliveries) == 0 {
		return nil
	}
	t := ident(schema, "delivery_facts")
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %s AS t
		WHERE (t.delivery_id, t.object_type) IN (SELECT u.d, u.o FROM unnest($1::text[], $2::text[]) AS u(d, o))
		ORDER BY t.delivery_id COLLATE "C", t.object_type COLLATE "C" FOR UPDATE) AS l`, t), deliveries, objectTypes); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, deliveriesMerge(schema, factsWithIDs(schema), deliveryKeys, true), deliveries, objectTypes); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s AS t USING unnest($1::text[], $2::text[]) AS u(d, o)
		WHERE t.delivery_id = u.d AND t.object_type = u.o
		  AND NOT EXISTS (SELECT 1 FROM %s AS f WHERE f.delivery_id = t.delivery_id AND f.object_type = t.object_type)`,
		t, ident(schema, "event_facts")), deliveries, objectTypes)
	return err
}

// pruneRejectedBatch deletes up to pruneBatch of schema's _sdc_rejected rows
// rejected before cutoff, the oldest first. The table has no key: rows are
// deleted by their ctid, found through the retention index on
// _sdc_rejected_at, in the same statement.
func pruneRejectedBatch(ctx context.Context, conn *pgxpool.Conn, schema string, cutoff time.Time) (int64, error) {
	r := ident(schema, "_sdc_rejected")
	tag, err := conn.Exec(ctx, fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM %[1]s WHERE _sdc_rejected_at < $1 ORDER BY _sdc_rejected_at LIMIT $2))`, r), cutoff, pruneBatch)
	return tag.RowsAffected(), err
}
