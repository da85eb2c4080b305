package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/stitch"
)

// schemaState caches an integration schema's tables. mu serialises this
// process's schema changes; the advisory lock serialises them across replicas.
type schemaState struct {
	mu     sync.Mutex
	loaded bool
	tables map[string]*tableState
}

// schemaCache holds the cached shape of every integration schema this
// process writes, and evolves it: it creates subtables and adds columns, up to
// the caps, when a batch needs them.
type schemaCache struct {
	pool         *pgxpool.Pool
	log          *slog.Logger
	m            *metrics.Metrics
	maxColumns   int
	maxSubtables int

	mu      sync.Mutex
	schemas map[string]*schemaState
}

func newSchemaCache(pool *pgxpool.Pool, maxColumns, maxSubtables int, log *slog.Logger, m *metrics.Metrics) *schemaCache {
	return &schemaCache{pool: pool, log: log, m: m, maxColumns: maxColumns, maxSubtables: maxSubtables, schemas: map[string]*schemaState{}}
}

func (s *schemaCache) state(schema string) *schemaState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.schemas[schema]
	if !ok {
		st = &schemaState{tables: map[string]*tableState{}}
		s.schemas[schema] = st
	}
	return st
}

// forget drops the cached shape of schema (another replica changed it),
// so the next write reloads every column: the upsert must list them all for
// a newer copy to replace the whole row.
func (s *schemaCache) forget(schema string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.schemas, schema)
}

// forgetAll drops every cached shape (the listener missed notifications).
func (s *schemaCache) forgetAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.schemas)
}

// columnsChannel tells replicas that a schema gained columns or tables.
const columnsChannel = "cioloader_columns"

// snapshot returns the cached tables, loading them on first use.
func (s *schemaCache) snapshot(ctx context.Context, schema string) (map[string]*tableState, *schemaState, error) {
	st := s.state(schema)
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

// evolve adds what wants asks for, table by table, each in its own short
// transaction under a per-table advisory lock, re-reading the table's columns
// after taking the lock (another replica may have added them, maybe with
// another type, which changes where a value goes). Only CREATE TABLE IF NOT
// EXISTS and ADD COLUMN IF NOT EXISTS: nothing is dropped or retyped.
func (s *schemaCache) evolve(ctx context.Context, schema string, st *schemaState, wants []want) error {
	byTable := map[string][]want{}
	for _, w := range wants {
		byTable[w.table] = append(byTable[w.table], w)
	}
	names := slices.Sorted(maps.Keys(byTable))
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, name := range names {
		ts, err := s.evolveTableRetrying(ctx, schema, st, name, byTable[name])
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

// ddlLockTimeout bounds how long one attempt at a schema change waits for its
// table lock. While an ALTER TABLE waits for the lock, every write to the
// table queues behind it, so a long wait (behind a long commit, or behind
// autovacuum, which Postgres only cancels after deadlock_timeout) stalls all
// ingest; a short wait, retried, keeps each stall short.
const ddlLockTimeout = 100 * time.Millisecond

// evolveTableRetrying is evolveTable, tried again after a short pause while
// its table lock is not available, until ctx ends (the batch's commit deadline).
func (s *schemaCache) evolveTableRetrying(ctx context.Context, schema string, st *schemaState, name string, wants []want) (*tableState, error) {
	for attempt := 1; ; attempt++ {
		ts, err := s.evolveTable(ctx, schema, st, name, wants)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55P03" /* lock_not_available */ {
			return ts, err
		}
		s.log.Debug("schema change waiting for its table lock; retrying", "schema", schema, "table", name, "attempt", attempt)
		pause := time.Duration(10+rand.IntN(40)) * time.Millisecond
		// The caller (evolve) holds st.mu: let other batches of the schema
		// read its shape meanwhile. evolveTable re-reads the table under its
		// lock, so what they change in between is seen.
		st.mu.Unlock()
		select {
		case <-ctx.Done():
			st.mu.Lock()
			return nil, err
		case <-time.After(pause):
		}
		st.mu.Lock()
	}
}

// evolveTable is one table's schema change: its own short transaction (the
// data transaction must never wait on DDL), serialised across replicas by
// the table's advisory lock.
func (s *schemaCache) evolveTable(ctx context.Context, schema string, st *schemaState, name string, wants []want) (*tableState, error) {
	var result *tableState
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ts, err := lockAndLoad(ctx, tx, schema, name)
		if err != nil {
			return err
		}
		if ts == nil {
			if name != "data" && subtableCount(st) >= s.maxSubtables {
				return nil // past the bound the array stays in _sdc_raw only
			}
			if ts, err = createSubtable(ctx, tx, schema, name, wants); err != nil {
				return err
			}
			s.countSchemaChange(schema, "table")
		}
		result, err = s.addColumns(ctx, tx, schema, name, ts, wants)
		return err
	})
	return result, err
}

