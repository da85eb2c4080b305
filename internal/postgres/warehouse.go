package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/warehouse"
)

// warehouseViews keeps each schema's RudderStack warehouse views (warehouse_views.go)
// up with the events written: a batch that brings an event name or a column (a
// relation, column, source path) not yet recorded records it and replaces the views
// it changes, in a short transaction of its own, in the background after the data
// transaction has committed. The
// known set is cached per schema; it only grows, and it only ever holds what is
// recorded, so a replica that missed another's change at worst records it again
// (ON CONFLICT DO NOTHING) and regenerates the same views: no NOTIFY is needed.
type warehouseViews struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	schemas map[string]*whSchema
	changes sync.WaitGroup // view changes running in the background
}

func newWarehouseViews(pool *pgxpool.Pool, log *slog.Logger, now func() time.Time) *warehouseViews {
	return &warehouseViews{pool: pool, log: log, now: now, schemas: map[string]*whSchema{}}
}

// whSchema is one schema's known layout. mu serialises this process's changes to
// it (the advisory lock serialises replicas).
type whSchema struct {
	mu       sync.Mutex
	loaded   bool
	events   map[string]string // event name → its table
	known    map[whKey]bool
	cols     map[string]map[string]bool // relation → its recorded column names
	namer    warehouse.Namer
	shapes   map[string]bool // event shapes (rudder.Event.AppendShape) whose columns are all known
	shapeBuf []byte
	failedAt time.Time // last failed change: retried after whRetryPause
	changing bool      // a change is running in the background
	queued   whChange  // what batches brought meanwhile: the next change
}

// whKey is one recorded (relation, column, source path).
type whKey struct {
	table, column, path string
}

// whWant is a column an event needs recorded.
type whWant struct {
	key  whKey
	col  warehouse.Column
	path whPath
}

// whRetryPause is how long a schema whose views could not be changed (an
// analyst's long query holds the view's lock) waits before the writer tries again,
// so a stuck change costs one short lock wait a second, not one per batch.
const whRetryPause = time.Second

func (w *warehouseViews) schema(name string) *whSchema {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.schemas[name]
	if s == nil {
		s = &whSchema{}
		w.schemas[name] = s
	}
	return s
}

// ensure records what evs bring that the schema's views lack, and replaces those
// views. The check is a look-up per event; a change runs in the background (one per
// schema at a time), so neither the batch nor the writer waits for it, and it never
// fails the batch: if it cannot be made now (a view's lock is held), it is logged
// and made by a later batch, by replay, or at the next event of the kind.
func (w *warehouseViews) ensure(ctx context.Context, schema string, evs []*ingest.Event) {
	s := w.schema(schema)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		if err := w.load(ctx, schema, s); err != nil {
			w.log.Warn("could not read the warehouse layout", "schema", schema, "err", translate(err))
			return
		}
	}
	if w.now().Sub(s.failedAt) < whRetryPause {
		return // what is new is seen again by a later batch
	}
	newEvents, wants, pending := s.missing(evs)
	if len(newEvents) == 0 && len(wants) == 0 {
		return
	}
	if s.changing {
		s.queued.add(newEvents, wants, pending)
		return
	}
	s.changing = true
	w.changes.Add(1)
	go w.run(schema, s, whChange{events: newEvents, wants: wants, pending: pending})
}

// whChange is what one change records.
type whChange struct {
	events  map[string]string
	wants   []whWant
	pending []string
}

func (c *whChange) add(events map[string]string, wants []whWant, pending []string) {
	if c.events == nil {
		c.events = map[string]string{}
	}
	for k, v := range events {
		c.events[k] = v
	}
	c.wants = append(c.wants, wants...)
	c.pending = append(c.pending, pending...)
}

// run makes c, then what batches queued meanwhile, until nothing is left (or a
// change fails: then the next batch after whRetryPause tries again).
func (w *warehouseViews) run(schema string, s *whSchema, c whChange) {
	defer w.changes.Done()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), whChangeTimeout)
		err := w.change(ctx, schema, s, c.events, c.wants, c.pending, false)
		cancel()
		s.mu.Lock()
		if err != nil {
			s.failedAt = w.now()
			w.log.Warn("could not update the RudderStack warehouse views; a later batch retries", "schema", schema, "err", translate(err))
		}
		if err != nil || (len(s.queued.events) == 0 && len(s.queued.wants) == 0) {
			s.changing, s.queued = false, whChange{}
			s.mu.Unlock()
			return
		}
		c, s.queued = s.queued, whChange{}
		s.mu.Unlock()
	}
}

