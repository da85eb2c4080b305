package postgres

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/stitch"
)

type queued struct {
	sql  string
	args []any
}

type childRow struct {
	e   *ingest.Event
	row *stitch.Row
}

// childInserts builds one INSERT per subtable, and records every value that
// could not be mapped (Flatten's problems, and fields or tables past the caps)
// as a problem row.
func (w *schemaWrite) childInserts() []queued {
	byTable := map[string][]childRow{}
	for _, e := range w.g.events {
		w.capProblems(e, e.Flat.Tables[0].Rows[0], w.tables["data"], "data")
		for ti := 1; ti < len(e.Flat.Tables); ti++ {
			t := &e.Flat.Tables[ti]
			if w.tables[t.Name] == nil {
				w.problem(e, t.Name, fmt.Sprintf("Schema %s has reached its limit of array subtables; %s kept in _sdc_raw only", w.schema, t.Name))
				continue
			}
			if w.tables[t.Name].claimedByOther("", t.Source) {
				src := t.Source
				if src == "" {
					src = t.Name
				}
				w.problem(e, t.Name, fmt.Sprintf("Field collision on %s (array %q; the table belongs to another key)", t.Name, src))
				continue
			}
			if w.tables[t.Name].depth != t.Depth {
				// Another key path already made a table of this name with other nesting
				// ("a__b":[…] vs "a":[{"b":[…]}]): the rows would not fit its keys.
				w.problem(e, t.Name, fmt.Sprintf("Table %s already holds arrays nested %d deep, not %d; kept in _sdc_raw only", t.Name, w.tables[t.Name].depth, t.Depth))
				continue
			}
			for ri := range t.Rows {
				byTable[t.Name] = append(byTable[t.Name], childRow{e: e, row: &t.Rows[ri]})
			}
		}
	}
	out := make([]queued, 0, len(byTable))
	for _, name := range slices.Sorted(maps.Keys(byTable)) {
		out = append(out, w.childInsert(name, byTable[name]))
	}
	return out
}

func (w *schemaWrite) childInsert(name string, rows []childRow) queued {
	ts := w.tables[name]
	n := len(rows)
	key, seq := textColumn("_sdc_source_key_event_id", n), int8Column("_sdc_sequence", n)
	cols := []*column{key}
	levels := make([]*column, ts.depth)
	for l := range levels {
		levels[l] = int8Column(fmt.Sprintf("_sdc_level_%d_id", l), n)
		cols = append(cols, levels[l])
	}
	cols = append(cols, seq)
	byName := make(map[string]*column, len(ts.order))
	for _, c := range ts.order {
		byName[c] = userColumn(c, ts.cols[c], n)
		cols = append(cols, byName[c])
	}
	for i, r := range rows {
		key.set(i, r.e.ID)
		seq.set(i, r.e.Seq)
		for l, lv := range r.row.Levels {
			if l < len(levels) {
				levels[l].set(i, lv)
			}
		}
		budget := newRowBudget(len(ts.order)+ts.depth, len(r.e.ID))
		for _, f := range r.row.Fields {
			col, isNew := stitch.Resolve(ts.cols, f.Name, f.Type)
			switch {
			case ts.claimedByOther(f.Name, f.Source):
				w.problem(r.e, name, collisionReason(f))
			case isNew:
				w.problem(r.e, name, capReason(name, f.Name))
			case !budget.take(f):
				w.problem(r.e, name, rowSizeReason(name, f.Name))
			default:
				byName[col].set(i, f.Value)
			}
		}
	}
	// Only rows of the version data now holds: an older re-delivery whose
	// upsert was refused by the sequence guard inserts nothing.
	q := w.texts.get(textKey{kind: "child", schema: w.schema, table: ts, extra: name, single: singleRow(cols)}, func() string {
		join := fmt.Sprintf(" JOIN %s AS d ON d.event_id = u.c0 AND d._sdc_sequence = u.c%d", ident(w.schema, "data"), ts.depth+1)
		q, _ := insertSQLFrom(ident(w.schema, name), cols, subtableSystemValues, 1, join, byKey(ts.depth))
		return q + " ON CONFLICT DO NOTHING"
	})
	return queued{sql: q, args: insertArgs(cols)}
}

