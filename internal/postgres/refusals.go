package postgres

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
)

// refusalKey is one counter of cioloader.refusals.
type refusalKey struct {
	integration int64
	reason      domain.RefusalReason
}

// refusals counts deliveries refused as a whole in memory and adds the counts
// to cioloader.refusals about once a second (as tokens does for last_used_at),
// so the hot path never waits on the database, which may be the very reason
// for the refusal. It also reads them back, with the _sdc_rejected rows.
type refusals struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu      sync.Mutex
	pending map[refusalKey]domain.Refusals
}

func newRefusals(pool *pgxpool.Pool, log *slog.Logger) *refusals {
	return &refusals{pool: pool, log: log, pending: map[refusalKey]domain.Refusals{}}
}

// RecordRefusal counts one refused delivery (ingest.Usage).
func (s *refusals) RecordRefusal(integrationID int64, reason domain.RefusalReason, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(refusalKey{integrationID, reason}, domain.Refusals{Count: 1, LastAt: at})
}

// add merges r into the pending counts; s.mu is held.
func (s *refusals) add(k refusalKey, r domain.Refusals) {
	p := s.pending[k]
	p.Count += r.Count
	if r.LastAt.After(p.LastAt) {
		p.LastAt = r.LastAt
	}
	s.pending[k] = p
}

func (s *refusals) take() map[refusalKey]domain.Refusals {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	s.pending = map[refusalKey]domain.Refusals{}
	return p
}

// run flushes every second until ctx ends, then once more.
func (s *refusals) run(ctx context.Context) { flushEverySecond(ctx, s.flush) }

// flush adds the pending counts to the table. Counts that could not be
// written are kept for the next flush (the database is often why deliveries
// were refused); the join drops an integration that no longer exists.
func (s *refusals) flush(ctx context.Context) {
	p := s.take()
	if len(p) == 0 {
		return
	}
	var ids, counts []int64
	var reasons []string
	var ats []time.Time
	// Rows are locked in key order, as every replica flushes them, so two
	// replicas flushing the same counters queue instead of deadlocking.
	keys := slices.SortedFunc(maps.Keys(p), func(a, b refusalKey) int {
		return cmp.Or(cmp.Compare(a.integration, b.integration), strings.Compare(string(a.reason), string(b.reason)))
	})
	for _, k := range keys {
		r := p[k]
		ids, reasons = append(ids, k.integration), append(reasons, string(k.reason))
		counts, ats = append(counts, r.Count), append(ats, r.LastAt)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO cioloader.refusals AS r (integration_id, reason, count, last_at)
		SELECT x.id, x.reason, x.n, x.at
		FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::timestamptz[]) WITH ORDINALITY AS x(id, reason, n, at, ord)
		JOIN cioloader.integrations i ON i.id = x.id
		ORDER BY x.ord
		ON CONFLICT (integration_id, reason) DO UPDATE
		SET count = r.count + EXCLUDED.count, last_at = greatest(r.last_at, EXCLUDED.last_at)`,
		ids, reasons, counts, ats)
	if err == nil {
		return
	}
	s.log.Warn("could not record refused deliveries; kept for the next try", "err", translate(err))
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range p {
		s.add(k, r)
	}
}

// ListRefusals returns an integration's refused deliveries by reason, as
// every replica flushed them (counts of the last second may be missing).
func (s *refusals) ListRefusals(ctx context.Context, integrationID int64) (map[domain.RefusalReason]domain.Refusals, error) {
	rows, err := s.pool.Query(ctx, `SELECT reason, count, last_at FROM cioloader.refusals WHERE integration_id = $1`, integrationID)
	if err != nil {
		return nil, fmt.Errorf("list refusals: %w", translate(err))
	}
	out := map[domain.RefusalReason]domain.Refusals{}
	var reason string
	var r domain.Refusals
	_, err = pgx.ForEachRow(rows, []any{&reason, &r.Count, &r.LastAt}, func() error {
		out[domain.RefusalReason(reason)] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list refusals: %w", translate(err))
	}
	return out, nil
}

// ListRejections returns the newest limit rows of in's _sdc_rejected, each
// record cut to its first maxChars characters (the caller cuts it to bytes).
func (s *refusals) ListRejections(ctx context.Context, in domain.Integration, limit, maxChars int) ([]domain.Rejection, error) {
	rows, err := s.pool.Query(ctx, `SELECT _sdc_rejected_at, coalesce(table_name, ''), coalesce(reason, ''), left(coalesce(record, ''), $2)
		FROM `+ident(in.Schema, "_sdc_rejected")+` ORDER BY _sdc_rejected_at DESC NULLS LAST LIMIT $1`, limit, maxChars)
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", translate(err))
	}
	var out []domain.Rejection
	var r domain.Rejection
	var at *time.Time
	_, err = pgx.ForEachRow(rows, []any{&at, &r.TableName, &r.Reason, &r.Record}, func() error {
		r.RejectedAt = time.Time{}
		if at != nil {
			r.RejectedAt = *at
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", translate(err))
	}
	return out, nil
}
