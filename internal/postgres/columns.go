package postgres

import (
	"context"
	"fmt"
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
}

// schemaState caches an integration schema's tables. mu serialises this
// process's schema changes; the advisory lock serialises them across replicas.
type schemaState struct {
	mu     sync.Mutex
	loaded bool
	tables map[string]*tableState
}

func (s *Store) schemaState(schema string) *schemaState {
	s.schemasMu.Lock()
	defer s.schemasMu.Unlock()
	st, ok := s.schemas[schema]
	if !ok {
		st = &schemaState{tables: map[string]*tableState{}}
		s.schemas[schema] = st
	}
	return st
}

// forgetSchema drops the cached shape of schema (another replica changed it),
// so the next write reloads every column: the upsert must list them all for
// a newer copy to replace the whole row.
func (s *Store) forgetSchema(schema string) {
	s.schemasMu.Lock()
	defer s.schemasMu.Unlock()
	delete(s.schemas, schema)
}

// columnsChannel tells replicas that a schema gained columns or tables.
const columnsChannel = "cioloader_columns"

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

// snapshot returns the cached tables, loading them on first use.
func (s *Store) snapshot(ctx context.Context, schema string) (map[string]*tableState, *schemaState, error) {
	st := s.schemaState(schema)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.loaded {
		tables, err := loadTables(ctx, s.pool, schema, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("load columns of %s: %w", schema, translate(err))
		}
		st.tables, st.loaded = tables, true
	}
	return maps.Clone(st.tables), st, nil
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
	var out []want
	seen := map[want]bool{}
	for _, f := range flats {
		for _, t := range f.Tables {
			ts := tables[t.Name]
			if ts.claimedByOther("", t.Source) {
				continue // another key path owns this subtable
			}
			if ts == nil {
				w := want{table: t.Name, depth: t.Depth, source: t.Source}
				if !seen[w] {
					seen[w] = true
					out = append(out, w)
				}
			}
			for _, r := range t.Rows {
				for _, fl := range r.Fields {
					if ts != nil {
						if _, isNew := stitch.Resolve(ts.cols, fl.Name, fl.Type); !isNew || ts.claimedByOther(fl.Name, fl.Source) {
							continue
						}
					}
					w := want{table: t.Name, depth: t.Depth, base: fl.Name, typ: fl.Type, source: fl.Source}
					if !seen[w] {
						seen[w] = true
						out = append(out, w)
					}
				}
			}
		}
	}
	return out
}

// evolve adds what wants asks for, table by table, each in its own short
// transaction under a per-table advisory lock, re-reading the table's columns
// after taking the lock (another replica may have added them, maybe with
// another type, which changes where a value goes). Only CREATE TABLE IF NOT
// EXISTS and ADD COLUMN IF NOT EXISTS: nothing is dropped or retyped.
func (s *Store) evolve(ctx context.Context, schema string, st *schemaState, wants []want) error {
	byTable := map[string][]want{}
	for _, w := range wants {
		byTable[w.table] = append(byTable[w.table], w)
	}
	names := slices.Sorted(maps.Keys(byTable))
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, name := range names {
		ts, err := s.evolveTable(ctx, schema, st, name, byTable[name])
		if err != nil {
			return fmt.Errorf("evolve %s.%s: %w", schema, name, translate(err))
		}
		if ts != nil {
			st.tables = maps.Clone(st.tables)
			st.tables[name] = ts
		}
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, columnsChannel, schema); err != nil {
		s.log.Warn("could not tell other replicas about new columns", "schema", schema, "err", translate(err))
	}
	return nil
}

func (s *Store) evolveTable(ctx context.Context, schema string, st *schemaState, name string, wants []want) (*tableState, error) {
	var result *tableState
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ddl:"+schema+"."+name); err != nil {
			return err
		}
		fresh, err := loadTables(ctx, tx, schema, []string{name})
		if err != nil {
			return err
		}
		ts := fresh[name]
		if ts == nil {
			if name != "data" && s.subtableCount(st) >= s.cfg.MaxSubtables {
				return nil // past the bound the array stays in _sdc_raw only
			}
			if _, err := tx.Exec(ctx, subtableDDL(schema, name, wants[0].depth)); err != nil {
				return err
			}
			// The key path that made the subtable owns it ("" column = the table).
			tableSource := tableWantSource(wants)
			if _, err := tx.Exec(ctx, `INSERT INTO cioloader.column_sources (schema_name, table_name, column_name, source)
				VALUES ($1, $2, '', $3) ON CONFLICT DO NOTHING`, schema, name, tableSource); err != nil {
				return err
			}
			s.countSchemaChange(schema, "table")
			ts = &tableState{cols: map[string]stitch.ColType{}, sources: map[string]string{"": tableSource},
				total: 2 + len(subtableSystemColumns) + wants[0].depth, depth: wants[0].depth}
		}
		ts, err = s.addColumns(ctx, tx, schema, name, ts, wants)
		result = ts
		return err
	})
	return result, err
}

// addColumns resolves each wanted (base, type) against the fresh columns and
// adds the new ones, up to the column cap.
func (s *Store) addColumns(ctx context.Context, tx pgx.Tx, schema, name string, ts *tableState, wants []want) (*tableState, error) {
	next := &tableState{cols: maps.Clone(ts.cols), sources: maps.Clone(ts.sources), order: slices.Clone(ts.order), total: ts.total, depth: ts.depth}
	if next.sources == nil {
		next.sources = map[string]string{}
	}
	for _, w := range wants {
		if w.base == "" || next.claimedByOther(w.base, w.source) {
			continue
		}
		col, isNew := stitch.Resolve(next.cols, w.base, w.typ)
		if !isNew || next.total >= s.cfg.MaxColumns {
			continue
		}
		if col == w.base {
			if _, err := tx.Exec(ctx, `INSERT INTO cioloader.column_sources (schema_name, table_name, column_name, source)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, schema, name, col, w.source); err != nil {
				return nil, err
			}
			next.sources[col] = w.source
		}
		q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", ident(schema, name), ident(col), w.typ.SQL())
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, err
		}
		next.cols[col] = w.typ
		next.order = append(next.order, col)
		next.total++
		s.countSchemaChange(schema, "column")
	}
	return next, nil
}

// tableWantSource is the source of the first table-creating want (the one
// with no column), which is the key path that reached the table first.
func tableWantSource(wants []want) string {
	for _, w := range wants {
		if w.base == "" {
			return w.source
		}
	}
	return ""
}

func (s *Store) subtableCount(st *schemaState) int {
	n := 0
	for name := range st.tables {
		if name != "data" {
			n++
		}
	}
	return n
}

func (s *Store) countSchemaChange(schema, kind string) {
	if s.m != nil {
		s.m.SchemaChanges.WithLabelValues(schema, kind).Inc()
	}
}