// whChangeTimeout bounds one background change.
const whChangeTimeout = 30 * time.Second

// wait returns when no change runs in the background (Close, and tests).
func (w *warehouseViews) wait() { w.changes.Wait() }

// rebuild replaces every warehouse view of schema from what is recorded (replay
// calls it, so views dropped by hand come back).
func (w *warehouseViews) rebuild(ctx context.Context, schema string) error {
	w.wait()
	return w.change(ctx, schema, w.schema(schema), nil, nil, nil, true)
}

// missing lists the event names and columns of evs not yet known.
func (s *whSchema) missing(evs []*ingest.Event) (map[string]string, []whWant, []string) {
	newEvents := map[string]string{}
	var wants []whWant
	seen := map[whKey]bool{}
	newCols := map[string]map[string]bool{}
	add := func(table string, c warehouse.Column) {
		if table == "" {
			return
		}
		p := whPath{source: c.Source, keys: c.Path}
		k := whKey{table: table, column: c.Name, path: string(c.Source) + "\x00" + strings.Join(c.Path, "\x00")}
		if s.known[k] || seen[k] {
			return
		}
		if !s.cols[table][c.Name] && !newCols[table][c.Name] {
			if len(s.cols[table])+len(newCols[table]) >= whMaxColumns {
				return // past the bound the value stays in rudder_events only
			}
			if newCols[table] == nil {
				newCols[table] = map[string]bool{}
			}
			newCols[table][c.Name] = true
		}
		seen[k] = true
		wants = append(wants, whWant{key: k, col: c, path: p})
	}
	var pending []string
	for _, e := range evs {
		s.shapeBuf = e.Rudder.AppendShape(s.shapeBuf[:0], whKind)
		if s.shapes[string(s.shapeBuf)] {
			continue
		}
		before := len(wants) + len(newEvents)
		pending = append(pending, string(s.shapeBuf))
		name := e.Rudder.Name()
		table, known := s.events[name]
		if !known {
			if table = warehouse.TableName(name); whReservedRelations[table] {
				table = "" // tracks only
			}
			if table != "" {
				newEvents[name] = table
			}
		}
		props, context, userID, anonymousID := e.Rudder.WarehouseInput()
		ctxCols, propCols := s.namer.Columns(props, context)
		for _, src := range []struct {
			s warehouse.Source
			v any
		}{{warehouse.FromUserID, userID}, {warehouse.FromAnonymousID, anonymousID}} {
			if c, ok := warehouse.IDColumn(src.s, src.v); ok {
				ctxCols = append(ctxCols, c)
			}
		}
		for _, c := range ctxCols {
			add(tracksTable, c)
			add(table, c)
		}
		for _, c := range propCols {
			add(table, c)
		}
		if len(wants)+len(newEvents) == before {
			s.knowShape(pending[len(pending)-1]) // nothing new: known from now on
			pending = pending[:len(pending)-1]
		}
	}
	return newEvents, wants, pending
}

// whMaxColumns bounds a relation's recorded columns (Postgres allows a view 1,664;
// RudderStack refuses an event of more than 1,600). A column past it is not made:
// its value stays in rudder_events.
const whMaxColumns = 1500

// maxShapes bounds the shapes remembered per schema (they are a shortcut: past
// the bound they are forgotten and found again).
const maxShapes = 10000

func (s *whSchema) knowShape(shape string) {
	if s.shapes == nil || len(s.shapes) >= maxShapes {
		s.shapes = map[string]bool{}
	}
	s.shapes[shape] = true
}

// whKind is a value's kind in an event's shape: what decides its warehouse column
// (left out, or its type).
func whKind(v any) byte {
	if _, isArray := v.([]any); isArray {
		if warehouse.Blank(v) {
			return '0'
		}
		return 'a'
	}
	if warehouse.Blank(v) {
		return '0'
	}
	return warehouse.TypeOf(v)[0]
}

