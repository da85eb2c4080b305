package postgres

import (
	"context"
	"log/slog"
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

// everyInterval runs pass every interval, the first time one interval after
// the start (so a start, or a test, is never slowed by it), until ctx ends. A
// pass that fails is logged as a warning with failed, and the next one runs
// as planned.
func everyInterval(ctx context.Context, every time.Duration, log *slog.Logger, failed string, pass func(context.Context) error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := pass(ctx); err != nil && ctx.Err() == nil {
			log.Warn(failed, "err", err)
		}
	}
}
