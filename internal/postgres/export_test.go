package postgres

import (
	"context"
	"time"
)

// FlushActivity and PruneActivity run once what Run does about once a second
// and once an hour, so tests need not wait for the loop.
func (s *Store) FlushActivity(ctx context.Context) { s.activity.flush(ctx) }

func (s *Store) PruneActivity(ctx context.Context, now time.Time) error {
	return s.activity.prune(ctx, now)
}

// CachedTexts is how many statement texts the writer keeps outside the
// tables' shapes (those depending on a schema's name alone).
func (s *Store) CachedTexts() int {
	n := 0
	s.writer.texts.m.Range(func(any, any) bool { n++; return true })
	return n
}

// WaitWarehouse returns when the warehouse view changes running in the background
// are done, so a test can read the views a write made.
func (s *Store) WaitWarehouse() { s.writer.wh.wait() }

// FactsSQL is each event_facts column's SQL over r (the raw jsonb), and each id
// the events view reads from _sdc_raw, for the test holding facts.Of equal to it.
func FactsSQL() [][2]string {
	out := append([][2]string{}, factColumns...)
	for _, c := range rawIDs {
		out = append(out, [2]string{c[0], "(r" + c[1] + ")"})
	}
	return out
}

// ErasureHashesSQL is the writer's erasure_hashes expression over the
// identifier values u.c0 … u.c7 (facts.Facts.Identifiers' order).
func ErasureHashesSQL() string { return erasureHashesOf(0) }

// TextParam is the writer's text[] parameter type; RegisterTextParam installs
// its encoder on a connection's type map, as Open does.
type TextParam = textParam

var RegisterTextParam = registerTextParam
