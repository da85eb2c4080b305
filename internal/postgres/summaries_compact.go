package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// compactEvery is how often message_facts' delta rows are folded: a bulk load of
// 15 k events/s leaves some ten thousand rows between two passes, which the
// message_funnel view still sums in milliseconds.
const compactEvery = 5 * time.Second

// compactor folds message_facts' delta rows into one row per message and keeps
// rudder_events_time's block ranges summarised.
type compactor struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// compactMessages replaces the rows of every message that has more than one by
// their sum, in one statement: a reader sees the sums before or after it, never
// half. A row a concurrent transaction has not committed is not seen, so it is
// neither deleted nor summed, and stays. A message whose rows sum to nothing
// (its deliveries all deleted) leaves no row.
func compactMessages(schema string) string {
	mf := ident(schema, "message_facts")
	return fmt.Sprintf(`WITH dup AS (SELECT object_type, kind, message_id FROM %[1]s
		GROUP BY object_type, kind, message_id HAVING count(*) > 1),
	gone AS (DELETE FROM %[1]s AS t USING dup WHERE t.object_type = dup.object_type
		AND t.kind IS NOT DISTINCT FROM dup.kind AND t.message_id IS NOT DISTINCT FROM dup.message_id RETURNING t.*)
	`, mf) + messageInsert(schema, "SELECT * FROM gone")
}

// run compacts every integration's message_facts every compactEvery until ctx
// ends. Two replicas do not compact one schema at once (a transaction advisory
// lock, tried); if they did, the sums would still be right.
func (c *compactor) run(ctx context.Context) {
	everyInterval(ctx, compactEvery, c.log, "summaries: could not compact message_facts; trying again shortly", c.CompactSummaries)
}

// CompactSummaries runs one compaction pass over every integration.
func (c *compactor) CompactSummaries(ctx context.Context) error {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("summaries: %w", translate(err))
	}
	defer conn.Release()
	list, err := listIntegrationsOn(ctx, conn)
	if err != nil {
		return err
	}
	for _, in := range list {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var got bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`, "summaries:"+in.Schema).Scan(&got); err != nil || !got {
				return err
			}
			if _, err := tx.Exec(ctx, compactMessages(in.Schema)); err != nil {
				return err
			}
			if err := summarizeTimeRanges(ctx, tx, in.Schema); err != nil {
				return err
			}
			return analyzeTimeWindow(ctx, tx, in.Schema)
		})
		if err != nil {
			return fmt.Errorf("summaries of %s: %w", in.Schema, translate(err))
		}
	}
	return nil
}

// summarizeTimeRanges summarises the block ranges of rudder_events_time that
// were filled since the last pass. autosummarize leaves them to autovacuum,
// which after a bulk load is busy with the other tables for minutes, and a
// range not summarised is read by every query of a time window: the README's
// RudderStack example took 1 s at 10 M right after the load. The pages are the
// ones just written, still in memory. The call waits for no autovacuum of the
// table (which holds the same lock): it is skipped and tried at the next pass.
func summarizeTimeRanges(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, `SAVEPOINT brin; SET LOCAL lock_timeout = '50ms'`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT brin_summarize_new_values(to_regclass($1))`, ident(schema, "rudder_events_time"))
	if err != nil {
		if _, rbErr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT brin`); rbErr != nil {
			return rbErr
		}
		if isLockTimeout(err) {
			return nil
		}
		return err
	}
	_, err = tx.Exec(ctx, `RELEASE SAVEPOINT brin; SET LOCAL lock_timeout = 0`)
	return err
}

// analyzeTimeWindow analyses rudder_rows once 10 % of it (and at least 5,000
// rows) is new since its last ANALYZE. Right after a bulk load autovacuum had not analysed it for minutes
// (one visit per database a minute, its workers busy with the facts tables), and
// with statistics from before the newest events the planner took a parallel
// sequential scan of every page for the README's 7-day RudderStack query (356 ms
// at 1 M on its first run) where the block range index reads 2 % of them (19 ms
// once analysed). Like the summarising, it waits for no autovacuum of the table.
func analyzeTimeWindow(ctx context.Context, tx pgx.Tx, schema string) error {
	var due bool
	if err := tx.QueryRow(ctx, `SELECT coalesce(s.n_mod_since_analyze > greatest(5000, 0.10 * c.reltuples), false)
		FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass($1)`,
		ident(schema, rudderRows)).Scan(&due); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	}
	if !due {
		return nil
	}
	// A sample of 7,500 rows (the default takes 30,000): what the window's
	// estimate needs, at a quarter of the cost; autovacuum's own ANALYZE, which
	// follows, takes the full sample.
	if _, err := tx.Exec(ctx, `SAVEPOINT time_analyze; SET LOCAL lock_timeout = '50ms'; SET LOCAL default_statistics_target = 25`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `ANALYZE `+ident(schema, rudderRows))
	if err != nil {
		if _, rbErr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT time_analyze`); rbErr != nil {
			return rbErr
		}
		if isLockTimeout(err) {
			return nil
		}
		return err
	}
	_, err = tx.Exec(ctx, `RELEASE SAVEPOINT time_analyze; SET LOCAL lock_timeout = 0; SET LOCAL default_statistics_target = DEFAULT`)
	return err
}

// isLockTimeout: the statement gave up waiting for a lock (lock_timeout).
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}
