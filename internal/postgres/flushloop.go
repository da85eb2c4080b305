package postgres

import (
	"context"
	"time"
)

// flushEverySecond calls flush once a second until ctx ends, then once more with
// up to 2 s to finish, so counts kept in memory reach the database on shutdown.
// The last-used times and the refused-delivery counts are written this way.
func flushEverySecond(ctx context.Context, flush func(context.Context)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			flush(fctx)
			cancel()
			return
		case <-tick.C:
			flush(ctx)
		}
	}
}
