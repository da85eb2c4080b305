package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// compactEvery is how often message_facts' delta rows are folded: a bulk load of
// 15 k events/s leaves some ten thousand rows between two passes, which the
// message_funnel view still sums in milliseconds.
const compactEvery = 5 * time.Second

// compactor folds message_facts' delta rows into one row per message.
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
	tick := time.NewTicker(compactEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := c.CompactSummaries(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("summaries: could not compact message_facts; trying again shortly", "err", err)
		}
	}
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
			_, err := tx.Exec(ctx, compactMessages(in.Schema))
			return err
		})
		if err != nil {
			return fmt.Errorf("summaries of %s: %w", in.Schema, translate(err))
		}
	}
	return nil
}
