package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cioloader/cioloader/internal/ingest"

	"github.com/cioloader/cioloader/internal/stitch"
)

// schemaWrite is one schema's share of a transaction.
type schemaWrite struct {
	g        *schemaGroup
	schema   string
	tables   map[string]*tableState
	problems []rejectedRow // unmapped values of written events, filled after the upsert
	perEvent map[*ingest.Event]int
	unmapped int
	written  int
}

func newSchemaWrite(g *schemaGroup, tables map[string]*tableState) *schemaWrite {
	return &schemaWrite{g: g, schema: g.schema, tables: tables}
}

// write runs the two round trips: (1) upsert data and rudder_events and log
// rejections; (2) for the events actually written, replace their subtable rows
// and log their unmapped values.
func (w *schemaWrite) write(ctx context.Context, tx pgx.Tx, now time.Time) error {
	b := &pgx.Batch{}
	if len(w.g.events) > 0 {
		q, args := w.dataUpsert(now)
		b.Queue(q, args...)
		q, args = w.rudderUpsert()
		b.Queue(q, args...)
	}
	if len(w.g.rejected) > 0 {
		q, args := w.rejectedInsert(w.g.rejected, now)
		b.Queue(q, args...)
	}
	if b.Len() == 0 {
		return nil
	}
	res := tx.SendBatch(ctx, b)
	written, updated, err := w.readUpsert(res)
	if err != nil {
		_ = res.Close()
		return err
	}
	if err := res.Close(); err != nil {
		return err
	}
	w.written = len(written)
	return w.writeChildren(ctx, tx, written, updated, now)
}

func (w *schemaWrite) readUpsert(res pgx.BatchResults) (map[string]bool, []string, error) {
	written := map[string]bool{}
	var updated []string
	if len(w.g.events) == 0 {
		return written, nil, nil
	}
	rows, err := res.Query()
	if err != nil {
		return nil, nil, err
	}
	var id string
	var inserted bool
	_, err = pgx.ForEachRow(rows, []any{&id, &inserted}, func() error {
		written[id] = true
		if !inserted {
			updated = append(updated, id)
		}
		return nil
	})
	return written, updated, err
}

// dataUpsert: the newest copy replaces the whole row (every column is listed,
// absent ones as NULL), and the sequence guard keeps a re-delivered older copy
// from overwriting a newer one. RETURNING tells inserts (xmax = 0) from updates.
func (w *schemaWrite) dataUpsert(now time.Time) (string, []any) {
	evs := w.g.events
	n := len(evs)
	id, recv, seq, raw := textColumn("event_id", n), timeColumn("_sdc_received_at", n), int8Column("_sdc_sequence", n), textColumn("_sdc_raw", n)
	raw.conv = "::jsonb"
	cols := []*column{id, recv, seq, raw}
	ts := w.tables["data"]
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
		for _, f := range e.Flat.Tables[0].Rows[0].Fields {
			if col, isNew := stitch.Resolve(ts.cols, f.Name, f.Type); !isNew {
				byName[col].set(i, f.Value)
			}
		}
	}
	batched := fmt.Sprintf("$%d::timestamptz", len(cols)+1)
	q, args := insertSQL(ident(w.schema, "data"), cols,
		[][2]string{{"_sdc_batched_at", batched}, {"_sdc_table_version", "NULL::bigint"}}, 1)
	names := []string{ident("_sdc_received_at"), ident("_sdc_batched_at"), ident("_sdc_sequence"), ident("_sdc_table_version"), ident("_sdc_raw")}
	for _, c := range cols[4:] {
		names = append(names, c.name)
	}
	q += " ON CONFLICT (event_id) DO UPDATE SET " + setAll(names) +
		" WHERE t._sdc_sequence < EXCLUDED._sdc_sequence RETURNING t.event_id, (t.xmax = 0)"
	return q, append(args, now)
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
	q, args := insertSQL(ident(w.schema, "_sdc_rejected"), []*column{table, reason, record},
		[][2]string{{"_sdc_rejected_at", "$4::timestamptz"}}, 1)
	return q, append(args, now)
}

// writeChildren replaces the subtable rows of the events just written: rows of
// updated events are deleted first (in every subtable, so a shorter or missing
// array leaves nothing stale), then the new elements are inserted.
func (w *schemaWrite) writeChildren(ctx context.Context, tx pgx.Tx, written map[string]bool, updated []string, now time.Time) error {
	b := &pgx.Batch{}
	if len(updated) > 0 {
		for _, name := range slices.Sorted(maps.Keys(w.tables)) {
			if name != "data" {
				b.Queue(fmt.Sprintf("DELETE FROM %s WHERE _sdc_source_key_event_id = ANY($1)", ident(w.schema, name)), updated)
			}
		}
	}
	for _, c := range w.childInserts(written) {
		b.Queue(c.sql, c.args...)
	}
	if len(w.problems) > 0 {
		q, args := w.rejectedInsert(w.problems, now)
		b.Queue(q, args...)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}
