package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
)

// Writer commits a group of requests in one transaction: all of them or none.
type Writer interface {
	WriteBatch(ctx context.Context, reqs []*Request) error
}

// BatcherConfig bounds the group commit.
type BatcherConfig struct {
	Workers   int           // concurrent transactions (default 4)
	MaxEvents int           // events per transaction (default 500)
	QueueLen  int           // requests waiting before new ones get 503 (default 10,000)
	Deadline  time.Duration // per request, from submit to commit (default 3 s)
}

func (c *BatcherConfig) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 500
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 10000
	}
	if c.Deadline <= 0 {
		c.Deadline = 3 * time.Second
	}
}

// Batcher is the group commit. Each worker blocks for one request, then takes
// whatever else is already queued (never waiting for more), so a lone request
// commits at once and a busy queue fills transactions by itself.
type Batcher struct {
	cfg BatcherConfig
	w   Writer
	log *slog.Logger
	m   *metrics.Metrics

	mu     sync.RWMutex
	closed bool
	queue  chan *Request
}

// NewBatcher makes a batcher writing through w.
func NewBatcher(w Writer, cfg BatcherConfig, log *slog.Logger, m *metrics.Metrics) *Batcher {
	cfg.defaults()
	return &Batcher{cfg: cfg, w: w, log: log, m: m, queue: make(chan *Request, cfg.QueueLen)}
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
	r.deadline = time.Now().Add(b.cfg.Deadline)
	r.done = make(chan error, 1)
	if err := b.enqueue(r); err != nil {
		return err
	}
	timer := time.NewTimer(time.Until(r.deadline))
	defer timer.Stop()
	select {
	case err := <-r.done:
		return err
	case <-timer.C:
		return errDeadline
	case <-ctx.Done():
		return errDeadline
	}
}

func (b *Batcher) enqueue(r *Request) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errShuttingDown
	}
	select {
	case b.queue <- r:
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
	for first := range b.queue {
		batch := b.collect(first)
		b.gaugeQueue()
		if len(batch) > 0 {
			b.write(batch)
		}
	}
}

// collect returns first plus whatever is queued now, up to MaxEvents, leaving
// out requests whose deadline has already passed (their clients got 503).
func (b *Batcher) collect(first *Request) []*Request {
	now := time.Now()
	batch := make([]*Request, 0, 16)
	events := 0
	add := func(r *Request) {
		if now.After(r.deadline) {
			r.done <- errDeadline
			return
		}
		batch = append(batch, r)
		events += len(r.Events) + len(r.Rejected)
	}
	add(first)
	for events < b.cfg.MaxEvents {
		select {
		case r, ok := <-b.queue:
			if !ok {
				return batch
			}
			add(r)
		default:
			return batch
		}
	}
	return batch
}

// write commits batch; when a multi-request batch fails for a reason other
// than the database being unavailable, each request is retried alone so one
// bad request cannot fail its neighbours.
func (b *Batcher) write(batch []*Request) {
	err := b.commit(batch)
	if err != nil && len(batch) > 1 && !errors.Is(err, domain.ErrUnavailable) {
		b.log.Warn("batch failed; retrying its requests one by one", "requests", len(batch), "err", err)
		for _, r := range batch {
			r.done <- b.commit([]*Request{r})
		}
		return
	}
	for _, r := range batch {
		r.done <- err
	}
}

func (b *Batcher) commit(batch []*Request) error {
	latest := batch[0].deadline
	events := 0
	for _, r := range batch {
		if r.deadline.After(latest) {
			latest = r.deadline
		}
		events += len(r.Events)
	}
	// The write must not be cut short by shutdown, only by the requests' own deadline.
	ctx, cancel := context.WithDeadline(context.Background(), latest)
	defer cancel()
	start := time.Now()
	err := b.w.WriteBatch(ctx, batch)
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
	}
	return nil
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
