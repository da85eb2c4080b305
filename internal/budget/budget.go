// Package budget bounds the memory that requests in flight may hold, with a
// cap per key (an integration) so that one sender cannot take all of it.
// Memory is charged as bytes actually arrive (Grow); a request that declares
// its size may first be admitted for it (Promise), so that concurrent large
// requests queue instead of all being cut off half-read. A promise lasts only
// as long as its request, which the caller bounds in time.
package budget

import (
	"errors"
	"sync"
)

// EventBytes is charged per decoded event on top of the body's multiple: the
// fixed cost of an event (maps, flattened columns, Rudder form) that small
// events do not pay for with their JSON bytes. Measured: ~1.3 KiB for a
// 60-byte event, all of it counted when 10,000 of them arrive in one array.
const EventBytes = 1 << 10

// ErrFull and ErrShare say why a charge was refused: the whole budget is in
// use, or the key already holds its share. Both are transient.
var (
	ErrFull  = errors.New("in-flight memory budget exhausted")
	ErrShare = errors.New("this key holds its whole share of the in-flight memory budget")
)

// Budget is safe for concurrent use. The zero value is not usable: see New.
type Budget struct {
	total, share int64

	mu    sync.Mutex
	used  int64
	byKey map[int64]int64
}

// New returns a budget of total bytes of which one key may hold at most share.
func New(total, share int64) *Budget {
	return &Budget{total: total, share: min(share, total), byKey: map[int64]int64{}}
}

// Used is what all leases hold and were promised now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Check says whether key could be charged n more bytes now (nil), or why not.
func (b *Budget) Check(key, n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.check(key, n)
}

func (b *Budget) check(key, n int64) error {
	if b.byKey[key]+n > b.share {
		return ErrShare
	}
	if b.used+n > b.total {
		return ErrFull
	}
	return nil
}

// Lease starts charging a request of key; Release it once the request is answered.
func (b *Budget) Lease(key int64) *Lease { return &Lease{b: b, key: key} }

// Lease is one request's charge. It is not safe for concurrent use.
type Lease struct {
	b        *Budget
	key      int64
	held     int64 // charged: bytes that arrived
	promised int64 // admitted for, not arrived yet
}

// Promise admits the lease for n bytes that have not arrived yet, or returns
// ErrFull or ErrShare. Grow draws on the promise before anything else.
func (l *Lease) Promise(n int64) error {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.take(l.key, n); err != nil {
		return err
	}
	l.promised += n
	return nil
}

// Grow charges n more bytes, or nothing and ErrFull or ErrShare.
func (l *Lease) Grow(n int64) error {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	fromPromise := min(n, l.promised)
	if err := b.take(l.key, n-fromPromise); err != nil {
		return err
	}
	l.promised -= fromPromise
	l.held += n
	return nil
}

// take counts n more bytes for key if they fit. b.mu is held.
func (b *Budget) take(key, n int64) error {
	if err := b.check(key, n); err != nil {
		return err
	}
	b.used += n
	b.byKey[key] += n
	return nil
}

// Held is what the lease is charged (its promise apart).
func (l *Lease) Held() int64 { return l.held }

// Release returns everything the lease holds and was promised; calling it
// again does nothing.
func (l *Lease) Release() {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	n := l.held + l.promised
	b.used -= n
	if b.byKey[l.key] -= n; b.byKey[l.key] == 0 {
		delete(b.byKey, l.key)
	}
	l.held, l.promised = 0, 0
}
