package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// StorageUpgrade is what UpgradeStorage did to one schema.
type StorageUpgrade struct {
	Schema string
	// RawRows is how many data rows were rewritten with _sdc_raw as json (0: it
	// already was).
	RawRows    int64
	RawTook    time.Duration
	RawDone    bool // _sdc_raw was jsonb and is json now
	FactsDone  bool // event_facts was rewritten: without the columns this release no longer stores, with every row's erasure hashes
	FactsTook  time.Duration
	FactsFreed []string // the columns event_facts lost
	// ErasureMoved: data_erasure_idx is dropped, every event_facts row having
	// its erasure hashes (event_facts_erasure finds a person's events).
	ErasureMoved bool
}

// droppedFactColumns are the columns event_facts had before it was narrowed to
// factColumns; the events view reads them from _sdc_raw.
var droppedFactColumns = []string{"campaign_id", "broadcast_id", "action_id", "journey_id", "newsletter_id",
	"transactional_message_id", "parent_action_id", "trigger_event_id", "content_id"}

// UpgradeStorage brings a schema made by an earlier release to this release's
// storage (SPEC 5, issue 26), explicitly, never at start:
//
//   - event_facts first: the columns it no longer stores dropped, email kept
//     for bounces only, the erasure hashes computed for the rows written before
//     them, data_erasure_idx dropped at the end (until then it finds those
//     rows' person), then the table rewritten (VACUUM FULL), which holds it
//     for the rewrite. A re-delivery of an event written before waits for
//     the update (its row is locked); new events do not.
//   - data's _sdc_raw from jsonb to json: the table is copied, every raw value
//     compacted (jsonb's text with its spaces would be larger than the jsonb),
//     then swapped in, with its primary key and the views that read it, in one
//     transaction. Writes to data wait for it (SHARE ROW EXCLUSIVE from the
//     start): ingest answers 503 meanwhile and Customer.io retries; reads go on
//     until the swap.
//
// progress gets the data rows copied as they go. A schema already upgraded is
// left as it is.
func (s *registry) UpgradeStorage(ctx context.Context, schema string, progress func(n int64)) (StorageUpgrade, error) {
	up := StorageUpgrade{Schema: schema}
	rawType, wide, oldErasure, err := storageShape(ctx, s.pool, schema)
	if err != nil {
		return up, fmt.Errorf("upgrade %s: %w", schema, translate(err))
	}
	if len(wide) > 0 || oldErasure {
		start := time.Now()
		if err := rewriteFacts(ctx, s.pool, schema, wide); err != nil {
			return up, fmt.Errorf("upgrade %s: event_facts: %w", schema, translate(err))
		}
		up.FactsDone, up.FactsTook, up.FactsFreed, up.ErasureMoved = true, time.Since(start), wide, oldErasure
	}
	if rawType == "jsonb" {
		start := time.Now()
		if up.RawRows, err = s.rawToJSON(ctx, schema, progress); err != nil {
			return up, fmt.Errorf("upgrade %s: _sdc_raw to json: %w", schema, translate(err))
		}
		up.RawDone, up.RawTook = true, time.Since(start)
	}
	return up, nil
}

// storageShape is data._sdc_raw's type, the dropped columns event_facts still
// has, and whether data still has data_erasure_idx.
func storageShape(ctx context.Context, pool *pgxpool.Pool, schema string) (rawType string, wide []string, oldErasure bool, err error) {
	err = pool.QueryRow(ctx, `SELECT coalesce(format_type(a.atttypid, a.atttypmod), ''), to_regclass($2) IS NOT NULL
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = '_sdc_raw' AND NOT a.attisdropped`,
		ident(schema, "data"), ident(schema, oldErasureIndex)).Scan(&rawType, &oldErasure)
	if err == pgx.ErrNoRows {
		return "", nil, false, fmt.Errorf("no table %s.data", schema)
	}
	if err != nil {
		return "", nil, false, err
	}
	rows, err := pool.Query(ctx, `SELECT a.attname::text FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attname = ANY($2) AND NOT a.attisdropped ORDER BY a.attnum`,
		ident(schema, "event_facts"), droppedFactColumns)
	if err != nil {
		return "", nil, false, err
	}
	wide, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return rawType, wide, oldErasure, err
}

