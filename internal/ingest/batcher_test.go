package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
)

// recordingWriter is the batcher's seam, not a database: it records the
// batches it is given and answers with what the test scripts.
type recordingWriter struct {
	mu      sync.Mutex
	batches [][]*Request
	gate    chan struct{} // when non-nil, each write waits for a token
	entered chan struct{} // receives one value as each write starts
	fail    func([]*Request) error
}

func newGatedWriter() *recordingWriter {
	return &recordingWriter{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
}

// waitEntered blocks until a write has started (the worker holds a request).
func (w *recordingWriter) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no write started")
	}
}

func (w *recordingWriter) WriteBatch(ctx context.Context, reqs []*Request) error {
	if w.entered != nil {
		w.entered <- struct{}{}
	}
	if w.gate != nil {
		select {
		case <-w.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	w.batches = append(w.batches, reqs)
	w.mu.Unlock()
	if w.fail != nil {
		return w.fail(reqs)
	}
	return nil
}

func (w *recordingWriter) sizes() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for _, b := range w.batches {
		out = append(out, len(b))
	}
	return out
}

// testConfig is a valid BatcherConfig with one worker, changed by set.
func testConfig(set func(*BatcherConfig)) BatcherConfig {
	c := BatcherConfig{Workers: 1, Stall: 50 * time.Millisecond, MaxEvents: 500, QueueLen: 100, Deadline: 3 * time.Second}
	if set != nil {
		set(&c)
	}
	return c
}

func newBatcher(t *testing.T, w Writer, cfg BatcherConfig) *Batcher {
	t.Helper()
	b, err := NewBatcher(w, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	return b
}

func startBatcher(t *testing.T, w Writer, cfg BatcherConfig) *Batcher {
	t.Helper()
	b := newBatcher(t, w, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

func req(events int) *Request {
	return &Request{Schema: "s", Events: make([]Event, events)}
}

// Ensure a lone request is written at once: no waiting for company.
func TestBatcherLoneRequestCommitsAtOnce(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := startBatcher(t, w, testConfig(nil))
	start := time.Now()
	require.NoError(t, b.Submit(context.Background(), req(1)))
	require.Less(t, time.Since(start), 200*time.Millisecond)
	require.Equal(t, []int{1}, w.sizes())
}

// Ensure requests queued while a write is in flight share the next transaction.
func TestBatcherGroupsQueuedRequests(t *testing.T) {
	t.Parallel()
	w := newGatedWriter()
	b := startBatcher(t, w, testConfig(func(c *BatcherConfig) { c.MaxEvents = 100 }))
	var wg sync.WaitGroup
	errs := make(chan error, 11)
	wg.Go(func() { errs <- b.Submit(context.Background(), req(1)) })
	w.waitEntered(t)
	for range 10 {
		wg.Go(func() { errs <- b.Submit(context.Background(), req(1)) })
	}
	require.Eventually(t, func() bool { return len(b.queue) == 10 }, time.Second, time.Millisecond)
	w.gate <- struct{}{} // first write
	w.gate <- struct{}{} // second write: all ten together
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, []int{1, 10}, w.sizes())
}

// Ensure that with two workers only one transaction is in flight while it is
// quick: the second worker waits for its turn, so everything that queued
// meanwhile shares the next transaction instead of a small one starting early.
func TestBatcherOneTransactionInFlightWhileQuick(t *testing.T) {
	t.Parallel()
	w := newGatedWriter()
	b := startBatcher(t, w, testConfig(func(c *BatcherConfig) { c.Workers, c.Stall = 2, time.Minute }))
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Submit(context.Background(), req(1)) })
	w.waitEntered(t)
	for range 10 {
		wg.Go(func() { _ = b.Submit(context.Background(), req(1)) })
	}
	// The second worker waits for the turn; all ten stay queued.
	require.Eventually(t, func() bool { return len(b.queue) == 10 }, time.Second, time.Millisecond)
	select {
	case <-w.entered:
		t.Fatal("a second transaction started while the first was in flight and not slow")
	case <-time.After(100 * time.Millisecond):
	}
	w.gate <- struct{}{} // first write
	w.waitEntered(t)
	w.gate <- struct{}{} // second write: all ten together
	wg.Wait()
	require.Equal(t, []int{1, 10}, w.sizes())
}

// Ensure a slow transaction does not hold every other commit: once it has
// run Stall, a second one starts alongside it.
func TestBatcherSecondTransactionWhenOneIsSlow(t *testing.T) {
	t.Parallel()
	w := newGatedWriter()
	b := startBatcher(t, w, testConfig(func(c *BatcherConfig) { c.Workers, c.Stall = 2, 20*time.Millisecond }))
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Submit(context.Background(), req(1)) })
	w.waitEntered(t)
	wg.Go(func() { _ = b.Submit(context.Background(), req(2)) })
	w.waitEntered(t) // started while the first is still in flight
	w.gate <- struct{}{}
	w.gate <- struct{}{}
	wg.Wait()
	require.ElementsMatch(t, []int{1, 1}, w.sizes())
}