// subtableSystemValues fill a subtable row's system columns from its event's data row.
var subtableSystemValues = func() [][2]string {
	out := make([][2]string, len(subtableSystemColumns))
	for i, c := range subtableSystemColumns {
		out[i] = [2]string{c[0], "d." + c[0]}
	}
	return out
}()

// capProblems records data-table fields that found no column (column cap).
func (w *schemaWrite) capProblems(e *ingest.Event, row stitch.Row, ts *tableState, table string) {
	for _, f := range row.Fields {
		if _, isNew := stitch.Resolve(ts.cols, f.Name, f.Type); isNew && !ts.claimedByOther(f.Name, f.Source) {
			w.problem(e, table, capReason(table, f.Name))
		}
	}
}

func capReason(table, col string) string {
	return fmt.Sprintf("Table %s has reached its column limit; %s kept in _sdc_raw only", table, col)
}

// problem records an unmapped value. The event's full copy is in _sdc_raw, so
// a problem row keeps only the start of it, and one event logs at most
// maxProblemsPerEvent rows (a hostile event can have a thousand bad keys).
func (w *schemaWrite) problem(e *ingest.Event, table, reason string) {
	w.unmapped++
	if w.perEvent == nil {
		w.perEvent = map[*ingest.Event]int{}
	}
	w.perEvent[e]++
	switch n := w.perEvent[e]; {
	case n < maxProblemsPerEvent:
		w.problems = append(w.problems, rejectedRow{table: table, reason: reason, record: truncateRecord(e.Raw)})
	case n == maxProblemsPerEvent:
		w.problems = append(w.problems, rejectedRow{table: table, reason: "Further unmapped values of this event are not listed; the event is whole in data._sdc_raw", record: truncateRecord(e.Raw)})
	}
}

const (
	maxRecord           = 8 << 10 // bytes of the event kept with each problem row
	maxProblemsPerEvent = 50
)

func truncateRecord(raw []byte) string {
	if len(raw) <= maxRecord {
		return string(raw)
	}
	cut := maxRecord
	for cut > 0 && raw[cut]&0xC0 == 0x80 {
		cut--
	}
	return string(raw[:cut])
}

// count updates the metrics once the transaction has committed.
func (w *schemaWrite) count(m *metrics.Metrics) {
	if m == nil {
		return
	}
	m.EventsAccepted.WithLabelValues(w.schema).Add(float64(w.g.accepted))
	m.EventsRejected.WithLabelValues(w.schema).Add(float64(len(w.g.rejected)))
	m.Unmapped.WithLabelValues(w.schema).Add(float64(w.unmapped))
	m.Replaced.Add(float64(w.g.replaced))
}

// rowBudget keeps a row under Postgres's limit for one heap tuple (8,160
// bytes): text values can be moved out of line by TOAST, but each still leaves
// a pointer of up to 18 bytes, and fixed-width values stay. The estimate is
// pessimistic about alignment; values past it stay in _sdc_raw.
type rowBudget struct{ left int }

const maxTupleBytes = 8160

func newRowBudget(columns, keyLen int) rowBudget {
	// header, null bitmap, key, sequence, two timestamps, raw pointer, padding
	used := 24 + columns/8 + 1 + min(keyLen+4, 18) + 3*8 + 18 + 64
	return rowBudget{left: maxTupleBytes - used - 512}
}

func (b *rowBudget) take(f stitch.Field) bool {
	var cost int
	switch f.Type {
	case stitch.BigInt, stitch.Double:
		cost = 16 // 8 bytes, up to 8 more of alignment padding
	case stitch.Boolean:
		cost = 1
	default:
		n := 0
		switch v := f.Value.(type) {
		case string:
			n = len(v)
		}
		cost = min(n+4, 18) + 4 // 4: alignment of a 4-byte varlena header
	}
	if cost > b.left {
		return false
	}
	b.left -= cost
	return true
}

func rowSizeReason(table, col string) string {
	return fmt.Sprintf("Row of table %s would exceed Postgres's row size limit; %s kept in _sdc_raw only", table, col)
}

// collisionReason is Stitch's wording for a key whose column another key
// already claimed in an earlier event.
func collisionReason(f stitch.Field) string {
	src := f.Source
	if src == "" {
		src = f.Name
	}
	return fmt.Sprintf("Field collision on %s (key %q; the column belongs to another key)", f.Name, src)
}
