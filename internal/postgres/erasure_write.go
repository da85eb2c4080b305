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
// advisory lock per schema it writes (queueOpening), and ends with a
// statement that drops the events of erased people (queueDrops). An
// erasure commits its tombstones and then takes the same lock exclusively
// for an instant: a transaction that started before the tombstones existed
// has committed by then (and the erasure deletes its rows); one that starts
// after sees them in its drop statement, which runs in the same transaction
// as the upserts, so nothing of the person is ever committed.

// queueOpening queues the statement every write transaction starts with: the
// planner settings of writerPlanSettings, then the shared erasure locks of
// every plan that writes, in schema order, ahead of all other statements (an
// ingest transaction waiting for one holds no row lock, so it cannot close a
// cycle with the barrier and another ingest transaction). One statement, not
// one per setting and lock: at one event per transaction every statement's
// own start and end is a share of the commit.
func queueOpening(b *pgx.Batch, plans []*schemaWrite) {
	var schemas []string
	for _, p := range plans {
		if len(p.g.events) > 0 || len(p.g.rejected) > 0 {
			schemas = append(schemas, p.schema)
		}
	}
	slices.Sort(schemas)
	if schemas = slices.Compact(schemas); len(schemas) == 1 {
		b.Queue(writerOpeningOne, schemas[0])
		return
	}
	b.Queue(writerOpening, schemas)
}

// writerOpening is writerPlanSettings with the shared erasure lock of each
// schema in $1, taken in the array's order; writerOpeningOne, of the one
// schema $1 (the common case, without the aggregate over unnest).
const (
	writerOpening = writerPlanSettings + `,
	(SELECT count(pg_advisory_xact_lock_shared(` + erasureLockKeyOfS + `)) FROM unnest($1::text[]) AS l(s))`
	writerOpeningOne = writerPlanSettings + `, pg_advisory_xact_lock_shared(` + erasureLockKey + `)`
)

// queueDrops queues, after the batch's writes, one statement for the two
// drops that find nothing almost always: the imported copies of the batch's
// webhook events (twinDrop) and the events of erased people
// (tombstoneDrop). Each function is called only when its schema has an
// import or a live tombstone, tested in the statement itself: the functions'
// own tests (migrations 000006 and 000007) stay, but a PL/pgSQL call that
// finds nothing, with its SET clauses, cost more than the probe.
func (w *schemaWrite) queueDrops(b *pgx.Batch, now time.Time) {
	if len(w.g.events) == 0 && len(w.g.rejected) == 0 {
		return
	}
	twins, twinSQL := w.twinDrop()
	ids, tombSQL, probIDs, probRecs, rejRecs := w.tombstoneDrop()
	b.Queue(dropsSQL, w.schema, tombSQL, ids, now, probIDs, probRecs, rejRecs, twins, twinSQL).
		QueryRow(func(r pgx.Row) error { return r.Scan(&w.twinsDropped, &w.tombstoned) })
}

// dropsSQL is queueDrops' statement. $1 is the schema; $2-$7 are
// cioloader.drop_erased's statement and arguments; $8 the twins and $9
// cioloader.drop_imported's statement. The twins go first, as before.
const dropsSQL = `SELECT
	CASE WHEN cardinality($8::text[]) > 0 AND EXISTS (SELECT 1 FROM cioloader.imports AS i WHERE i.schema_name = $1::text AND i.source = 'customerio')
		THEN cioloader.drop_imported($1, $9, $8) ELSE 0 END,
	CASE WHEN EXISTS (SELECT 1 FROM cioloader.erasure_tombstones AS t WHERE t.schema_name = $1::text AND t.expires_at > now())
		THEN cioloader.drop_erased($1, $2, $3, $4, $5, $6, $7) ELSE 0 END`

// tombstoneDrop is the deletion, after the batch's writes, of the batch's
// events that name a person with a live tombstone: their data,
// rudder_events and subtable rows, and the unmapped-value rows this batch
// logged for them (matched by record and this batch's _sdc_rejected_at). The
// batch's objects rejected for want of an event_id that name such a person
// (their record parses as JSON and matches) are deleted the same way. One
// _sdc_rejected row per dropped object says why, without the record. It
// returns cioloader.drop_erased's arguments after the schema and time.
func (w *schemaWrite) tombstoneDrop() (ids []string, q string, probIDs, probRecs, rejRecs []string) {
	rejRecs = make([]string, len(w.g.rejected))
	for i, r := range w.g.rejected {
		rejRecs[i] = r.record
	}
	ids = make([]string, len(w.g.events))
	for i, e := range w.g.events {
		ids[i] = e.ID
	}
	for _, e := range w.g.events {
		if w.perEvent[e] > 0 {
			probIDs, probRecs = append(probIDs, e.ID), append(probRecs, truncateRecord(e.Raw))
		}
	}
	subtables := w.subtables()
	q = w.texts.get(textKey{kind: "tombstone", schema: w.schema, extra: strings.Join(subtables, "\x00")}, func() string {
		return tombstoneDropSQL(w.schema, subtables)
	})
	return ids, q, probIDs, probRecs, rejRecs
}

// tombstoneDropSQL is tombstoneDrop's statement for schema and its
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
