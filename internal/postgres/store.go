// Package postgres is the only package that talks to Postgres: the control
// schema (integrations, webhook URLs), each integration's tables, schema
// evolution and the batch writer. See README.md beside this file.
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
)

// Config tunes the store. Every field must be set: the defaults live in
// internal/config, and Open refuses a zero value rather than invent one.
type Config struct {
	MaxConns     int32         // pool size, at least 2 (the listener holds one)
	MaxColumns   int           // columns per table, system ones included, before new keys stay in _sdc_raw
	MaxSubtables int           // array subtables per schema; 0 keeps every array in _sdc_raw only
	TokenTTL     time.Duration // how long a token look-up is trusted without a notification
}

func (c Config) validate() error {
	switch {
	case c.MaxConns < 2:
		return fmt.Errorf("postgres: MaxConns must be at least 2, not %d", c.MaxConns)
	case c.MaxColumns <= 0:
		return fmt.Errorf("postgres: MaxColumns must be positive, not %d", c.MaxColumns)
	case c.MaxSubtables < 0:
		return fmt.Errorf("postgres: MaxSubtables must not be negative, not %d", c.MaxSubtables)
	case c.TokenTTL <= 0:
		return fmt.Errorf("postgres: TokenTTL must be positive, not %s", c.TokenTTL)
	}
	return nil
}

// Store is cioloader's Postgres adapter: it opens the pool and composes the
// parts, one job each, whose exported methods it promotes:
//   - tokens: FindTarget and Run (token cache, LISTEN/NOTIFY, last_used_at);
//   - schemas: the cached shape of each integration's tables and its evolution;
//   - writer: the group-commit write (WriteBatch, in write.go, sits on Store);
//   - registry: integrations and their webhook URLs;
//   - replayer: CountEvents and Replay;
//   - eraser: Erase and ListErasures;
//   - refusals: refused deliveries by reason, and _sdc_rejected rows;
//   - activity: events received per hour, object_type and metric;
//   - imports: history imports' progress and their look-ups;
//   - readers: read-only roles on integration schemas;
//   - pruner: retention, events older than their integration's window;
//   - compactor: folds message_facts' delta rows (summaries.go).
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	m    *metrics.Metrics // nil counts nothing

	*tokens
	*writer
	*registry
	*replayer
	*eraser
	*refusals
	*activity
	*imports
	*readers
	*pruner
	*compactor
}

// Run keeps the caches honest, flushes what is counted in memory
// (last_used_at, refused deliveries, activity) and prunes events older than
// their retention window, until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.tokens.Run(ctx) })
	wg.Go(func() { s.refusals.run(ctx) })
	wg.Go(func() { s.activity.run(ctx) })
	wg.Go(func() { s.probeLoop(ctx) })
	wg.Go(func() { s.pruner.run(ctx) })
	wg.Go(func() { s.compactor.run(ctx) })
	wg.Wait()
	return nil
}

// Open connects a pool to databaseURL. It does not migrate.
func Open(ctx context.Context, databaseURL string, cfg Config, log *slog.Logger, m *metrics.Metrics) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %s", sanitize(err))
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = 5 * time.Second
	// Every statement the writer sends is prepared once per connection and
	// takes array parameters. Left to choose, Postgres plans such a statement
	// afresh on every execution (a custom plan looks cheaper than the generic
	// one), and that planning was 40 % of its CPU per transaction (perf, c=1).
	// The statements are written so the generic plan starts from the right
	// index (see staleChildDelete). A DATABASE_URL that sets it wins.
	if _, set := pc.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		pc.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pc.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerTextParam(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %s", sanitize(err))
	}
	s := compose(pool, cfg, log, m, time.Now)
	s.readers.url = databaseURL
	return s, nil
}

// compose wires the parts around one pool.
func compose(pool *pgxpool.Pool, cfg Config, log *slog.Logger, m *metrics.Metrics, now func() time.Time) *Store {
	schemas := newSchemaCache(pool, cfg.MaxColumns, cfg.MaxSubtables, log, m)
	wh := newWarehouseViews(pool, log, now)
	cache := newTokenCache(cfg.TokenTTL, now)
	return &Store{
		pool:      pool,
		log:       log,
		m:         m,
		tokens:    &tokens{pool: pool, log: log, cache: cache, schemas: schemas, m: m},
		writer:    &writer{pool: pool, schemas: schemas, wh: wh, m: m, now: now},
		registry:  &registry{pool: pool, log: log, tokens: cache},
		replayer:  &replayer{pool: pool, wh: wh},
		eraser:    &eraser{pool: pool, m: m},
		refusals:  newRefusals(pool, log),
		activity:  newActivity(pool, log, now),
		imports:   &imports{pool: pool, schemas: schemas, log: log},
		readers:   &readers{pool: pool},
		pruner:    &pruner{pool: pool, log: log, m: m, now: now},
		compactor: &compactor{pool: pool, log: log},
	}
}

// Close waits for the warehouse view changes running in the background, then
// releases the pool.
func (s *Store) Close() {
	s.writer.wh.wait()
	s.pool.Close()
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return translate(s.pool.Ping(ctx))
}

// Ready checks the database answers and the control schema is at the
// version this binary embeds.
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var version int64
	var dirty bool
	err := s.pool.QueryRow(ctx, `SELECT version, dirty FROM public.`+migrationsTable).Scan(&version, &dirty)
	if err != nil {
		return fmt.Errorf("readiness: %w", translate(err))
	}
	latest, err := Latest()
	if err != nil {
		return err
	}
	// A newer schema than this binary knows is fine (migrations are additive,
	// and during a rolling upgrade the old replicas must stay in service).
	if dirty || uint(version) < latest {
		return domain.Errorf(domain.ErrUnavailable, "control schema is at version %d (dirty=%t); this binary needs %d: run `cioloader migrate up`", version, dirty, latest)
	}
	return nil
}
