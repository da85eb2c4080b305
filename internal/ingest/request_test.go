package ingest_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/stitch"
	"github.com/cioloader/cioloader/internal/webhook"
)

// span is one reservation: [first, first+n).
type span struct{ first, n int64 }

// checkDisjointIncreasing fails unless the spans, in the order they were
// handed out, never overlap and never go backwards.
func checkDisjointIncreasing(t *testing.T, spans []span) {
	t.Helper()
	for i := 1; i < len(spans); i++ {
		prev, cur := spans[i-1], spans[i]
		require.Greater(t, cur.first, prev.first+prev.n-1,
			"reservation %d [%d,+%d) overlaps or precedes reservation %d [%d,+%d)", i, cur.first, cur.n, i-1, prev.first, prev.n)
	}
}

// Ensure the sequencer reserves n consecutive values, follows the clock when it
// moves forward, and stays strictly increasing when the clock stalls or steps back.
func TestSequencer(t *testing.T) {
	t.Parallel()

	t.Run("follows the clock", func(t *testing.T) {
		t.Parallel()
		before := time.Now().UnixNano()
		s := ingest.NewSequencer(nil)
		first := s.Next(1)
		require.GreaterOrEqual(t, first, before, "the sequence is receipt time in Unix nanoseconds")
		require.LessOrEqual(t, first, time.Now().UnixNano())
	})

	t.Run("reserves n consecutive values", func(t *testing.T) {
		t.Parallel()
		fixed := time.Unix(1_700_000_000, 0)
		s := ingest.NewSequencer(func() time.Time { return fixed })
		a := s.Next(5)
		require.Equal(t, fixed.UnixNano(), a)
		b := s.Next(3)
		require.Equal(t, a+5, b, "a stalled clock: the next reservation starts right after a's five values")
		c := s.Next(1)
		require.Equal(t, b+3, c)
	})

	t.Run("clock steps back", func(t *testing.T) {
		t.Parallel()
		var tick atomic.Int64
		tick.Store(1_000_000)
		s := ingest.NewSequencer(func() time.Time { return time.Unix(0, tick.Load()) })
		a := s.Next(10)
		tick.Store(10) // NTP step backwards
		b := s.Next(1)
		require.Equal(t, a+10, b)
		tick.Store(5_000_000) // and forwards again: the clock wins once it is ahead
		require.Equal(t, int64(5_000_000), s.Next(1))
	})

	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		for _, clock := range []struct {
			name string
			now  func() time.Time
		}{
			{"real clock", nil},
			{"stalled clock", func() time.Time { return time.Unix(42, 0) }},
			{"coarse clock", func() time.Time { return time.Now().Truncate(time.Millisecond) }},
		} {
			s := ingest.NewSequencer(clock.now)
			const workers, calls = 16, 2000
			var mu sync.Mutex
			var all []span
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					local := make([]span, 0, calls)
					for i := range calls {
						n := int64(1 + (w*calls+i)%7)
						local = append(local, span{s.Next(int(n)), n})
					}
					// Within one goroutine the order of calls is known: strictly increasing.
					checkDisjointIncreasing(t, local)
					mu.Lock()
					all = append(all, local...)
					mu.Unlock()
				})
			}
			wg.Wait()
			// Across goroutines: sorted by first value, no two reservations share a value.
			slices.SortFunc(all, func(a, b span) int { return int(min(max(a.first-b.first, -1), 1)) })
			require.Len(t, all, workers*calls, clock.name)
			checkDisjointIncreasing(t, all)
		}
	})
}

// Ensure Prepare keeps array order in the sequence, one value per event, and
// carries rejections and replacement counts through.
func TestPrepareSequencesInArrayOrder(t *testing.T) {
	t.Parallel()
	b, err := webhook.Decode([]byte(`[{"event_id":"a"},{"nope":1},{"event_id":"b"},{"event_id":"c\u0000"}]`), 100)
	require.NoError(t, err)
	seq := ingest.NewSequencer(func() time.Time { return time.Unix(1, 0) })
	received := time.Unix(1_700_000_000, 0).UTC()
	r := ingest.Prepare("s", received, b, seq, stitch.Limits{MaxDepth: 10, MaxKeys: 1000})
	require.Equal(t, "s", r.Schema)
	require.Equal(t, received, r.ReceivedAt)
	require.Len(t, r.Events, 3)
	require.Len(t, r.Rejected, 1)
	require.Equal(t, 1, r.Replaced)
	ids := []string{r.Events[0].ID, r.Events[1].ID, r.Events[2].ID}
	require.Equal(t, []string{"a", "b", "c\uFFFD"}, ids)
	for i := 1; i < len(r.Events); i++ {
		require.Equal(t, r.Events[i-1].Seq+1, r.Events[i].Seq, "consecutive values in array order")
	}
	// An empty batch still takes a value, so the next request is later.
	empty := ingest.Prepare("s", received, webhook.Batch{}, seq, stitch.Limits{MaxDepth: 10, MaxKeys: 1000})
	require.Empty(t, empty.Events)
	next := ingest.Prepare("s", received, b, seq, stitch.Limits{MaxDepth: 10, MaxKeys: 1000})
	require.Greater(t, next.Events[0].Seq, r.Events[2].Seq+1)
}
