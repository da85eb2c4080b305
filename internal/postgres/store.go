// Package postgres is the only package that talks to Postgres: the control
// schema (integrations, webhook URLs), each integration's tables, schema
// evolution and the batch writer. See README.md beside this file.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/stitch"
)

// Config tunes the store. Zero values take the defaults.
type Config struct {
	MaxConns     int32         // pool size (default 16)
	Limits       stitch.Limits // flattening bounds, for replay
	MaxColumns   int           // columns per table before new keys stay in _sdc_raw (default 1,000)
	MaxSubtables int           // array subtables per schema (default 100)
	TokenTTL     time.Duration // how long a token look-up is trusted without a notification (default 1 s)
}

func (c *Config) defaults() {
	if c.MaxConns <= 0 {
		c.MaxConns = 16
	}
	if c.MaxColumns <= 0 {
		c.MaxColumns = 1000
	}
	if c.MaxSubtables <= 0 {
		c.MaxSubtables = 100
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Second
	}
	if c.Limits == (stitch.Limits{}) {
		c.Limits = stitch.DefaultLimits()
	}
}

// Store is cioloader's Postgres adapter.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
	log  *slog.Logger
	m    *metrics.Metrics
	now  func() time.Time

	schemasMu sync.Mutex
	schemas   map[string]*schemaState
	tokens    *tokenCache
}

// Open connects a pool to databaseURL. It does not migrate.
func Open(ctx context.Context, databaseURL string, cfg Config, log *slog.Logger, m *metrics.Metrics) (*Store, error) {
	cfg.defaults()
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %s", sanitize(err))
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %s", sanitize(err))
	}
	s := &Store{
		pool:    pool,
		cfg:     cfg,
		log:     log,
		m:       m,
		now:     time.Now,
		schemas: map[string]*schemaState{},
	}
	s.tokens = newTokenCache(cfg.TokenTTL, s.now)
	return s, nil
}

// Close releases the pool.
func (s *Store) Close() { s.pool.Close() }

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

// translate maps driver errors to domain errors: "database down or busy" →
// ErrUnavailable, no rows → ErrNotFound, unique violation → ErrConflict,
// values Postgres refuses → ErrDataRefused (with Postgres's message).
// Anything else is returned unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: database: %s", domain.ErrUnavailable, unreachable(err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %w", domain.ErrConflict, err)
		case transientSQLState(pgErr.Code):
			return fmt.Errorf("%w: database: %s", domain.ErrUnavailable, pgErr.Message)
		case dataError(pgErr.Code):
			return fmt.Errorf("%w (SQLSTATE %s)", domain.Errorf(domain.ErrDataRefused, "%s", pgErr.Message), pgErr.Code)
		}
		return err
	}
	if transientErr(err) {
		return fmt.Errorf("%w: database: %s", domain.ErrUnavailable, unreachable(err))
	}
	return err
}

// unreachable says why the database could not be used without quoting the
// driver, whose messages name the host, port, user and database (SPEC 10.11).
func unreachable(err error) string {
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &pgErr):
		return "the server refused the connection (SQLSTATE " + pgErr.Code + ")"
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return "no answer in time"
	case errors.As(err, &dnsErr):
		return "the host name does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is Postgres running?)"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || isConnClosed(err):
		return "the connection was lost"
	}
	return "cannot reach the server"
}

// transientSQLState: connection exceptions (08), serialization failures and
// deadlocks (40), insufficient resources (53), operator intervention (57:
// shutdown, cancel), system errors (58).
func transientSQLState(code string) bool {
	if len(code) < 2 {
		return false
	}
	switch code[:2] {
	case "08", "40", "53", "57", "58":
		return true
	}
	return false
}

// dataError: data exceptions (22) and program limits such as "row is too big" (54).
func dataError(code string) bool {
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "54")
}

func transientErr(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		isConnClosed(err)
}

func isConnClosed(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false
	}
	// pgx reports a connection lost mid-query as "conn closed" / "unexpected EOF".
	msg := err.Error()
	for _, s := range []string{"conn closed", "closed pool", "connection reset", "broken pipe", "connection refused", "unexpected EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
