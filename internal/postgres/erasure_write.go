package postgres

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cioloader/cioloader/internal/metrics"
)

// The writer's side of erasure (see erasure.go for the whole contract).
//
// Every group-commit transaction takes, before any row lock, a shared
// advisory lock per schema it writes (queueErasureGuards), and ends with a
// statement that drops the events of erased people (queueTombstoneDrop). An
// erasure commits its tombstones and then takes the same lock exclusively
// for an instant: a transaction that started before the tombstones existed
// has committed by then (and the erasure deletes its rows); one that starts
// after sees them in its drop statement, which runs in the same transaction
// as the upserts, so nothing of the person is ever committed.

// queueErasureGuards queues the shared erasure locks of every plan that
// writes events, in schema order, ahead of all other statements: an ingest
// transaction waiting for one holds no row lock, so it cannot close a cycle
// with the barrier and another ingest transaction.
func queueErasureGuards(b *pgx.Batch, plans []*schemaWrite) {
	var schemas []string
	for _, p := range plans {
		if len(p.g.events) > 0 || len(p.g.rejected) > 0 {
			schemas = append(schemas, p.schema)
		}
	}
	slices.Sort(schemas)
	for _, s := range slices.Compact(schemas) {
		b.Queue(`SELECT pg_advisory_xact_lock_shared(`+erasureLockKey+`)`, s)
	}
}

// queueTombstoneDrop queues, after the batch's writes, the deletion of the
// batch's events that name a person with a live tombstone: their data,
// rudder_events and subtable rows, and the unmapped-value rows this batch
// logged for them (matched by record and this batch's _sdc_rejected_at). The
// batch's objects rejected for want of an event_id that name such a person
// (their record parses as JSON and matches) are deleted the same way. One
// _sdc_rejected row per dropped object says why, without the record. With no
// live tombstone for the schema, cioloader.drop_erased (migration 000006)
// stops at one index probe and the statement is never run.
func (w *schemaWrite) queueTombstoneDrop(b *pgx.Batch, now time.Time) {
	if len(w.g.events) == 0 && len(w.g.rejected) == 0 {
		return
	}
	rejRecs := make([]string, len(w.g.rejected))
	for i, r := range w.g.rejected {
		rejRecs[i] = r.record
	}
	ids := make([]string, len(w.g.events))
	for i, e := range w.g.events {
		ids[i] = e.ID
	}
	var probIDs, probRecs []string
	for _, e := range w.g.events {
		if w.perEvent[e] > 0 {
			probIDs, probRecs = append(probIDs, e.ID), append(probRecs, truncateRecord(e.Raw))
		}
	}
	subtables := w.subtables()
	q := w.texts.get(textKey{kind: "tombstone", schema: w.schema, extra: strings.Join(subtables, "\x00")}, func() string {
		return tombstoneDropSQL(w.schema, subtables)
	})
	// cioloader.drop_erased runs q only when the schema has a live tombstone.
	b.Queue(`SELECT cioloader.drop_erased($1, $2, $3, $4, $5, $6, $7)`, w.schema, q, ids, now, probIDs, probRecs, rejRecs).
		QueryRow(func(r pgx.Row) error { return r.Scan(&w.tombstoned) })
}

// tombstoneDropSQL is queueTombstoneDrop's statement for schema and its
// subtables (see there for what it deletes and logs).
func tombstoneDropSQL(schema string, subtables []string) string {
	const tomb = `JOIN cioloader.erasure_tombstones AS t
		  ON t.schema_name = $2 AND t.key_hash = cioloader.erasure_hash(k.key) AND t.expires_at > now()
		WHERE true`
	ctes := []string{fmt.Sprintf(`hit AS (
		SELECT d.event_id, min(t.erasure_id) AS erasure_id
		FROM %s AS d
		CROSS JOIN LATERAL unnest(cioloader.erasure_keys(d._sdc_raw::jsonb)) AS k(key)
		%s AND d.event_id = ANY($1::text[])
		GROUP BY d.event_id)`, ident(schema, "data"), tomb),
		fmt.Sprintf(`rj AS (
		SELECT r.rec, min(t.erasure_id) AS erasure_id
		FROM unnest($6::text[]) AS r(rec)
		CROSS JOIN LATERAL unnest(cioloader.erasure_keys(cioloader.try_jsonb(r.rec))) AS k(key)
		%s
		GROUP BY r.rec)`, tomb)}
	ctes = append(ctes, deleteEventCTEs(schema, subtables, "ARRAY(SELECT event_id FROM hit)")...)
	// The dropped events' deliveries (a delivery is one person's): every CTE reads the
	// statement's snapshot, so event_facts still holds the rows d2 deletes.
	ctes = append(ctes, fmt.Sprintf(`dd AS (DELETE FROM %s WHERE (delivery_id, object_type) IN (%s))`,
		ident(schema, "delivery_facts"), deliveriesOf(schema, "ARRAY(SELECT event_id FROM hit)")))
	rejected := ident(schema, "_sdc_rejected")
	ctes = append(ctes,
		fmt.Sprintf(`dp AS (DELETE FROM %s AS r WHERE (EXISTS (SELECT 1 FROM hit) OR EXISTS (SELECT 1 FROM rj)) AND r._sdc_rejected_at = $3
			AND r.record = ANY (ARRAY(SELECT p.rec FROM unnest($4::text[], $5::text[]) AS p(id, rec) JOIN hit ON hit.event_id = p.id
			                          UNION ALL SELECT rec FROM rj)))`, rejected),
		fmt.Sprintf(`logged AS (INSERT INTO %s (_sdc_rejected_at, table_name, reason, record)
			SELECT $3, 'data', 'Event of a person erased on request (erasure ' || erasure_id || '); not stored', NULL
			FROM (SELECT erasure_id FROM hit UNION ALL SELECT erasure_id FROM rj) AS x)`, rejected))
	return "WITH " + strings.Join(ctes, ",\n") + "\nSELECT (SELECT count(*) FROM hit) + (SELECT count(*) FROM rj)"
}

// countTombstoned updates the metric once the transaction has committed.
func (w *schemaWrite) countTombstoned(m *metrics.Metrics) {
	if m != nil && w.tombstoned > 0 {
		m.TombstoneDrops.WithLabelValues(w.schema).Add(float64(w.tombstoned))
	}
}
