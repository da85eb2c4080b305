package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lateIndex is an index that a release added to a table integrations already
// had. A new table gets it in its integration's DDL transaction (ddl); an
// existing one gets it from ensure, built CONCURRENTLY before that
// transaction so ingest goes on while it builds.
type lateIndex struct {
	name     string // in the integration's schema
	table    string
	def      string // what follows ON <table>
	replaces string // an older index this one makes redundant, dropped once it is built
}

// lateIndexes are every lateIndex, in the order they are built.
var lateIndexes = []lateIndex{
	erasureLateIndex,
	// A customer's events, for customer_facts' recomputation after a delete
	// (summaries.go) and for analysts' per-customer look-ups. The key alone:
	// btree deduplication stores a customer's many entries once (about 8 bytes
	// an event), where the covering index it replaces took 120.
	{name: "event_facts_by_customer", table: "event_facts", def: "(customer_id)",
		replaces: "event_facts_customer_last"},
	// The README's bounce and unsubscribe queries read a few percent of the
	// events: partial indexes hold those rows alone, instead of a scan of every
	// event. Their key is a timestamp only: a text column (failure_message,
	// email) could make an index entry past btree's 2,704-byte limit, which
	// would refuse the event on every retry, even raw-only (event_facts is
	// computed from _sdc_raw).
	{name: "event_facts_bounced", table: "event_facts", def: "(occurred_at) WHERE metric = 'bounced'"},
	{name: "event_facts_unsubscribed", table: "event_facts", def: "(occurred_at DESC) WHERE metric = 'unsubscribed'"},
	// The warehouse views' original_timestamp, for queries over a window of
	// time (the README's RudderStack example): a block range index, a few
	// hundred bytes per million events, which works because events are mostly
	// written in the order they happen. autosummarize has autovacuum summarise
	// each range as it fills; a range not yet summarised is always read.
	{name: "rudder_events_time", table: rudderRows,
		def: "USING brin ((coalesce(original_timestamp, received_at))) WITH (autosummarize = on)"},
}

// ddl creates the index on a table made in the same transaction; it is a
// no-op, taking no lock, when the index exists.
func (ix lateIndex) ddl(schema string) string {
	return fmt.Sprintf(`DO $index$
BEGIN
	IF to_regclass(%[1]s) IS NULL THEN
		CREATE INDEX %[2]s ON %[3]s %[4]s;
	END IF;
END $index$`, quoteLiteral(ident(schema, ix.name)), ident(ix.name), ident(schema, ix.table), ix.def)
}

// ensure builds the index on an existing table with CREATE INDEX
// CONCURRENTLY (a first start after the upgrade on 1 M events takes some
// seconds), then drops the index it replaces the same way. An invalid index
// left by an interrupted build is dropped and rebuilt. A session advisory lock
// keeps two replicas starting at once from building it twice. A table that
// does not exist yet is left to the DDL.
func (ix lateIndex) ensure(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, schema string) error {
	if done, err := ix.done(ctx, pool, schema); err != nil || done {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// The lock is polled, not waited for: a session waiting in pg_advisory_lock
	// holds a snapshot, which the other session's CREATE INDEX CONCURRENTLY
	// must wait out, while that session holds the lock: a deadlock when two
	// replicas start at once.
	lock := "index:" + schema + "." + ix.name
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, lock).Scan(&got); err != nil {
			return err
		}
		if got {
			break
		}
		select { // another replica is building it
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if done, err := ix.done(ctx, pool, schema); err != nil || done {
			return err
		}
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, lock) //nolint:errcheck // the session ends with the connection anyway
	if done, err := ix.done(ctx, pool, schema); err != nil || done {
		return err
	}
	var exists, valid bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL,
		coalesce((SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)), false)`,
		ident(schema, ix.name)).Scan(&exists, &valid); err != nil {
		return err
	}
	if exists && !valid { // an interrupted build
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+ident(schema, ix.name)); err != nil {
			return err
		}
	}
	if !valid {
		log.Info("building an index", "schema", schema, "index", ix.name)
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s %s`,
			ident(ix.name), ident(schema, ix.table), ix.def)); err != nil {
			return err
		}
	}
	if ix.replaces != "" {
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+ident(schema, ix.replaces)); err != nil {
			return err
		}
	}
	return nil
}

// done reports whether there is nothing to build: the index is valid and the
// one it replaces is gone, or the table does not exist.
func (ix lateIndex) done(ctx context.Context, pool *pgxpool.Pool, schema string) (bool, error) {
	var tableMissing, valid, oldExists bool
	err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NULL,
		coalesce((SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($2)), false),
		$3 <> '' AND to_regclass($3) IS NOT NULL`,
		ident(schema, ix.table), ident(schema, ix.name), oldName(schema, ix.replaces)).Scan(&tableMissing, &valid, &oldExists)
	return tableMissing || (valid && !oldExists), err
}

func oldName(schema, name string) string {
	if name == "" {
		return ""
	}
	return ident(schema, name)
}
