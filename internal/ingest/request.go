// Package ingest turns decoded webhook bodies into write requests and commits
// them in groups: concurrent requests share one transaction, each answered when
// that transaction has committed, and a lone request is written at once.
package ingest

import (
	"sync/atomic"
	"time"

	"github.com/cioloader/cioloader/internal/facts"
	"github.com/cioloader/cioloader/internal/history"
	"github.com/cioloader/cioloader/internal/rudder"
	"github.com/cioloader/cioloader/internal/stitch"
	"github.com/cioloader/cioloader/internal/webhook"
)

// Event is one accepted event, flattened and transformed, ready to write.
type Event struct {
	ID     string
	Seq    int64  // _sdc_sequence
	Raw    []byte // _sdc_raw
	Flat   stitch.Result
	Rudder *rudder.Event
	Facts  facts.Facts // the analyst views' columns (event_facts)
	// Twin is the event_id an import from Customer.io's history gives this
	// event's occurrence (history.EventID), for a webhook event that records
	// one; "" otherwise. The writer deletes the imported copy by it, so an
	// occurrence is stored once (SPEC 11).
	Twin string
}

// Request is everything one delivery asks to be written, as one atomic unit.
// It is pure data; the batcher's bookkeeping lives in its job.
type Request struct {
	Schema     string
	ReceivedAt time.Time
	Events     []Event
	Rejected   []webhook.Rejection
	Replaced   int // characters replaced by U+FFFD while decoding
}

// Sequencer hands out _sdc_sequence values: receipt time in Unix nanoseconds,
// strictly increasing within the process so array order and arrival order hold
// even when the clock stalls or steps back.
type Sequencer struct {
	last atomic.Int64
	now  func() time.Time
}

// NewSequencer returns a sequencer reading now (time.Now when nil).
func NewSequencer(now func() time.Time) *Sequencer {
	if now == nil {
		now = time.Now
	}
	return &Sequencer{now: now}
}

// Next reserves n consecutive values and returns the first.
func (s *Sequencer) Next(n int) int64 {
	for {
		last := s.last.Load()
		first := s.now().UnixNano()
		if first <= last {
			first = last + 1
		}
		if s.last.CompareAndSwap(last, first+int64(n)-1) {
			return first
		}
	}
}

// Prepare flattens and transforms a decoded body for schema. It is pure CPU
// work and runs on the request's goroutine, outside the writer's critical path.
func Prepare(schema string, receivedAt time.Time, b webhook.Batch, seq *Sequencer, lim stitch.Limits) *Request {
	first := seq.Next(max(len(b.Events), 1))
	return prepare(schema, receivedAt, b, func(i int) int64 { return first + int64(i) }, lim)
}

// PrepareImported is Prepare for events imported from Customer.io's history
// (internal/history): each event's _sdc_sequence is its timestamp in Unix
// nanoseconds, so an import run again rewrites nothing (the sequence guard
// keeps the row), and any copy received by webhook, whose sequence is its
// later receipt time, wins over the imported one.
func PrepareImported(schema string, receivedAt time.Time, b webhook.Batch, lim stitch.Limits) *Request {
	return prepare(schema, receivedAt, b, func(i int) int64 {
		secs, _ := importedSeconds(b.Events[i].Body)
		return secs * int64(time.Second)
	}, lim)
}

// importedSeconds is an imported event's timestamp.
func importedSeconds(body map[string]any) (int64, bool) {
	o, ok := history.OccurrenceOf(body)
	return o.Timestamp, ok
}

func prepare(schema string, receivedAt time.Time, b webhook.Batch, seq func(i int) int64, lim stitch.Limits) *Request {
	r := &Request{
		Schema:     schema,
		ReceivedAt: receivedAt,
		Events:     make([]Event, len(b.Events)),
		Rejected:   b.Rejected,
		Replaced:   b.Replaced,
	}
	opt := rudder.Options{Namespace: schema, ReceivedAt: receivedAt}
	for i, e := range b.Events {
		r.Events[i] = Event{
			ID:     e.ID,
			Seq:    seq(i),
			Raw:    e.Raw,
			Flat:   stitch.Flatten(e.Body, lim),
			Rudder: rudder.Transform(e.Body, opt),
			Facts:  facts.Of(e.Body),
			Twin:   twin(e.Body),
		}
	}
	return r
}

// twin is the imported event_id of a webhook event's occurrence, "" for an
// imported event or one that records no occurrence.
func twin(body map[string]any) string {
	if history.Imported(body) {
		return ""
	}
	if o, ok := history.OccurrenceOf(body); ok {
		return history.EventID(o)
	}
	return ""
}
