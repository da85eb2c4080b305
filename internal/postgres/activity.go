package postgres

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
)

// Activity retention: rows older than activityRetention are deleted about
// once every activityPruneEvery (the API shows 30 days at most), except each
// integration's newest hour, which keeps its last-received time.
const (
	activityRetention  = 35 * 24 * time.Hour
	activityPruneEvery = time.Hour
)

// activityKey is one counter of cioloader.activity.
type activityKey struct {
	integration int64
	hour        int64 // Unix seconds of the UTC hour the events were received in
	key         domain.ActivityKey
}

// activityCount is what is pending for one key.
type activityCount struct {
	events int64
	lastAt time.Time
}

// activity counts the events of committed deliveries in memory, by
// integration, receipt hour and (object_type, metric), and adds the counts to
// cioloader.activity about once a second (as refusals does), so the chart and
// the list never scan the event tables and ingest never waits on them.
//
// The trade-off: the counts of the last second or so are lost if the process
// crashes (a clean stop flushes them). They count deliveries received, so a
// Customer.io retry counts again, and replay and erasure do not change them.
type activity struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time

	mu        sync.Mutex
	pending   map[activityKey]activityCount
	lastPrune time.Time // only run's goroutine reads and writes it
}

func newActivity(pool *pgxpool.Pool, log *slog.Logger, now func() time.Time) *activity {
	return &activity{pool: pool, log: log, now: now, pending: map[activityKey]activityCount{}}
}

// RecordActivity counts a committed delivery's events, received at at
// (ingest.Usage).
func (s *activity) RecordActivity(integrationID int64, at time.Time, counts map[domain.ActivityKey]int64) {
	hour := at.UTC().Truncate(time.Hour).Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range counts {
		s.add(activityKey{integrationID, hour, k}, activityCount{n, at})
	}
}

// add merges c into the pending counts; s.mu is held.
func (s *activity) add(k activityKey, c activityCount) {
	p := s.pending[k]
	p.events += c.events
	if c.lastAt.After(p.lastAt) {
		p.lastAt = c.lastAt
	}
	s.pending[k] = p
}

func (s *activity) take() map[activityKey]activityCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	s.pending = map[activityKey]activityCount{}
	return p
}

// run flushes every second until ctx ends, then once more, and prunes old
// rows about once an hour.
func (s *activity) run(ctx context.Context) {
	flushEverySecond(ctx, func(ctx context.Context) {
		s.flush(ctx)
		if now := s.now(); now.Sub(s.lastPrune) >= activityPruneEvery && ctx.Err() == nil {
			s.lastPrune = now
			if err := s.prune(ctx, now); err != nil {
				s.log.Warn("could not prune old activity counts; trying again in an hour", "err", err)
			}
		}
	})
}

// flush adds the pending counts to the table in one statement. Counts that
// could not be written are kept for the next flush; the join drops an
// integration that no longer exists.
func (s *activity) flush(ctx context.Context) {
	p := s.take()
	if len(p) == 0 {
		return
	}
	if err := s.write(ctx, p); err != nil {
		s.log.Warn("could not record activity counts; kept for the next try", "err", err)
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, c := range p {
			s.add(k, c)
		}
	}
}

// write upserts p's rows in key order: replicas flushing the same rows lock
// them in the same order, so they queue instead of deadlocking.
func (s *activity) write(ctx context.Context, p map[activityKey]activityCount) error {
	keys := make([]activityKey, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareActivityKeys)
	var ids, events []int64
	var hours, ats []time.Time
	var types, metrics []string
	for _, k := range keys {
		ids, hours = append(ids, k.integration), append(hours, time.Unix(k.hour, 0).UTC())
		types, metrics = append(types, k.key.ObjectType), append(metrics, k.key.Metric)
		events, ats = append(events, p[k].events), append(ats, p[k].lastAt)
	}
	// ORDER BY ord: the rows reach ON CONFLICT, and lock, in the sorted order
	// whatever join the planner picks.
	_, err := s.pool.Exec(ctx, `INSERT INTO cioloader.activity AS a (integration_id, hour, object_type, metric, events, last_at)
		SELECT x.id, x.hour, x.ot, x.metric, x.n, x.at
		FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
			WITH ORDINALITY AS x(id, hour, ot, metric, n, at, ord)
		JOIN cioloader.integrations i ON i.id = x.id
		ORDER BY x.ord
		ON CONFLICT (integration_id, hour, object_type, metric) DO UPDATE
		SET events = a.events + EXCLUDED.events, last_at = greatest(a.last_at, EXCLUDED.last_at)`,
		ids, hours, types, metrics, events, ats)
	if err != nil {
		return fmt.Errorf("record activity: %w", translate(err))
	}
	return nil
}