// lockAndLoad takes the table's DDL lock and reads its columns afresh (nil:
// the table does not exist).
func lockAndLoad(ctx context.Context, tx pgx.Tx, schema, name string) (*tableState, error) {
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, ddlLockTimeout.Milliseconds())); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ddl:"+schema+"."+name); err != nil {
		return nil, err
	}
	fresh, err := loadTables(ctx, tx, schema, []string{name})
	return fresh[name], err
}

// createSubtable creates an array subtable and records the key path that
// made it, which owns it ("" column = the table).
func createSubtable(ctx context.Context, tx pgx.Tx, schema, name string, wants []want) (*tableState, error) {
	depth := wants[0].depth
	// Readers' default privileges are not changing meanwhile (defaultsLockKey).
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(`+defaultsLockKey+`)`, schema); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, subtableDDL(schema, name, depth)); err != nil {
		return nil, err
	}
	source := tableWantSource(wants)
	if err := claimColumn(ctx, tx, schema, name, "", source); err != nil {
		return nil, err
	}
	return &tableState{cols: map[string]stitch.ColType{}, sources: map[string]string{"": source},
		total: 2 + len(subtableSystemColumns) + depth, depth: depth}, nil
}

// claimColumn records that source made column col (or, col "", the table).
func claimColumn(ctx context.Context, tx pgx.Tx, schema, table, col, source string) error {
	_, err := tx.Exec(ctx, `INSERT INTO cioloader.column_sources (schema_name, table_name, column_name, source)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, schema, table, col, source)
	return err
}

// addColumns resolves each wanted (base, type) against the fresh columns and
// adds the new ones, up to the column cap.
func (s *schemaCache) addColumns(ctx context.Context, tx pgx.Tx, schema, name string, ts *tableState, wants []want) (*tableState, error) {
	next := ts.clone()
	for _, w := range wants {
		if w.base == "" || next.claimedByOther(w.base, w.source) {
			continue
		}
		col, isNew := stitch.Resolve(next.cols, w.base, w.typ)
		if !isNew || next.total >= s.maxColumns {
			continue
		}
		if err := addColumn(ctx, tx, schema, name, col, w); err != nil {
			return nil, err
		}
		next.add(col, w)
		s.countSchemaChange(schema, "column")
	}
	return next, nil
}

// addColumn adds col for w, claiming it for w's key when col is the bare name.
func addColumn(ctx context.Context, tx pgx.Tx, schema, name, col string, w want) error {
	if col == w.base {
		if err := claimColumn(ctx, tx, schema, name, col, w.source); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", ident(schema, name), ident(col), w.typ.SQL()))
	return err
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

func subtableCount(st *schemaState) int {
	n := 0
	for name := range st.tables {
		if name != "data" {
			n++
		}
	}
	return n
}

func (s *schemaCache) countSchemaChange(schema, kind string) {
	if s.m != nil {
		s.m.SchemaChanges.WithLabelValues(schema, kind).Inc()
	}
}
