package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TableSize is where one table's bytes are: its heap (with its free-space and
// visibility maps), its TOAST table (with the TOAST index) and each index.
type TableSize struct {
	Heap, Toast int64
	Indexes     map[string]int64
}

// Total is the table's bytes, everything included (pg_total_relation_size).
func (t TableSize) Total() int64 {
	n := t.Heap + t.Toast
	for _, b := range t.Indexes {
		n += b
	}
	return n
}

// TableSizes reads the sizes of every table of schema, as they are (no VACUUM).
func (m *Measurer) TableSizes(ctx context.Context, schema string) (map[string]TableSize, error) {
	rows, err := m.conn.Query(ctx, `SELECT c.relname,
		pg_table_size(c.oid) - coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
		coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
		coalesce(i.relname, ''), coalesce(pg_relation_size(i.oid), 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_index x ON x.indrelid = c.oid LEFT JOIN pg_class i ON i.oid = x.indexrelid
		WHERE n.nspname = $1 AND c.relkind = 'r'`, schema)
	if err != nil {
		return nil, fmt.Errorf("postgres: table sizes: %w", err)
	}
	out := map[string]TableSize{}
	var table, index string
	var heap, toast, size int64
	_, err = pgx.ForEachRow(rows, []any{&table, &heap, &toast, &index, &size}, func() error {
		t, ok := out[table]
		if !ok {
			t = TableSize{Heap: heap, Toast: toast, Indexes: map[string]int64{}}
		}
		if index != "" {
			t.Indexes[index] = size
		}
		out[table] = t
		return nil
	})
	return out, err
}

// autovacuumDue counts schema's tables that autovacuum still has work on: one
// it is vacuuming now, or one past its insert, dead-row or analyze threshold
// (the table's own settings, else the server's).
const autovacuumDue = `WITH t AS (
	SELECT s.relid, s.n_ins_since_vacuum, s.n_dead_tup, s.n_mod_since_analyze, greatest(c.reltuples, 0) AS tuples,
	       (SELECT coalesce(array_agg(o.option_name || '=' || o.option_value), '{}') FROM pg_options_to_table(c.reloptions) o) AS opts
	FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.schemaname = $1),
o AS (SELECT t.*, (SELECT substring(x from '=(.*)$') FROM unnest(t.opts) x WHERE x LIKE 'autovacuum_vacuum_insert_threshold=%') AS ins_thr,
	(SELECT substring(x from '=(.*)$') FROM unnest(t.opts) x WHERE x LIKE 'autovacuum_vacuum_insert_scale_factor=%') AS ins_sf FROM t)
SELECT count(*) FROM o
WHERE EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p WHERE p.relid = o.relid)
   OR o.n_ins_since_vacuum > coalesce(o.ins_thr, current_setting('autovacuum_vacuum_insert_threshold'))::float8
                             + coalesce(o.ins_sf, current_setting('autovacuum_vacuum_insert_scale_factor'))::float8 * o.tuples
   OR o.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8 + current_setting('autovacuum_vacuum_scale_factor')::float8 * o.tuples
   OR o.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8 + current_setting('autovacuum_analyze_scale_factor')::float8 * o.tuples`

// WaitAutovacuum waits until autovacuum has nothing left to do on schema's
// tables (see autovacuumDue), polling every 5 s, for at most limit. It
// returns how long it waited and whether autovacuum caught up in time.
func (m *Measurer) WaitAutovacuum(ctx context.Context, schema string, limit time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	for {
		var due int
		if err := m.conn.QueryRow(ctx, autovacuumDue, schema).Scan(&due); err != nil {
			return time.Since(start), false, fmt.Errorf("postgres: autovacuum state: %w", err)
		}
		if due == 0 {
			return time.Since(start), true, nil
		}
		if time.Since(start) >= limit {
			return time.Since(start), false, nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}
