package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
)

// Retention (SPEC 4): an integration with retention_days keeps only the events
// whose own time is inside the window. The pruner deletes the others in the
// background.
//
// Contract:
//   - An event's time is event_facts' coalesce(occurred_at, received_at): its
//     timestamp when that is a usable number of seconds, else its arrival
//     (_sdc_received_at). Every data row has its event_facts row, written in the
//     same transaction, so the facts find every event.
//   - One batch is one short transaction: the batch's data rows are locked in
//     event_id order (the order ingest locks them in), their age is checked
//     again under the lock (a re-delivery may have moved it), and the events
//     are deleted from every subtable, rudder_events, event_facts and data.
//     Their deliveries are then recomputed from the events left (delivery_facts
//     rows locked in key order first, as ingest merges them), and those with no
//     event left are deleted. _sdc_rejected rows go by their own
//     _sdc_rejected_at.
//   - Between batches the pruner rests as long as the batch took, so it holds
//     at most half of one connection and its locks never queue ingest for long.
//   - One replica prunes at a time: a pass runs only while its connection holds
//     the session advisory lock "retention" (tried, never waited for).
//   - The indexes that find old rows cost storage (about 50 bytes per event), so
//     they exist only while the integration has a window: built CONCURRENTLY
//     by the first pass after it is set, dropped by the first pass after it is
//     cleared.

// retentionIndexes are built on an integration's tables while it has a
// retention window.
var retentionIndexes = []lateIndex{
	// The pruner's look-up, oldest first, and the admin page's oldest event.
	{name: "event_facts_age", table: "event_facts", def: "((coalesce(occurred_at, received_at)))"},
	// The events left of a pruned event's delivery. Duplicates are stored once
	// (btree deduplication): a delivery has a few events.
	{name: "event_facts_delivery", table: "event_facts", def: "(delivery_id)"},
	{name: "_sdc_rejected_at_idx", table: "_sdc_rejected", def: "(_sdc_rejected_at)"},
}

// Pruning pace: events per transaction, how often a pass runs, and the lock
// that keeps replicas from pruning at once.
const (
	pruneBatch      = 1000
	pruneEvery      = time.Minute
	retentionLockID = `hashtextextended('retention', 0)`
)

// pruner deletes events older than their integration's retention window.
type pruner struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	m    *metrics.Metrics
	now  func() time.Time
}

// PruneReport is what one pass did.
type PruneReport struct {
	// Skipped: another replica holds the lock and prunes.
	Skipped bool
	// Events and Rejected are the events and _sdc_rejected rows deleted, by schema.
	Events, Rejected map[string]int64
}

// run prunes once every pruneEvery until ctx ends. The first pass waits one
// interval, so a start (or a test) is never slowed by it.
func (p *pruner) run(ctx context.Context) {
	everyInterval(ctx, pruneEvery, p.log, "retention: could not prune old events; trying again in a minute", func(ctx context.Context) error {
		_, err := p.PruneExpired(ctx, p.now())
		return err
	})
}

// PruneExpired runs one pass: for every integration with a retention window it
// deletes the events older than the window ending at now, in batches, until
// none is left; for every integration without one it drops the retention
// indexes. It returns at once (Skipped) when another replica is pruning.
func (p *pruner) PruneExpired(ctx context.Context, now time.Time) (PruneReport, error) {
	rep := PruneReport{Events: map[string]int64{}, Rejected: map[string]int64{}}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("retention: %w", translate(err))
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+retentionLockID+`)`).Scan(&got); err != nil {
		return rep, fmt.Errorf("retention: %w", translate(err))
	}
	if !got {
		rep.Skipped = true
		return rep, nil
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+retentionLockID+`)`); err != nil {
			_ = conn.Hijack().Close(context.Background()) // the session, and its lock, end with the connection
		}
	}()
	list, err := listIntegrationsOn(ctx, conn)
	if err != nil {
		return rep, err
	}
	for _, in := range list {
		if err := p.pruneIntegration(ctx, conn, in, now, &rep); err != nil {
			return rep, fmt.Errorf("retention of %s: %w", in.Schema, translate(err))
		}
	}
	return rep, nil
}

