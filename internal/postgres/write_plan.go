package postgres

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cioloader/cioloader/internal/ingest"

	"github.com/cioloader/cioloader/internal/stitch"
)

// schemaWrite is one schema's share of a transaction.
type schemaWrite struct {
	texts    *statementTexts
	g        *schemaGroup
	schema   string
	tables   map[string]*tableState
	problems []rejectedRow // unmapped values, filled while the subtable inserts are built
	perEvent map[*ingest.Event]int
	unmapped int
	// tombstoned counts the batch's events dropped because their person was
	// erased (tombstoneDrop), read when the pipeline runs.
	tombstoned int64
	// twinsDropped counts the imported copies of the batch's webhook events
	// deleted (twinDrop), read when the pipeline runs.
	twinsDropped int64
}

func newSchemaWrite(texts *statementTexts, g *schemaGroup, tables map[string]*tableState) *schemaWrite {
	return &schemaWrite{texts: texts, g: g, schema: g.schema, tables: tables}
}

// queue adds this schema's statements to the batch, in an order where each
// statement sees the effects of the ones before it (same transaction):
//  1. upsert data (sequence-guarded) and rudder_events, log rejections;
//  2. per subtable, delete rows left by an older version of an event in the
//     batch (their _sdc_sequence is below the data row's);
//  3. insert the subtable rows of the versions that data now holds (joined on
//     event_id and _sdc_sequence, so an older re-delivery inserts nothing);
//  4. log unmapped values.
func (w *schemaWrite) queue(b *pgx.Batch, now time.Time) {
	if len(w.g.rejected) > 0 {
		q, args := w.rejectedInsert(w.g.rejected, now)
		b.Queue(q, args...)
	}
	if len(w.g.events) == 0 {
		return
	}
	q, args := w.dataUpsert(now)
	b.Queue(q, args...)
	q, args = w.rudderUpsert()
	b.Queue(q, args...)
	ids := make([]string, len(w.g.events))
	for i, e := range w.g.events {
		ids[i] = e.ID
	}
	// The analyst views' typed copy and the deliveries, from the facts computed in Go.
	q, args = w.factsUpsert()
	b.Queue(q, args...)
	q, args = w.deliveriesUpsert()
	b.Queue(q, args...)
	for _, name := range slices.Sorted(maps.Keys(w.tables)) {
		if name != "data" {
			b.Queue(w.texts.get(textKey{kind: "stale", schema: w.schema, table: w.tables[name], extra: name}, func() string {
				return w.staleChildDelete(name)
			}), ids)
		}
	}
	for _, c := range w.childInserts() {
		b.Queue(c.sql, c.args...)
	}
	if len(w.problems) > 0 {
		q, args := w.rejectedInsert(w.problems, now)
		b.Queue(q, args...)
	}
}

// staleChildDelete deletes a subtable's rows left by an older version of the
// events in $1. A DELETE locks rows in whatever order its scan finds them, so
// the rows are first locked in key order (as every other statement of the
// writer; see byKey). Written so the plan (generic, prepared once) starts from
// the subtable's primary-key index, never a scan of the whole subtable.
func (w *schemaWrite) staleChildDelete(name string) string {
	order := []string{`s._sdc_source_key_event_id COLLATE "C"`}
	for l := range w.tables[name].depth {
		order = append(order, fmt.Sprintf("s._sdc_level_%d_id", l))
	}
	return fmt.Sprintf(`WITH stale AS (SELECT s.ctid FROM %[1]s AS s WHERE s._sdc_source_key_event_id = ANY($1)
			AND s._sdc_sequence < (SELECT d._sdc_sequence FROM %[2]s AS d WHERE d.event_id = s._sdc_source_key_event_id)
			ORDER BY %[3]s FOR UPDATE)
		DELETE FROM %[1]s AS s USING stale WHERE s._sdc_source_key_event_id = ANY($1) AND s.ctid = stale.ctid`,
		ident(w.schema, name), ident(w.schema, "data"), strings.Join(order, ", "))
}

// dataUpsert: the newest copy replaces the whole row (every column is listed,
// absent ones as NULL), and the sequence guard keeps a re-delivered older copy
// from overwriting a newer one.
func (w *schemaWrite) dataUpsert(now time.Time) (string, []any) {
	evs := w.g.events
	n := len(evs)
	id, recv, seq, raw := textColumn("event_id", n), timeColumn("_sdc_received_at", n), int8Column("_sdc_sequence", n), textColumn("_sdc_raw", n)
	ts := w.tables["data"]
	raw.conv = "::json"
	if ts.rawType == "jsonb" {
		raw.conv = "::jsonb"
	}
	cols := []*column{id, recv, seq, raw}
	byName := make(map[string]*column, len(ts.order))
	for _, name := range ts.order {
		c := userColumn(name, ts.cols[name], n)
		byName[name] = c
		cols = append(cols, c)
	}
	for i, e := range evs {
		id.set(i, e.ID)
		recv.set(i, w.g.received[e])
		seq.set(i, e.Seq)
		raw.set(i, e.Raw)
		// Flatten's own problems first: they say most about the event.
		for _, p := range e.Flat.Problems {
			w.problem(e, p.Table, p.Reason)
		}
		budget := newRowBudget(len(ts.order), len(e.ID))
		for _, f := range e.Flat.Tables[0].Rows[0].Fields {
			if ts.claimedByOther(f.Name, f.Source) {
				w.problem(e, "data", collisionReason(f))
				continue
			}
			col, isNew := stitch.Resolve(ts.cols, f.Name, f.Type)
			if isNew {
				continue // past the column cap: logged by capProblems
			}
			if !budget.take(f) {
				w.problem(e, "data", rowSizeReason("data", f.Name))
				continue
			}
			byName[col].set(i, f.Value)
		}
	}
	q := w.texts.get(textKey{kind: "data", schema: w.schema, table: ts, single: singleRow(cols)}, func() string {
		batched := fmt.Sprintf("$%d::timestamptz", len(cols)+1)
		q, _ := insertSQLFrom(ident(w.schema, "data"), cols,
			[][2]string{{"_sdc_batched_at", batched}, {"_sdc_table_version", "NULL::bigint"}}, 1, "", byKey(0))
		names := []string{ident("_sdc_received_at"), ident("_sdc_batched_at"), ident("_sdc_sequence"), ident("_sdc_table_version"), ident("_sdc_raw")}
		for _, c := range cols[4:] {
			names = append(names, c.name)
		}
		return q + " ON CONFLICT (event_id) DO UPDATE SET " + setAll(names) +
			" WHERE t._sdc_sequence < EXCLUDED._sdc_sequence"
	})
	return q, append(insertArgs(cols), now)
}

// rejectedInsert logs rows to _sdc_rejected.
func (w *schemaWrite) rejectedInsert(rows []rejectedRow, now time.Time) (string, []any) {
	n := len(rows)
	table, reason, record := textColumn("table_name", n), textColumn("reason", n), textColumn("record", n)
	for i, r := range rows {
		table.set(i, r.table)
		reason.set(i, r.reason)
		record.set(i, r.record)
	}
	cols := []*column{table, reason, record}
	q := w.texts.get(textKey{kind: "rejected", schema: w.schema, single: singleRow(cols)}, func() string {
		q, _ := insertSQL(ident(w.schema, "_sdc_rejected"), cols, [][2]string{{"_sdc_rejected_at", "$4::timestamptz"}}, 1)
		return q
	})
	return q, append(insertArgs(cols), now)
}
