package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/cioloader/cioloader/internal/warehouse"
)

// The record of the warehouse views (migration 000011): what warehouse.go writes
// and reads back under the schema's advisory lock.

// recordWarehouse inserts the new event names and columns; rows already there (the
// first type of a column) are kept.
func recordWarehouse(ctx context.Context, tx pgx.Tx, schema string, newEvents map[string]string, wants []whWant) error {
	if len(newEvents) > 0 {
		names := slicesSorted(newEvents)
		tables := make([]string, len(names))
		for i, n := range names {
			tables[i] = newEvents[n]
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cioloader.warehouse_events (schema_name, event_name, table_name)
			SELECT $1, e, t FROM unnest($2::text[], $3::text[]) AS x(e, t) ON CONFLICT DO NOTHING`, schema, names, tables); err != nil {
			return err
		}
	}
	if len(wants) == 0 {
		return nil
	}
	// One statement for all: a path (text[] of any length) travels as JSON.
	tables, cols, sources, types := make([]string, len(wants)), make([]string, len(wants)), make([]string, len(wants)), make([]string, len(wants))
	paths := make([][]string, len(wants))
	for i, wt := range wants {
		tables[i], cols[i], sources[i], types[i] = wt.key.table, wt.col.Name, string(wt.col.Source), string(wt.col.Type)
		if paths[i] = wt.path.keys; paths[i] == nil {
			paths[i] = []string{}
		}
	}
	pathsJSON, err := json.Marshal(paths)
	if err != nil {
		return err
	}
	// In the wants' order, so ids (the views' column order) follow it.
	_, err = tx.Exec(ctx, `INSERT INTO cioloader.warehouse_columns (schema_name, table_name, column_name, source, path, type)
		SELECT $1, t, c, s, ARRAY(SELECT jsonb_array_elements_text(p)), ty
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS x(t, c, s, ty, n)
		JOIN jsonb_array_elements($6::jsonb) WITH ORDINALITY AS y(p, m) ON m = n
		ORDER BY n ON CONFLICT DO NOTHING`, schema, tables, cols, sources, types, string(pathsJSON))
	return err
}

// loadWarehouse reads a schema's record: its relations (tracks always) with their
// columns in order and their event names, and every event name's table.
func loadWarehouse(ctx context.Context, q querier, schema string) (map[string]*whRelation, map[string]string, error) {
	rels := map[string]*whRelation{tracksTable: {name: tracksTable}}
	rel := func(name string) *whRelation {
		if rels[name] == nil {
			rels[name] = &whRelation{name: name}
		}
		return rels[name]
	}
	events := map[string]string{}
	rows, err := q.Query(ctx, `SELECT event_name, table_name FROM cioloader.warehouse_events WHERE schema_name = $1 ORDER BY event_name`, schema)
	if err != nil {
		return nil, nil, err
	}
	var ev, table string
	if _, err := pgx.ForEachRow(rows, []any{&ev, &table}, func() error {
		events[ev] = table
		r := rel(table)
		r.events = append(r.events, ev)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	rows, err = q.Query(ctx, `SELECT table_name, column_name, source, path, type FROM cioloader.warehouse_columns
		WHERE schema_name = $1 ORDER BY id`, schema)
	if err != nil {
		return nil, nil, err
	}
	var col, source, typ string
	var path []string
	_, err = pgx.ForEachRow(rows, []any{&table, &col, &source, &path, &typ}, func() error {
		return rel(table).addPath(col, warehouse.Source(source), slices.Clone(path), typ)
	})
	return rels, events, err
}

// addPath adds a recorded path to its column (the first row of a column gives its
// type and place).
func (r *whRelation) addPath(col string, src warehouse.Source, keys []string, typ string) error {
	for _, c := range r.cols {
		if c.name == col {
			c.paths = append(c.paths, whPath{source: src, keys: keys})
			return nil
		}
	}
	t, ok := warehouse.ParseType(typ)
	if !ok {
		return errors.New("unknown warehouse type " + typ)
	}
	r.cols = append(r.cols, &whColumn{name: col, typ: t, paths: []whPath{{source: src, keys: keys}}})
	return nil
}