// whReservedRelations are the relations of an integration's schema besides the
// warehouse views: an event table of one of these names is not made (no event name
// of ours gives one; this keeps an odd one from replacing our own views).
var whReservedRelations = map[string]bool{
	"data": true, "_sdc_rejected": true, "rudder_events": true, rudderRows: true, "rudder_payloads": true, "events": true,
	"event_facts": true, "delivery_facts": true, "delivery_funnel": true, tracksTable: true,
	"customer_events": true, "email_events": true, "push_events": true, "sms_events": true,
	"whatsapp_events": true, "slack_events": true, "webhook_events": true, "in_app_events": true,
}

// change records newEvents and wants and replaces the views they change (all of
// them when all is set), then remembers the record and the shapes pending (whose
// columns it recorded). It runs without s.mu (the writer keeps checking meanwhile):
// one short transaction under the schema's advisory lock,
// reading the whole record afresh under the lock (another replica may have added
// to it). A short lock_timeout keeps an analyst's query on a view from holding the
// writer up.
func (w *warehouseViews) change(ctx context.Context, schema string, s *whSchema, newEvents map[string]string, wants []whWant, pending []string, all bool) error {
	var rels map[string]*whRelation
	var events map[string]string
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), pg_advisory_xact_lock(hashtextextended($2, 0))`,
			fmt.Sprintf("%dms", ddlLockTimeout.Milliseconds()), "warehouse:"+schema); err != nil {
			return err
		}
		if err := recordWarehouse(ctx, tx, schema, newEvents, wants); err != nil {
			return err
		}
		var err error
		if rels, events, err = loadWarehouse(ctx, tx, schema); err != nil {
			return err
		}
		for _, name := range changedRelations(rels, newEvents, wants, all) {
			if err := replaceView(ctx, tx, schema, rels[name], events); err != nil {
				return fmt.Errorf("view %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remember(rels, events)
	for _, shape := range pending {
		s.knowShape(shape)
	}
	return nil
}

// changedRelations are the relations whose views change: those of new columns,
// tracks and the tables of new event names (the event column maps every name).
func changedRelations(rels map[string]*whRelation, newEvents map[string]string, wants []whWant, all bool) []string {
	set := map[string]bool{}
	if all || len(newEvents) > 0 {
		set[tracksTable] = true
	}
	for _, t := range newEvents {
		set[t] = true
	}
	for _, wt := range wants {
		set[wt.key.table] = true
	}
	var names []string
	for name := range rels {
		if all || set[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// replaceView runs the view's CREATE OR REPLACE, or, when the recorded order no
// longer matches the view (a column moved: only a view made by hand or by an
// older layout), drops and creates it.
func replaceView(ctx context.Context, tx pgx.Tx, schema string, rel *whRelation, events map[string]string) error {
	sql := whViewSQL(schema, rel, events)
	_, err := tx.Exec(ctx, fmt.Sprintf(`DO $wh$
BEGIN
	EXECUTE %[1]s;
EXCEPTION WHEN invalid_table_definition OR datatype_mismatch THEN
	EXECUTE %[2]s;
	EXECUTE %[1]s;
END $wh$`, quoteLiteral(sql), quoteLiteral("DROP VIEW IF EXISTS "+ident(schema, rel.name))))
	return err
}

// remember makes the loaded record the known set.
func (s *whSchema) remember(rels map[string]*whRelation, events map[string]string) {
	s.events, s.known, s.cols, s.loaded = events, map[whKey]bool{}, map[string]map[string]bool{}, true
	for _, r := range rels {
		s.cols[r.name] = map[string]bool{}
		for _, c := range r.cols {
			s.cols[r.name][c.name] = true
			for _, p := range c.paths {
				s.known[whKey{table: r.name, column: c.name, path: string(p.source) + "\x00" + strings.Join(p.keys, "\x00")}] = true
			}
		}
	}
}

// load reads the record into s.
func (w *warehouseViews) load(ctx context.Context, schema string, s *whSchema) error {
	rels, events, err := loadWarehouse(ctx, w.pool, schema)
	if err != nil {
		return err
	}
	s.remember(rels, events)
	return nil
}