// compareActivityKeys orders keys as the primary key does (text in byte
// order, as COLLATE "C").
func compareActivityKeys(a, b activityKey) int {
	return cmp.Or(cmp.Compare(a.integration, b.integration), cmp.Compare(a.hour, b.hour),
		cmp.Compare(a.key.ObjectType, b.key.ObjectType), cmp.Compare(a.key.Metric, b.key.Metric))
}

// prune deletes the rows of hours older than activityRetention before now,
// except each integration's newest hour.
func (s *activity) prune(ctx context.Context, now time.Time) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM cioloader.activity a
		WHERE a.hour < $1 AND EXISTS (
			SELECT 1 FROM cioloader.activity b WHERE b.integration_id = a.integration_id AND b.hour > a.hour)`,
		now.Add(-activityRetention))
	if err != nil {
		return fmt.Errorf("prune activity: %w", translate(err))
	}
	return nil
}

// ListActivity returns an integration's counts of the hours from since on,
// oldest first, as every replica flushed them (the last second's may be
// missing).
func (s *activity) ListActivity(ctx context.Context, integrationID int64, since time.Time) ([]domain.ActivityCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT hour, object_type, metric, events, last_at FROM cioloader.activity
		WHERE integration_id = $1 AND hour >= $2 ORDER BY hour`, integrationID, since)
	if err != nil {
		return nil, fmt.Errorf("list activity: %w", translate(err))
	}
	var out []domain.ActivityCount
	var c domain.ActivityCount
	_, err = pgx.ForEachRow(rows, []any{&c.Hour, &c.Key.ObjectType, &c.Key.Metric, &c.Events, &c.LastAt}, func() error {
		c.Hour, c.LastAt = c.Hour.UTC(), c.LastAt.UTC()
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list activity: %w", translate(err))
	}
	return out, nil
}

// ActivitySummaries returns every integration's events of the hours from
// since on and its last-received time (nil when it never received any), by
// integration id: two index probes per integration.
func (s *activity) ActivitySummaries(ctx context.Context, since time.Time) (map[int64]domain.ActivitySummary, error) {
	return s.summaries(ctx, since, 0)
}

// ActivitySummary is ActivitySummaries for one integration.
func (s *activity) ActivitySummary(ctx context.Context, integrationID int64, since time.Time) (domain.ActivitySummary, error) {
	m, err := s.summaries(ctx, since, integrationID)
	return m[integrationID], err
}

// summaries reads the summaries of one integration, or of all when id is 0.
// The newest hour's rows hold the latest last_at: events are counted in the
// hour they were received in.
func (s *activity) summaries(ctx context.Context, since time.Time, id int64) (map[int64]domain.ActivitySummary, error) {
	rows, err := s.pool.Query(ctx, `SELECT i.id, coalesce(n.events, 0), l.last_at
		FROM cioloader.integrations i
		LEFT JOIN LATERAL (SELECT sum(a.events)::bigint AS events FROM cioloader.activity a
			WHERE a.integration_id = i.id AND a.hour >= $1) n ON true
		LEFT JOIN LATERAL (SELECT max(a.last_at) AS last_at FROM cioloader.activity a
			WHERE a.integration_id = i.id
			AND a.hour = (SELECT max(b.hour) FROM cioloader.activity b WHERE b.integration_id = i.id)) l ON true
		WHERE $2::bigint = 0 OR i.id = $2`, since, id)
	if err != nil {
		return nil, fmt.Errorf("activity summaries: %w", translate(err))
	}
	out := map[int64]domain.ActivitySummary{}
	var iid int64
	var sum domain.ActivitySummary
	_, err = pgx.ForEachRow(rows, []any{&iid, &sum.Events24h, &sum.LastReceivedAt}, func() error {
		out[iid] = sum
		sum = domain.ActivitySummary{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("activity summaries: %w", translate(err))
	}
	return out, nil
}