// Ensure batches grow with load: a request that was already waiting when the
// worker came for it (load) starts a batch that waits (up to Linger) until it
// holds GrowTo events, while a request that reaches an idle worker is written
// at once.
func TestBatcherGrowsBatchesUnderLoad(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{gate: make(chan struct{}, 100), entered: make(chan struct{}, 100)}
	b := startBatcher(t, w, testConfig(func(c *BatcherConfig) { c.GrowTo, c.Linger, c.Stall = 3, time.Minute, 2*time.Minute }))
	var wg sync.WaitGroup
	submit := func() { wg.Go(func() { require.NoError(t, b.Submit(context.Background(), req(1))) }) }
	quiet := func(what string) {
		t.Helper()
		select {
		case <-w.entered:
			t.Fatal(what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	time.Sleep(50 * time.Millisecond) // the worker is idle, waiting on the queue
	submit()                          // A reaches an idle worker: written at once (the gate holds it there)
	w.waitEntered(t)
	submit() // B and C queue behind A
	submit()
	require.Eventually(t, func() bool { return len(b.queue) == 2 }, time.Second, time.Millisecond)
	w.gate <- struct{}{} // A commits; B was waiting, so B and C wait for company
	quiet("a batch below GrowTo was written at once under load")
	submit() // D brings it to GrowTo: written without waiting out the linger
	w.waitEntered(t)
	w.gate <- struct{}{}
	require.Eventually(t, func() bool { return len(w.sizes()) == 2 }, time.Second, time.Millisecond)

	wg.Wait()
	time.Sleep(50 * time.Millisecond) // idle again
	submit()                          // E reaches an idle worker: written at once
	w.waitEntered(t)
	w.gate <- struct{}{}
	wg.Wait()
	require.Equal(t, []int{1, 3, 1}, w.sizes())
}

// Ensure a batch stops growing at MaxEvents.
func TestBatcherBoundsBatchSize(t *testing.T) {
	t.Parallel()
	w := newGatedWriter()
	b := startBatcher(t, w, testConfig(func(c *BatcherConfig) { c.MaxEvents = 5 }))
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.Submit(context.Background(), req(1)) })
	w.waitEntered(t)
	for range 8 {
		wg.Go(func() { _ = b.Submit(context.Background(), req(1)) })
	}
	require.Eventually(t, func() bool { return len(b.queue) == 8 }, time.Second, time.Millisecond)
	for range 3 {
		w.gate <- struct{}{}
	}
	wg.Wait()
	require.Equal(t, []int{1, 5, 3}, w.sizes())
}

// Ensure one failing request does not fail its neighbours: the batch is
// retried request by request and only the bad one gets the error.
func TestBatcherIsolatesAFailingRequest(t *testing.T) {
	t.Parallel()
	bad := req(1)
	w := &recordingWriter{gate: make(chan struct{}, 100), entered: make(chan struct{}, 100), fail: func(reqs []*Request) error {
		for _, r := range reqs {
			if r == bad {
				return errors.New("value out of range")
			}
		}
		return nil
	}}
	b := startBatcher(t, w, testConfig(nil))
	first := req(1)
	var wg sync.WaitGroup
	results := map[*Request]error{}
	var mu sync.Mutex
	submit := func(r *Request) {
		err := b.Submit(context.Background(), r)
		mu.Lock()
		results[r] = err
		mu.Unlock()
	}
	wg.Go(func() { submit(first) })
	w.waitEntered(t)
	good := req(1)
	wg.Go(func() { submit(bad) })
	wg.Go(func() { submit(good) })
	require.Eventually(t, func() bool { return len(b.queue) == 2 }, time.Second, time.Millisecond)
	for range 10 {
		w.gate <- struct{}{}
	}
	wg.Wait()
	require.NoError(t, results[first])
	require.NoError(t, results[good])
	require.Error(t, results[bad])
}

// Ensure a transient failure fails the whole batch (no retry storm) and is unavailable.
func TestBatcherUnavailableFailsWholeBatch(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{fail: func([]*Request) error {
		return domain.Errorf(domain.ErrUnavailable, "database down")
	}}
	b := startBatcher(t, w, testConfig(nil))
	err := b.Submit(context.Background(), req(2))
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Equal(t, []int{1}, w.sizes())
}

// Ensure a request whose commit does not finish in time gets ErrUnavailable.
func TestBatcherDeadline(t *testing.T) {
	t.Parallel()
	w := newGatedWriter()
	b := startBatcher(t, w, testConfig(func(c *BatcherConfig) { c.Deadline = 100 * time.Millisecond }))
	start := time.Now()
	err := b.Submit(context.Background(), req(1))
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Less(t, time.Since(start), time.Second)
}

// Ensure a full queue answers ErrUnavailable instead of blocking.
func TestBatcherQueueFull(t *testing.T) {
	t.Parallel()
	w := newGatedWriter()
	b := startBatcher(t, w, testConfig(func(c *BatcherConfig) { c.QueueLen = 1; c.Deadline = 2 * time.Second }))
	go func() { _ = b.Submit(context.Background(), req(1)) }() // held by the worker
	w.waitEntered(t)
	go func() { _ = b.Submit(context.Background(), req(1)) }() // fills the queue
	require.Eventually(t, func() bool { return len(b.queue) == 1 }, time.Second, time.Millisecond)
	err := b.Submit(context.Background(), req(1))
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Contains(t, err.Error(), "queue is full")
	close(w.gate)
}

// Ensure shutdown answers everything already queued, then refuses new work.
func TestBatcherShutdownDrains(t *testing.T) {
	t.Parallel()
	w := newGatedWriter()
	b := newBatcher(t, w, testConfig(nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	wg.Go(func() { errs <- b.Submit(context.Background(), req(1)) })
	w.waitEntered(t)
	for range 4 {
		wg.Go(func() { errs <- b.Submit(context.Background(), req(1)) })
	}
	require.Eventually(t, func() bool { return len(b.queue) == 4 }, time.Second, time.Millisecond)
	cancel()
	close(w.gate)
	wg.Wait()
	<-done
	require.Equal(t, []int{1, 4}, w.sizes())
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.ErrorIs(t, b.Submit(context.Background(), req(1)), domain.ErrUnavailable)
}
