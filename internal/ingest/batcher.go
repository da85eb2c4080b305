package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/stitch"
)

// Writer commits a group of requests in one transaction: all of them or none.
// It writes exactly what it is given and reports values the database refuses
// as domain.ErrDataRefused; Batcher.write says what happens then.
type Writer interface {
	WriteBatch(ctx context.Context, reqs []*Request) error
}

// BatcherConfig bounds the group commit. Its values come from config.Config
// (CIOLOADER_BATCH_WORKERS, _BATCH_MAX_EVENTS, _QUEUE_LEN, _COMMIT_DEADLINE),
// which holds the defaults; NewBatcher only checks them.
type BatcherConfig struct {
	Workers   int           // transactions in flight at most
	Stall     time.Duration // a further transaction starts only once the one in flight has run this long
	GrowTo    int           // under load, a batch below this many events waits for more...
	Linger    time.Duration // ...for at most this long
	MaxEvents int           // events per transaction
	QueueLen  int           // requests waiting before new ones get 503
	Deadline  time.Duration // per request, from submit to commit
}

func (c BatcherConfig) validate() error {
	if c.Workers <= 0 || c.MaxEvents <= 0 || c.QueueLen <= 0 || c.Deadline <= 0 || c.Stall <= 0 || c.GrowTo < 0 || c.Linger < 0 || c.Linger >= c.Stall {
		return fmt.Errorf("batcher: workers, stall, max events, queue length and deadline must all be positive, and linger shorter than stall (got %+v)", c)
	}
	return nil
}

// Batcher is the group commit. One worker at a time holds the turn: it blocks
// for one request, takes whatever else is already queued (never waiting for
// more) and commits. One transaction is in flight while commits are quick, so
// requests arriving meanwhile queue up and all go into the next one: batches
// grow with load, and a lone request still commits at once. Once a commit has
// run for Stall (a schema change, an erasure's lock wait, a 500-event array),
// another worker starts one alongside it, so a slow transaction does not hold
// every other commit: up to Workers transactions are then in flight.
type Batcher struct {
	cfg BatcherConfig
	w   Writer
	log *slog.Logger
	m   *metrics.Metrics

	turn      chan struct{} // holds the token when no worker has the turn
	busySince atomic.Int64  // when the turn holder's commit started (Unix ns); 0 while it waits for work

	mu     sync.RWMutex
	closed bool
	queue  chan *job
}

// job is a submitted request and its bookkeeping: when its client stops
// waiting, and where its answer goes.
type job struct {
	req      *Request
	deadline time.Time
	done     chan error // buffered: one answer, never blocks the worker
}

// NewBatcher makes a batcher writing through w.
func NewBatcher(w Writer, cfg BatcherConfig, log *slog.Logger, m *metrics.Metrics) (*Batcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Batcher{cfg: cfg, w: w, log: log, m: m, queue: make(chan *job, cfg.QueueLen), turn: make(chan struct{}, 1)}
	b.turn <- struct{}{}
	return b, nil
}

// errShuttingDown and errQueueFull are transient: the client should retry.
var (
	errShuttingDown = domain.Errorf(domain.ErrUnavailable, "the server is shutting down; retry shortly")
	errQueueFull    = domain.Errorf(domain.ErrUnavailable, "the ingest queue is full; retry shortly")
	errDeadline     = domain.Errorf(domain.ErrUnavailable, "the database did not commit in time; retry shortly")
)

// Submit queues r and waits until its transaction commits or fails, or its
// deadline passes. A nil error means every event of r is committed.
func (b *Batcher) Submit(ctx context.Context, r *Request) error {
	j := &job{req: r, deadline: time.Now().Add(b.cfg.Deadline), done: make(chan error, 1)}
	if err := b.enqueue(j); err != nil {
		return err
	}
	timer := time.NewTimer(time.Until(j.deadline))
	defer timer.Stop()
	select {
	case err := <-j.done:
		return err
	case <-timer.C:
		return errDeadline
	case <-ctx.Done():
		return errDeadline
	}
}

func (b *Batcher) enqueue(j *job) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errShuttingDown
	}
	select {
	case b.queue <- j:
		b.gaugeQueue()
		return nil
	default:
		return errQueueFull
	}
}

