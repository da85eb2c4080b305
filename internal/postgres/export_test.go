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
