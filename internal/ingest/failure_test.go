package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/stitch"
)

// refusingWriter refuses, as Postgres would, every batch holding a request
// with flattened values that it.refuses; it records what it committed.
type refusingWriter struct {
	*recordingWriter
	mu        sync.Mutex
	committed []*Request
}

func newRefusingWriter(refuses func(*Request) bool) *refusingWriter {
	w := &refusingWriter{recordingWriter: &recordingWriter{gate: make(chan struct{}, 100), entered: make(chan struct{}, 100)}}
	w.fail = func(reqs []*Request) error {
		for _, r := range reqs {
			if refuses(r) {
				return domain.Errorf(domain.ErrDataRefused, "value too long for type character varying(3)")
			}
		}
		w.mu.Lock()
		w.committed = append(w.committed, reqs...)
		w.mu.Unlock()
		return nil
	}
	return w
}

// stored returns the committed request with schema s.
func (w *refusingWriter) stored(t *testing.T, schema string) *Request {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var found *Request
	for _, r := range w.committed {
		if r.Schema == schema {
			require.Nil(t, found, "request %s committed twice", schema)
			found = r
		}
	}
	require.NotNil(t, found, "request %s not committed", schema)
	return found
}

// flatReq is a request of one event with one flattened column.
func flatReq(schema string) *Request {
	return &Request{Schema: schema, Events: []Event{{
		ID: schema + "-1", Seq: 7, Raw: []byte(`{"event_id":"` + schema + `-1","v":"long"}`),
		Flat: stitch.Result{Tables: []stitch.Table{{Name: "data", Rows: []stitch.Row{{Fields: []stitch.Field{{Name: "v", Type: stitch.Text, Value: "long"}}}}}}},
	}}}
}

func hasFields(r *Request) bool {
	for _, e := range r.Events {
		if len(e.Flat.Tables) > 0 && len(e.Flat.Tables[0].Rows[0].Fields) > 0 {
			return true
		}
	}
	return false
}

// requireRawOnly checks r is want with its events' columns dropped and a
// problem row giving the database's reason.
func requireRawOnly(t *testing.T, want, r *Request) {
	t.Helper()
	require.NotSame(t, want, r)
	require.Len(t, r.Events, len(want.Events))
	for i, e := range r.Events {
		require.Equal(t, want.Events[i].ID, e.ID)
		require.Equal(t, want.Events[i].Seq, e.Seq)
		require.Equal(t, want.Events[i].Raw, e.Raw, "the event is kept whole in _sdc_raw")
		require.Equal(t, []stitch.Table{{Name: "data", Rows: []stitch.Row{{}}}}, e.Flat.Tables)
		require.Len(t, e.Flat.Problems, 1)
		require.Contains(t, e.Flat.Problems[0].Reason, "Postgres refused this event's columns (value too long for type character varying(3))")
	}
	require.Len(t, want.Events[0].Flat.Tables[0].Rows[0].Fields, 1, "the submitted request is not changed")
}

// Ensure a batch whose write is refused for one request's values commits the
// others as they are and that one raw-only, and answers all of them nil.
func TestBatcherStoresARefusedRequestRawOnly(t *testing.T) {
	t.Parallel()
	w := newRefusingWriter(func(r *Request) bool { return r.Schema == "bad" && hasFields(r) })
	b := startBatcher(t, w, testConfig(nil))
	reqs := []*Request{flatReq("first"), flatReq("bad"), flatReq("good")}
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = b.Submit(context.Background(), reqs[0]) })
	w.waitEntered(t) // the worker holds "first": "bad" and "good" queue up together
	wg.Go(func() { errs[1] = b.Submit(context.Background(), reqs[1]) })
	wg.Go(func() { errs[2] = b.Submit(context.Background(), reqs[2]) })
	require.Eventually(t, func() bool { return len(b.queue) == 2 }, time.Second, time.Millisecond)
	close(w.gate)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, reqs[i].Schema)
	}
	// first; bad+good refused; each alone: bad refused then raw-only, good.
	require.ElementsMatch(t, []int{1, 2, 1, 1, 1}, w.sizes())
	require.Same(t, reqs[0], w.stored(t, "first"))
	require.Same(t, reqs[2], w.stored(t, "good"))
	requireRawOnly(t, reqs[1], w.stored(t, "bad"))
}

// Ensure a lone refused request is written raw-only at once, with no batch retry first.
func TestBatcherLoneRefusedRequest(t *testing.T) {
	t.Parallel()
	w := newRefusingWriter(hasFields)
	b := startBatcher(t, w, testConfig(nil))
	r := flatReq("lone")
	close(w.gate)
	require.NoError(t, b.Submit(context.Background(), r))
	require.Equal(t, []int{1, 1}, w.sizes())
	requireRawOnly(t, r, w.stored(t, "lone"))
}

// Ensure the raw-only write is tried once: when it is refused too, that
// refusal is the request's answer.
func TestBatcherRawOnlyIsTriedOnce(t *testing.T) {
	t.Parallel()
	w := newRefusingWriter(func(*Request) bool { return true })
	b := startBatcher(t, w, testConfig(nil))
	close(w.gate)
	require.ErrorIs(t, b.Submit(context.Background(), flatReq("x")), domain.ErrDataRefused)
	require.Equal(t, []int{1, 1}, w.sizes())
}

// Ensure only a refusal of values leads to raw-only: any other failure of a
// lone request is its answer as it is.
func TestBatcherOtherFailuresAreNotRawOnly(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{fail: func([]*Request) error { return domain.Errorf(domain.ErrConflict, "conflict") }}
	b := startBatcher(t, w, testConfig(nil))
	require.ErrorIs(t, b.Submit(context.Background(), flatReq("x")), domain.ErrConflict)
	require.Equal(t, []int{1}, w.sizes())
}

// Ensure the batcher takes its bounds from the configuration and invents none.
func TestNewBatcherRefusesAnIncompleteConfig(t *testing.T) {
	t.Parallel()
	for _, set := range []func(*BatcherConfig){
		func(c *BatcherConfig) { c.Workers = 0 },
		func(c *BatcherConfig) { c.MaxEvents = 0 },
		func(c *BatcherConfig) { c.QueueLen = 0 },
		func(c *BatcherConfig) { c.Deadline = 0 },
	} {
		_, err := NewBatcher(&recordingWriter{}, testConfig(set), nil, nil)
		require.Error(t, err)
	}
	_, err := NewBatcher(&recordingWriter{}, testConfig(nil), nil, nil)
	require.NoError(t, err)
}