// Run writes until ctx is cancelled, then stops accepting, writes and answers
// everything already queued, and returns.
func (b *Batcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range b.cfg.Workers {
		wg.Go(b.work)
	}
	<-ctx.Done()
	b.mu.Lock()
	b.closed = true
	close(b.queue)
	b.mu.Unlock()
	wg.Wait()
	return nil
}

func (b *Batcher) work() {
	stall, linger := time.NewTimer(b.cfg.Stall), time.NewTimer(b.cfg.Linger)
	defer stall.Stop()
	defer linger.Stop()
	for {
		held := b.waitTurn(stall)
		first, ok, loaded := b.first(held)
		if !ok {
			if held {
				b.turn <- struct{}{}
			}
			return
		}
		if first == nil { // no turn, and nothing waiting: look again shortly
			time.Sleep(b.cfg.Stall / 10)
			continue
		}
		if held {
			b.busySince.Store(time.Now().UnixNano())
		}
		batch := b.collect(first, loaded, linger)
		b.gaugeQueue()
		if len(batch) > 0 {
			b.write(batch)
		}
		if held {
			b.busySince.Store(0)
			b.turn <- struct{}{}
		}
	}
}

// first takes the request a transaction starts with. The turn holder waits
// for one; loaded reports that one was already waiting (the server is under
// load, so collect may linger for company). A worker without the turn (the
// one in flight is slow) takes only a request already waiting, or none (nil):
// it must not sit on the queue and later take requests one by one beside a
// turn holder whose commits are quick again. ok is false once the queue is
// closed and empty.
func (b *Batcher) first(held bool) (j *job, ok, loaded bool) {
	select {
	case j, ok = <-b.queue:
		return j, ok, true
	default:
	}
	if !held {
		return nil, true, false
	}
	j, ok = <-b.queue
	return j, ok, false
}

// waitTurn waits for the turn: the one worker that may read the queue and
// commit. The holder reads the queue while idle, so a lone request commits at
// once, and requests that arrive while it commits wait for its next batch.
// When the holder's commit has run for Stall, waitTurn gives up and reports
// false: the caller then commits alongside it, without the turn.
func (b *Batcher) waitTurn(stall *time.Timer) bool {
	for {
		select {
		case <-b.turn:
			return true
		default:
		}
		wait := b.cfg.Stall
		if since := b.busySince.Load(); since != 0 {
			wait -= time.Since(time.Unix(0, since))
			if wait <= 0 {
				return false
			}
		}
		stall.Reset(wait)
		select {
		case <-b.turn:
			stall.Stop() // Go 1.23 timers: no stale value is left to drain
			return true
		case <-stall.C:
		}
	}
}

// collect returns first plus whatever is queued now, up to MaxEvents, leaving
// out requests whose deadline has already passed (their clients got 503).
// Under load (first was already waiting when the worker came for it) a batch
// below GrowTo events also waits up to Linger for more to arrive: Postgres's
// cost per transaction is then shared by more events. A request that reaches
// an idle worker never waits.
func (b *Batcher) collect(first *job, loaded bool, linger *time.Timer) []*job {
	now := time.Now()
	batch := make([]*job, 0, 16)
	events := 0
	add := func(j *job) {
		if now.After(j.deadline) {
			j.done <- errDeadline
			return
		}
		batch = append(batch, j)
		events += len(j.req.Events) + len(j.req.Rejected)
	}
	add(first)
	waiting := false
	defer func() {
		if waiting {
			linger.Stop()
		}
	}()
	for events < b.cfg.MaxEvents {
		var expire <-chan time.Time // nil: take only what is queued now
		if events < b.cfg.GrowTo && loaded {
			if !waiting {
				waiting = true
				linger.Reset(b.cfg.Linger)
			}
			expire = linger.C
		}
		j, open, got := b.next(expire)
		if !open {
			return batch
		}
		if !got {
			break
		}
		add(j)
	}
	return batch
}

// next takes a queued job: one already queued when expire is nil, else the
// first to arrive before expire fires. open is false once the queue is closed.
func (b *Batcher) next(expire <-chan time.Time) (j *job, open, got bool) {
	if expire == nil {
		select {
		case j, ok := <-b.queue:
			return j, ok, ok
		default:
			return nil, true, false
		}
	}
	select {
	case j, ok := <-b.queue:
		return j, ok, ok
	case <-expire:
		return nil, true, false
	}
}

