package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
)

// Target is what a valid token opens (domain.Target).
type Target = domain.Target

// tokenCache trusts a look-up for ttl; revocations clear it at once (locally,
// and on other replicas through NOTIFY), so ttl is only the fallback bound.
type tokenCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cachedTarget
	used    map[int64]time.Time // URL id → last use, flushed to last_used_at
	gen     uint64              // bumped by clear: a look-up begun before it is not cached
}

type cachedTarget struct {
	t  Target
	at time.Time
}

func newTokenCache(ttl time.Duration, now func() time.Time) *tokenCache {
	return &tokenCache{ttl: ttl, now: now, entries: map[string]cachedTarget{}, used: map[int64]time.Time{}}
}

func (c *tokenCache) get(hash []byte) (Target, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[string(hash)]
	if !ok || c.now().Sub(e.at) > c.ttl {
		return Target{}, false
	}
	return e.t, true
}

func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches t unless a revocation cleared the cache since the look-up began
// (gen): that look-up may have read the row before the revocation.
func (c *tokenCache) put(hash []byte, t Target, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) > 10000 {
		clear(c.entries)
	}
	c.entries[string(hash)] = cachedTarget{t: t, at: c.now()}
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

func (c *tokenCache) markUsed(urlID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used[urlID] = c.now()
}

func (c *tokenCache) takeUsed() map[int64]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.used
	c.used = map[int64]time.Time{}
	return u
}

// tokens answers token look-ups through the cache and keeps the cache honest:
// one LISTEN connection drops it on revocations (and drops the schema cache's
// entries when another replica adds columns), and a ticker writes the URLs'
// last_used_at.
type tokens struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	cache   *tokenCache
	schemas *schemaCache
	m       *metrics.Metrics
}

// FindTarget looks a token up by its hash. Unknown, revoked and disabled all
// give the same ErrNotFound, so the answer is no oracle.
func (s *tokens) FindTarget(ctx context.Context, hash []byte) (Target, error) {
	if t, ok := s.cache.get(hash); ok {
		return t, nil
	}
	gen := s.cache.generation()
	t, err := s.lookup(ctx, hash)
	if err != nil {
		return t, err
	}
	s.cache.put(hash, t, gen)
	return t, nil
}

// MarkUsed records that a delivery through the URL was committed; the
// flusher writes last_used_at within about a second. Only accepted deliveries
// call it (ingest.Service), so a refused one never moves "Last used".
func (s *tokens) MarkUsed(urlID int64) { s.cache.markUsed(urlID) }

// lookup reads a token's target from the database.
func (s *tokens) lookup(ctx context.Context, hash []byte) (Target, error) {
	// Customer.io waits 4 s: a database that hangs must give a 503 in time.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var t Target
	var key *string
	var closed bool
	// Revoked URLs keep their hash, so the same one-row look-up (the same
	// unique index, the same timing) also tells which integration a post to
	// a revoked URL was meant for: counted, then answered like any unknown
	// token (SPEC 2: the answer is no oracle).
	err := s.pool.QueryRow(ctx, `SELECT u.id, i.id, i.schema_name, i.signing_key,
			u.revoked_at IS NOT NULL OR i.disabled_at IS NOT NULL
		FROM cioloader.webhook_urls u JOIN cioloader.integrations i ON i.id = u.integration_id
		WHERE u.token_hash = $1`, hash).
		Scan(&t.URLID, &t.IntegrationID, &t.Schema, &key, &closed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Target{}, errUnknownToken
	}
	if err != nil {
		return Target{}, fmt.Errorf("token look-up: %w", translate(err))
	}
	if closed {
		if s.m != nil {
			s.m.RevokedPosts.WithLabelValues(t.Schema).Inc()
		}
		return Target{}, errUnknownToken
	}
	if key != nil {
		t.SigningKey = []byte(*key)
	}
	return t, nil
}

var errUnknownToken = domain.Errorf(domain.ErrNotFound, "unknown or revoked webhook URL")

// Run keeps the token cache honest until ctx ends: it LISTENs for revocations
// (reconnecting after failures) and writes last_used_at every few seconds.
func (s *tokens) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.listen(ctx) })
	wg.Go(func() { s.flushUsedLoop(ctx) })
	wg.Wait()
	return nil
}

func (s *tokens) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("revocation listener lost its connection; token look-ups fall back to the TTL", "err", translate(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *tokens) listenOnce(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+revokedChannel+"; LISTEN "+columnsChannel); err != nil {
		return err
	}
	// Anything revoked, or any column added, while we were not listening is
	// forgotten now.
	s.cache.clear()
	s.schemas.forgetAll()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			// The connection may be mid-wait; never hand it back to the pool.
			_ = conn.Conn().Close(context.Background())
			return err
		}
		if n.Channel == columnsChannel {
			s.schemas.forget(n.Payload) // our own changes come back too: one cheap reload
			continue
		}
		s.cache.clear()
	}
}

// flushUsedLoop writes last_used_at once a second: one small UPDATE at most,
// and only with traffic.
func (s *tokens) flushUsedLoop(ctx context.Context) { flushEverySecond(ctx, s.flushUsed) }

func (s *tokens) flushUsed(ctx context.Context) {
	used := s.cache.takeUsed()
	if len(used) == 0 {
		return
	}
	ids := make([]int64, 0, len(used))
	ats := make([]time.Time, 0, len(used))
	for id, at := range used {
		ids = append(ids, id)
		ats = append(ats, at)
	}
	_, err := s.pool.Exec(ctx, `UPDATE cioloader.webhook_urls u SET last_used_at = greatest(u.last_used_at, x.at)
		FROM unnest($1::bigint[], $2::timestamptz[]) AS x(id, at) WHERE u.id = x.id`, ids, ats)
	if err != nil {
		s.log.Warn("could not record webhook URL use", "err", translate(err))
	}
}

// revokedChannel is the LISTEN/NOTIFY channel that tells replicas to forget
// cached tokens (URL revoked, integration deleted, signing key changed).
const revokedChannel = "cioloader_tokens"

func notifyRevoked(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, revokedChannel)
	return err
}