func listIntegrationsOn(ctx context.Context, conn *pgxpool.Conn) ([]domain.Integration, error) {
	rows, err := conn.Query(ctx, `SELECT `+integrationCols+` FROM cioloader.integrations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Integration, error) { return scanIntegration(r) })
	if err != nil {
		return nil, fmt.Errorf("retention: %w", translate(err))
	}
	return list, nil
}

// pruneIntegration prunes one integration, or drops its retention indexes
// when it has no window.
func (p *pruner) pruneIntegration(ctx context.Context, conn *pgxpool.Conn, in domain.Integration, now time.Time, rep *PruneReport) error {
	if in.RetentionDays == nil {
		return dropRetentionIndexes(ctx, conn, in.Schema)
	}
	for _, ix := range retentionIndexes {
		if err := ix.ensure(ctx, p.pool, p.log, in.Schema); err != nil {
			return err
		}
	}
	cutoff := domain.RetentionCutoff(now, *in.RetentionDays)
	start := time.Now()
	events, err := p.repeat(ctx, func() (int64, int64, error) {
		seen, n, err := pruneEventBatch(ctx, conn, in.Schema, cutoff)
		if p.m != nil && n > 0 {
			p.m.EventsPruned.WithLabelValues(in.Schema).Add(float64(n))
		}
		return seen, n, err
	})
	if err != nil {
		return err
	}
	rejected, err := p.repeat(ctx, func() (int64, int64, error) {
		n, err := pruneRejectedBatch(ctx, conn, in.Schema, cutoff)
		return n, n, err
	})
	if err != nil {
		return err
	}
	if events+rejected > 0 {
		rep.Events[in.Schema], rep.Rejected[in.Schema] = events, rejected
		p.log.Info("retention: pruned events older than the window", "schema", in.Schema,
			"retention_days", *in.RetentionDays, "before", cutoff.UTC().Format(time.RFC3339),
			"events", events, "rejected_rows", rejected, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// repeat runs batch until it looks at fewer than pruneBatch rows, resting as
// long as each batch took, and returns the rows deleted.
func (p *pruner) repeat(ctx context.Context, batch func() (seen, deleted int64, err error)) (int64, error) {
	var total int64
	for {
		start := time.Now()
		seen, n, err := batch()
		total += n
		if err != nil || seen < pruneBatch {
			return total, err
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(time.Since(start)):
		}
	}
}

// dropRetentionIndexes drops the indexes a cleared window no longer needs.
func dropRetentionIndexes(ctx context.Context, conn *pgxpool.Conn, schema string) error {
	for _, ix := range retentionIndexes {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ident(schema, ix.name)).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			continue
		}
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+ident(schema, ix.name)); err != nil {
			return err
		}
	}
	return nil
}

// OldestEvent is the time of integration in's oldest event (its timestamp,
// else its arrival), read from the retention index; nil when the integration
// has no window (no index: finding it would scan every event) or no event.
func (s *registry) OldestEvent(ctx context.Context, in domain.Integration) (*time.Time, error) {
	if in.RetentionDays == nil {
		return nil, nil
	}
	var at *time.Time
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var valid bool
		err := tx.QueryRow(ctx, `SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), false)`,
			ident(in.Schema, retentionIndexes[0].name)).Scan(&valid)
		if err != nil || !valid {
			return err
		}
		return tx.QueryRow(ctx, fmt.Sprintf(`SELECT min(coalesce(occurred_at, received_at)) FROM %s`, ident(in.Schema, "event_facts"))).Scan(&at)
	})
	if err != nil {
		return nil, fmt.Errorf("oldest event: %w", translate(err))
	}
	if at != nil {
		t := at.UTC()
		at = &t
	}
	return at, nil
}

// SetRetention sets (days != nil) or clears an integration's retention window
// and returns the integration.
func (s *registry) SetRetention(ctx context.Context, id int64, days *int) (domain.Integration, error) {
	in, err := scanIntegration(s.pool.QueryRow(ctx, `UPDATE cioloader.integrations SET retention_days = $2 WHERE id = $1 RETURNING `+integrationCols, id, days))
	if errors.Is(err, pgx.ErrNoRows) {
		return in, domain.Errorf(domain.ErrNotFound, "integration %d does not exist", id)
	}
	if err != nil {
		return in, fmt.Errorf("set retention: %w", translate(err))
	}
	return in, nil
}