// write commits batch and answers each of its requests. It and commit are
// the failure path, in one place. The Writer writes exactly what it is given,
// all of it or none, and reports values Postgres refuses as
// domain.ErrDataRefused. The batcher then:
//
//  1. answers a whole batch with its error when the database is unavailable
//     (domain.ErrUnavailable, the deadline included): retrying would only
//     add load, and the clients retry;
//  2. retries every request of a batch that failed for any other reason on
//     its own, so one bad request cannot fail its neighbours;
//  3. writes a request that fails on its own with domain.ErrDataRefused once
//     more as raw-only (see rawOnly): every event whole in _sdc_raw with a
//     problem row saying why, so a value Postgres refuses cannot block an
//     integration's webhook with 503s for ever. What that write answers is
//     the request's answer.
//
// A nil answer still means every event of the request is committed.
func (b *Batcher) write(batch []*job) {
	err := b.commit(batch)
	if err != nil && len(batch) > 1 && !errors.Is(err, domain.ErrUnavailable) {
		b.log.Warn("batch failed; retrying its requests one by one", "requests", len(batch), "err", err)
		for _, j := range batch {
			j.done <- b.commit([]*job{j})
		}
		return
	}
	for _, j := range batch {
		j.done <- err
	}
}

// commit writes batch in one transaction before the latest of its deadlines;
// a lone request whose values are refused is written again raw-only (step 3)
// within the same deadline.
func (b *Batcher) commit(batch []*job) error {
	latest := batch[0].deadline
	events := 0
	reqs := make([]*Request, len(batch))
	for i, j := range batch {
		if j.deadline.After(latest) {
			latest = j.deadline
		}
		events += len(j.req.Events)
		reqs[i] = j.req
	}
	// The write must not be cut short by shutdown, only by the requests' own deadline.
	ctx, cancel := context.WithDeadline(context.Background(), latest)
	defer cancel()
	start := time.Now()
	err := b.w.WriteBatch(ctx, reqs)
	if len(reqs) == 1 && errors.Is(err, domain.ErrDataRefused) {
		b.log.Warn("Postgres refused a request's columns; storing its events in _sdc_raw only", "schema", reqs[0].Schema, "err", err)
		err = b.w.WriteBatch(ctx, []*Request{rawOnly(reqs[0], refusal(err))})
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", errDeadline, err)
		}
		b.countFailure(err)
		return err
	}
	if b.m != nil {
		b.m.CommitSeconds.Observe(time.Since(start).Seconds())
		b.m.BatchEvents.Observe(float64(events))
		b.m.BatchRequests.Observe(float64(len(batch)))
		b.m.BatchedEvents.WithLabelValues(batchSizeLabel(events)).Add(float64(events))
	}
	return nil
}

// batchSizeLabel is the batched_events_total label for a batch of n events.
func batchSizeLabel(n int) string {
	switch {
	case n <= 1:
		return "1"
	case n < 8:
		return "2-7"
	case n < 32:
		return "8-31"
	case n < 128:
		return "32-127"
	}
	return "128+"
}

// rawOnly is r with every event's flattened values dropped: only the system
// columns, _sdc_raw and the RudderStack copy are written, and each event gets
// a problem row giving reason.
func rawOnly(r *Request, reason string) *Request {
	c := *r
	c.Events = make([]Event, len(r.Events))
	for i, e := range r.Events {
		e.Flat = stitch.Result{
			Tables:   []stitch.Table{{Name: "data", Rows: []stitch.Row{{}}}},
			Problems: []stitch.Problem{{Table: "data", Reason: "Postgres refused this event's columns (" + reason + "); the event is kept in _sdc_raw only"}},
		}
		c.Events[i] = e
	}
	return &c
}

// refusal is the database's own words in a domain.ErrDataRefused.
func refusal(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Message
	}
	return err.Error()
}

func (b *Batcher) countFailure(err error) {
	if b.m == nil {
		return
	}
	kind := "data"
	switch {
	case errors.Is(err, errDeadline):
		kind = "timeout"
	case errors.Is(err, domain.ErrUnavailable):
		kind = "unavailable"
	}
	b.m.WriteFailures.WithLabelValues(kind).Inc()
}

func (b *Batcher) gaugeQueue() {
	if b.m != nil {
		b.m.QueueDepth.Set(float64(len(b.queue)))
	}
}
