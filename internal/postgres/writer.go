package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/stitch"
	"github.com/cioloader/cioloader/internal/webhook"
)

// writer commits group-commit batches: it asks the schema cache for the
// tables and columns a batch needs, then sends every statement of the batch
// in one pipeline, which Postgres runs as one transaction.
type writer struct {
	texts   statementTexts
	pool    *pgxpool.Pool
	schemas *schemaCache
	wh      *warehouseViews
	m       *metrics.Metrics
	now     func() time.Time
}

func (s *writer) writeBatch(ctx context.Context, reqs []*ingest.Request) error {
	groups := groupBySchema(reqs)
	plans := make([]*schemaWrite, 0, len(groups))
	for _, g := range groups {
		p, err := s.plan(ctx, g)
		if err != nil {
			return err
		}
		plans = append(plans, p)
	}
	if !slices.ContainsFunc(plans, func(p *schemaWrite) bool { return len(p.g.events) > 0 || len(p.g.rejected) > 0 }) {
		return nil // nothing to write (e.g. empty arrays)
	}
	now := s.now().UTC()
	b := &pgx.Batch{}
	queueOpening(b, plans)
	for _, p := range plans {
		p.queue(b, now)
		p.queueDrops(b, now)
	}
	// One pipeline ending in one Sync: Postgres runs it as a single implicit
	// transaction, committed at the Sync, so a whole group commit costs one
	// round trip (plus a describe round trip the first time a statement is seen).
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write batch: %w", translate(err))
	}
	for _, p := range plans {
		p.count(s.m)
		p.countTombstoned(s.m)
		p.countTwins(s.m)
		s.wh.ensure(ctx, p.g.schema, p.g.events) // after the commit: it never holds the data up
	}
	return nil
}

// writerPlanSettings opens every write transaction. The writer's statements
// are prepared once per connection and run with generic plans (see Open), and
// a generic plan is made at the first execution, from the statistics of that
// moment: for a new integration, empty tables, where a hash join over a
// sequential scan looks cheapest. Autovacuum analyzes a young table only after
// a minute, and until then such a plan scans a table growing by thousands of
// rows a second on every batch (a 300 k-event load took 20-24 s instead of
// 16 s, with commits past their deadline). Every statement of the writer
// looks rows up by key, so the plans are made with the planner told so, for
// this transaction only.
const writerPlanSettings = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
	set_config('enable_mergejoin', 'off', true)`

// schemaGroup is the part of a batch bound for one schema.
type schemaGroup struct {
	schema   string
	events   []*ingest.Event // deduplicated (one per event_id, the highest sequence), in event_id order
	rejected []rejectedRow
	received map[*ingest.Event]time.Time
	accepted int
	replaced int
}

type rejectedRow struct {
	table, reason, record string
}

func groupBySchema(reqs []*ingest.Request) []*schemaGroup {
	var order []*schemaGroup
	by := map[string]*schemaGroup{}
	byID := map[string]map[string]*ingest.Event{}
	for _, r := range reqs {
		g := by[r.Schema]
		if g == nil {
			g = &schemaGroup{schema: r.Schema, received: map[*ingest.Event]time.Time{}}
			by[r.Schema], byID[r.Schema] = g, map[string]*ingest.Event{}
			order = append(order, g)
		}
		g.accepted += len(r.Events)
		g.replaced += r.Replaced
		for _, rj := range r.Rejected {
			g.rejected = append(g.rejected, rejectionRow(rj))
		}
		ids := byID[r.Schema]
		for i := range r.Events {
			e := &r.Events[i]
			// Postgres cannot update one row twice in a statement, and the newest
			// copy must win: keep only the highest sequence per event_id.
			if old, ok := ids[e.ID]; !ok || old.Seq < e.Seq {
				ids[e.ID] = e
				g.received[e] = r.ReceivedAt
			}
		}
	}
	// Lock order: every statement takes its row locks schema by schema and, in
	// each, event_id by event_id (byte order, which the SQL keeps with COLLATE
	// "C"), so two batches holding the same ids in other orders queue behind
	// each other instead of deadlocking.
	for _, g := range order {
		g.events = slices.SortedFunc(maps.Values(byID[g.schema]), func(a, b *ingest.Event) int {
			return strings.Compare(a.ID, b.ID)
		})
	}
	slices.SortFunc(order, func(a, b *schemaGroup) int { return strings.Compare(a.schema, b.schema) })
	return order
}

func rejectionRow(r webhook.Rejection) rejectedRow {
	return rejectedRow{table: "data", reason: r.Reason, record: r.Record}
}

// plan makes sure every table and column the group needs exists, then
// resolves each field to its physical column.
func (s *writer) plan(ctx context.Context, g *schemaGroup) (*schemaWrite, error) {
	tables, st, err := s.schemas.snapshot(ctx, g.schema)
	if err != nil {
		return nil, err
	}
	flats := make([]*stitch.Result, len(g.events))
	for i, e := range g.events {
		flats[i] = &e.Flat
	}
	if wants := missing(tables, flats); len(wants) > 0 {
		if err := s.schemas.evolve(ctx, g.schema, st, wants); err != nil {
			return nil, err
		}
		if tables, _, err = s.schemas.snapshot(ctx, g.schema); err != nil {
			return nil, err
		}
	}
	return newSchemaWrite(&s.texts, g, tables), nil
}