// rawToJSON copies data into a new table with _sdc_raw as compact json text and
// swaps it in (see UpgradeStorage). The copy is read on a second connection:
// the first one's lock keeps every writer out, so what it reads is what the
// table holds until the swap.
func (s *registry) rawToJSON(ctx context.Context, schema string, progress func(n int64)) (int64, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	reader, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer reader.Release()

	var copied int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Schema evolution and start-up DDL of other replicas wait for this (their advisory locks).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), pg_advisory_xact_lock(hashtextextended($2, 0))`,
			"ddl:"+schema, "ddl:"+schema+".data"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE `+ident(schema, "data")+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		cols, err := dataColumns(ctx, tx, schema)
		if err != nil {
			return err
		}
		next := ident(schema, "data_json_upgrade")
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s (LIKE %[2]s INCLUDING DEFAULTS INCLUDING STORAGE);
			ALTER TABLE %[1]s ALTER COLUMN _sdc_raw TYPE json`, next, ident(schema, "data"))); err != nil {
			return err
		}
		if copied, err = copyCompacted(ctx, reader.Conn(), tx, schema, cols, progress); err != nil {
			return err
		}
		return swapData(ctx, tx, schema)
	})
	return copied, err
}

// dataColumns are data's columns in order.
func dataColumns(ctx context.Context, tx pgx.Tx, schema string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT a.attname::text FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, ident(schema, "data"))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// copyCompacted streams data's rows from reader into data_json_upgrade (COPY),
// each _sdc_raw as its compact JSON text.
func copyCompacted(ctx context.Context, reader *pgx.Conn, tx pgx.Tx, schema string, cols []string, progress func(n int64)) (int64, error) {
	sel := make([]string, len(cols))
	rawAt := slices.Index(cols, "_sdc_raw")
	for i, c := range cols {
		sel[i] = ident(c)
		if i == rawAt {
			sel[i] = ident(c) + "::text"
		}
	}
	rows, err := reader.Query(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+ident(schema, "data"))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var buf bytes.Buffer
	var pending int64
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		if raw, ok := vals[rawAt].(string); ok {
			buf.Reset()
			if err := json.Compact(&buf, []byte(raw)); err != nil {
				return nil, fmt.Errorf("compact _sdc_raw: %w", err)
			}
			vals[rawAt] = buf.String()
		}
		if pending++; pending == 10000 && progress != nil {
			progress(pending)
			pending = 0
		}
		return vals, nil
	})
	n, err := tx.CopyFrom(ctx, pgx.Identifier{schema, "data_json_upgrade"}, cols, src)
	if err == nil && progress != nil && pending > 0 {
		progress(pending)
	}
	return n, err
}

// swapData replaces data by its json copy: the views that read data (the
// analyst views and RudderStack's warehouse views, for uuid_ts) are dropped and
// made again over the new table, its primary key and erasure index built, the
// old table dropped, and every replica told to reload the schema's shape. A view
// of someone else's over data makes the drop fail, and the whole upgrade with it
// (Postgres names the view): nothing is dropped that cioloader cannot make again.
func swapData(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "warehouse:"+schema); err != nil {
		return err
	}
	rels, _, err := loadWarehouse(ctx, tx, schema)
	if err != nil {
		return err
	}
	stmts := []string{`DROP VIEW IF EXISTS ` + ident(schema, "events") + ` CASCADE`} // the channel views are over it
	names := append(slicesSorted(map[string]string{tracksTable: ""}), relationNames(rels)...)
	for _, name := range names {
		stmts = append(stmts, `DROP VIEW IF EXISTS `+ident(schema, name))
	}
	stmts = append(stmts,
		`DROP TABLE `+ident(schema, "data"),
		`ALTER TABLE `+ident(schema, "data_json_upgrade")+` RENAME TO data`,
		`ALTER TABLE `+ident(schema, "data")+` ADD CONSTRAINT data_pkey PRIMARY KEY (event_id)`)
	stmts = append(stmts, viewDDL(schema)...)
	if err := execAll(ctx, tx, stmts); err != nil {
		return err
	}
	if err := remakeWarehouseViews(ctx, tx, schema); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, columnsChannel, schema)
	return err
}

// remakeWarehouseViews makes every warehouse view of schema again from the
// record, tracks too when none is recorded, in tx (which holds the schema's DDL lock).
func remakeWarehouseViews(ctx context.Context, tx pgx.Tx, schema string) error {
	rels, events, err := loadWarehouse(ctx, tx, schema)
	if err != nil {
		return err
	}
	if rels[tracksTable] == nil {
		if err := replaceView(ctx, tx, schema, &whRelation{name: tracksTable}, nil); err != nil {
			return fmt.Errorf("view %s: %w", tracksTable, err)
		}
	}
	for _, name := range relationNames(rels) {
		if err := replaceView(ctx, tx, schema, rels[name], events); err != nil {
			return fmt.Errorf("view %s: %w", name, err)
		}
	}
	return nil
}

func relationNames(rels map[string]*whRelation) []string {
	names := make([]string, 0, len(rels))
	for n := range rels {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// rewriteFacts brings event_facts to this release's columns: it drops the
// columns it no longer stores (wide), keeps email for bounces only and
// event_name where it is not object_type_metric, computes
// the erasure hashes of the rows written before them (by the SQL the writer's
// Go mirrors), drops data_erasure_idx in the same transaction, and rewrites the
// table so the freed bytes go back, building its secondary indexes once after.
func rewriteFacts(ctx context.Context, pool *pgxpool.Pool, schema string, wide []string) error {
	f := ident(schema, "event_facts")
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if len(wide) > 0 { // the views read these columns from _sdc_raw since this release's start made them again
			drops := make([]string, len(wide))
			for i, c := range wide {
				drops[i] = "DROP COLUMN " + ident(c)
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE `+f+` `+strings.Join(drops, ", ")); err != nil {
				return err
			}
		}
		// The update trigger compares names as eventName gives them (so the
		// UPDATE below fires it for no row): made so at start, made sure here.
		if _, err := tx.Exec(ctx, factsUpgrade(schema)); err != nil {
			return err
		}
		// The UPDATE writes a new version of nearly every row, and VACUUM FULL
		// then rebuilds every index anyway: the secondary ones are dropped now
		// and built once after it (a start builds any that an interrupted
		// upgrade left missing).
		for _, ix := range factsLateIndexes() {
			if _, err := tx.Exec(ctx, `DROP INDEX IF EXISTS `+ident(schema, ix.name)); err != nil {
				return err
			}
		}
		// email: bounce_facts reads it; the events view reads every event's from
		// _sdc_raw. event_name: NULL where eventName derives it.
		if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %[1]s AS f
			SET email = CASE WHEN f.metric = 'bounced' THEN f.email END,
			    event_name = NULLIF(f.event_name, %[2]s),
			    erasure_hashes = coalesce(f.erasure_hashes, %[3]s)
			FROM %[4]s AS d%[5]s
			WHERE d.event_id = f.event_id AND (f.erasure_hashes IS NULL OR (f.email IS NOT NULL AND f.metric IS DISTINCT FROM 'bounced')
				OR f.event_name = %[2]s)`,
			f, derivedName("f"), factSQL("erasure_hashes"), ident(schema, "data"), rawJSONB)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DROP INDEX IF EXISTS `+ident(schema, oldErasureIndex))
		return err
	})
	if err != nil {
		return err
	}
	if _, err = pool.Exec(ctx, `VACUUM (FULL, ANALYZE) `+f); err != nil {
		return err
	}
	for _, ix := range factsLateIndexes() {
		if _, err := pool.Exec(ctx, ix.ddl(schema)); err != nil {
			return fmt.Errorf("build %s: %w", ix.name, err)
		}
	}
	return nil
}

// factsLateIndexes are event_facts' secondary indexes (all of them are late
// indexes: see lateIndexes).
func factsLateIndexes() []lateIndex {
	var out []lateIndex
	for _, ix := range lateIndexes {
		if ix.table == "event_facts" {
			out = append(out, ix)
		}
	}
	return out
}
