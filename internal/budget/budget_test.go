package budget_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/budget"
)

// Ensure a key is capped at its share while other keys still get the rest,
// and that the total is never exceeded.
func TestShareAndTotal(t *testing.T) {
	t.Parallel()
	b := budget.New(100, 60)
	a1, a2 := b.Lease(1), b.Lease(1)
	require.NoError(t, a1.Grow(50))
	require.ErrorIs(t, a2.Grow(11), budget.ErrShare, "key 1 would hold 61 > 60")
	require.NoError(t, a2.Grow(10))
	require.ErrorIs(t, b.Check(1, 1), budget.ErrShare)
	require.NoError(t, b.Check(2, 40))

	other := b.Lease(2)
	require.NoError(t, other.Grow(40), "the rest is left for key 2")
	require.ErrorIs(t, b.Lease(3).Grow(1), budget.ErrFull)
	require.EqualValues(t, 100, b.Used())

	a1.Release()
	a1.Release() // twice is harmless
	require.EqualValues(t, 50, b.Used())
	require.NoError(t, b.Lease(3).Grow(50))
}

// Ensure a refused charge leaves nothing behind.
func TestRefusedGrowChargesNothing(t *testing.T) {
	t.Parallel()
	b := budget.New(10, 10)
	l := b.Lease(1)
	require.NoError(t, l.Grow(8))
	require.ErrorIs(t, l.Grow(3), budget.ErrShare)
	require.EqualValues(t, 8, l.Held())
	require.EqualValues(t, 8, b.Used())
	l.Release()
	require.EqualValues(t, 0, b.Used())
	require.NoError(t, b.Check(1, 10))
}

// Ensure concurrent leases never push the total past the budget and all of
// it comes back.
func TestConcurrentLeases(t *testing.T) {
	t.Parallel()
	b := budget.New(1000, 1000)
	var wg sync.WaitGroup
	for k := range 8 {
		wg.Go(func() {
			for range 200 {
				l := b.Lease(int64(k))
				for l.Grow(7) == nil {
					if u := b.Used(); u > 1000 {
						t.Errorf("used %d > 1000", u)
					}
				}
				l.Release()
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 0, b.Used())
}

// Ensure a promise admits a request for its declared size: others are
// refused while it stands, bytes that arrive draw on it, and Release returns
// both.
func TestPromise(t *testing.T) {
	t.Parallel()
	b := budget.New(100, 100)
	l := b.Lease(1)
	require.NoError(t, l.Promise(60))
	require.ErrorIs(t, b.Lease(2).Promise(41), budget.ErrFull, "the promise counts")
	require.NoError(t, l.Grow(50))
	require.EqualValues(t, 50, l.Held())
	require.EqualValues(t, 60, b.Used(), "drawn from the promise, not added")
	require.NoError(t, l.Grow(20), "past the promise, charged as it arrives")
	require.EqualValues(t, 70, b.Used())
	l.Release()
	require.EqualValues(t, 0, b.Used())
}
