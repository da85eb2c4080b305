package postgres

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/cioloader/cioloader/internal/stitch"
)

// tableState is the cached shape of one table. It is never changed in place:
// evolution swaps in a new one, so a writer's snapshot stays consistent.
type tableState struct {
	cols    map[string]stitch.ColType // data columns of the five Stitch types
	sources map[string]string         // bare column → the key that claimed it (Field.Source)
	order   []string                  // cols' names in a stable order (SQL text stays the same → prepared once)
	total   int                       // every column, system ones included (the cap counts them)
	depth   int                       // level ids of a subtable
	rawType string                    // data's _sdc_raw: "json" (SPEC 5), or "jsonb" until `cioloader upgrade` rewrites it
	texts   sync.Map                  // statement texts rendered for this shape (see statementTexts)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadTables reads the columns of schema's tables (all of them, or only names).
func loadTables(ctx context.Context, q querier, schema string, names []string) (map[string]*tableState, error) {
	rows, err := q.Query(ctx, `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
		  AND (c.relname = 'data' OR c.relname LIKE 'data\_\_%')
		  AND ($2::text[] IS NULL OR c.relname = ANY($2))
		ORDER BY c.relname, a.attnum`, schema, names)
	if err != nil {
		return nil, err
	}
	tables := map[string]*tableState{}
	var table, col, typ string
	_, err = pgx.ForEachRow(rows, []any{&table, &col, &typ}, func() error {
		t, ok := tables[table]
		if !ok {
			t = &tableState{cols: map[string]stitch.ColType{}}
			tables[table] = t
		}
		t.total++
		if table == "data" && col == "_sdc_raw" {
			t.rawType = typ
		}
		if strings.HasPrefix(col, "_sdc_level_") {
			t.depth++
		}
		if ct, ok := colTypeOf(typ); ok && !strings.HasPrefix(col, "_sdc") && !(table == "data" && col == "event_id") {
			t.cols[col] = ct
			t.order = append(t.order, col)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tables, loadSources(ctx, q, schema, names, tables)
}

// loadSources adds each table's column claims (cioloader.column_sources).
func loadSources(ctx context.Context, q querier, schema string, names []string, tables map[string]*tableState) error {
	rows, err := q.Query(ctx, `SELECT table_name, column_name, source FROM cioloader.column_sources
		WHERE schema_name = $1 AND ($2::text[] IS NULL OR table_name = ANY($2))`, schema, names)
	if err != nil {
		return err
	}
	var table, col, src string
	_, err = pgx.ForEachRow(rows, []any{&table, &col, &src}, func() error {
		if t := tables[table]; t != nil {
			if t.sources == nil {
				t.sources = map[string]string{}
			}
			t.sources[col] = src
		}
		return nil
	})
	return err
}

// clone is a copy that add may change (tableState is never changed in place).
func (t *tableState) clone() *tableState {
	c := &tableState{cols: maps.Clone(t.cols), sources: maps.Clone(t.sources), order: slices.Clone(t.order), total: t.total, depth: t.depth}
	if c.sources == nil {
		c.sources = map[string]string{}
	}
	return c
}

// add records a new column col made for w.
func (t *tableState) add(col string, w want) {
	if col == w.base {
		t.sources[col] = w.source
	}
	t.cols[col] = w.typ
	t.order = append(t.order, col)
	t.total++
}

// claimedByOther reports whether the bare column base was created by another
// key than source (a collision across events: the first key keeps it).
func (t *tableState) claimedByOther(base, source string) bool {
	if t == nil {
		return false
	}
	src, ok := t.sources[base]
	return ok && src != source
}

func colTypeOf(sqlType string) (stitch.ColType, bool) {
	switch sqlType {
	case "text":
		return stitch.Text, true
	case "bigint":
		return stitch.BigInt, true
	case "numeric":
		return stitch.Numeric, true
	case "double precision":
		return stitch.Double, true
	case "boolean":
		return stitch.Boolean, true
	}
	return 0, false
}

// want is a column (or, with col empty, just a table) a batch needs.
type want struct {
	table  string
	depth  int
	base   string
	typ    stitch.ColType
	source string
}

// missing lists what the cached tables lack for these events' fields.
func missing(tables map[string]*tableState, flats []*stitch.Result) []want {
	var ws wantSet
	for _, f := range flats {
		for _, t := range f.Tables {
			ts := tables[t.Name]
			if ts.claimedByOther("", t.Source) {
				continue // another key path owns this subtable
			}
			if ts == nil {
				ws.add(want{table: t.Name, depth: t.Depth, source: t.Source})
			}
			for _, r := range t.Rows {
				ws.addFields(ts, &t, r.Fields)
			}
		}
	}
	return ws.list
}

// wantSet collects distinct wants in the order first met.
type wantSet struct {
	list []want
	seen map[want]bool
}

func (ws *wantSet) add(w want) {
	if ws.seen == nil {
		ws.seen = map[want]bool{}
	}
	if !ws.seen[w] {
		ws.seen[w] = true
		ws.list = append(ws.list, w)
	}
}

// addFields wants the columns of t's fields that ts (nil: a new table) lacks.
func (ws *wantSet) addFields(ts *tableState, t *stitch.Table, fields []stitch.Field) {
	for _, fl := range fields {
		if ts != nil {
			if _, isNew := stitch.Resolve(ts.cols, fl.Name, fl.Type); !isNew || ts.claimedByOther(fl.Name, fl.Source) {
				continue
			}
		}
		ws.add(want{table: t.Name, depth: t.Depth, base: fl.Name, typ: fl.Type, source: fl.Source})
	}
}
