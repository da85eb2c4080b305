package main

import (
	"context"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/postgres"
)

func runReplay(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "replay", "INTEGRATION", "Rebuild INTEGRATION's rudder_events from data._sdc_raw with the current mapping, in batches, while ingest may continue.")
	size := fs.Int("batch", 2000, "rows per batch")
	quiet := fs.Bool("quiet", false, "no progress bar")
	return withAdmin(ctx, e, fs, args, func(svc *admin.Service, rest []string) error {
		if len(rest) != 1 {
			return usagef("usage: cioloader replay INTEGRATION")
		}
		if *size <= 0 || *size > 50000 {
			return usagef("--batch must be between 1 and 50000")
		}
		in, err := svc.Store.FindIntegration(ctx, rest[0])
		if err != nil {
			return err
		}
		store := svc.Store.(*postgres.Store)
		total, err := store.CountEvents(ctx, in.Schema)
		if err != nil {
			return err
		}
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("replay "+in.Schema),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetVisibility(!*quiet),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
		)
		start := time.Now()
		st, err := store.Replay(ctx, in.Schema, *size, func(n int64) { _ = bar.Add64(n) })
		_ = bar.Finish()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "replayed %s: %d rows read, %d rudder_events written, %d skipped, in %s\n",
			in.Schema, st.Rows, st.Written, st.Skipped, time.Since(start).Round(time.Millisecond))
		return nil
	})
}
