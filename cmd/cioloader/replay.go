package main

import (
	"context"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// replaySummary is what replay prints with --json.
type replaySummary struct {
	Schema  string  `json:"schema"`
	Rows    int64   `json:"rows"`
	Written int64   `json:"written"`
	Skipped int64   `json:"skipped"`
	Seconds float64 `json:"seconds"`
}

func replayCmd(e env) *cobra.Command {
	var size int
	var quiet bool
	cmd := adminCommand(e, "replay INTEGRATION", "rebuild rudder_events from data._sdc_raw",
		"Rebuild INTEGRATION's rudder_events from data._sdc_raw with the current mapping, in batches, with a progress bar on stderr. "+
			"Safe while ingest continues: a newer copy of an event is never overwritten.",
		func(c *cobra.Command, args []string) error {
			if err := exactArgs(1)(c, args); err != nil {
				return err
			}
			if size <= 0 || size > 50000 {
				return usagef("--batch must be between 1 and 50000")
			}
			return nil
		},
		func(ctx context.Context, c *adminCall) error { return replay(ctx, c, size, quiet) })
	cmd.Flags().IntVar(&size, "batch", 2000, "rows per batch (one transaction each)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

// replay rebuilds rudder_events; the store does the work (replay is
// maintenance, not an admin use case), admin.Service resolves INTEGRATION.
func replay(ctx context.Context, c *adminCall, size int, quiet bool) error {
	e, store := c.e, c.store
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	total, err := store.CountEvents(ctx, in.Schema)
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	if !quiet && total > 0 {
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("replay "+in.Schema),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
		)
	}
	var done int64
	progress := func(n int64) {
		if bar == nil {
			return
		}
		// Ingest may add rows while the replay runs.
		if done += n; done > total {
			total = done
			bar.ChangeMax64(total)
		}
		_ = bar.Add64(n)
	}
	start := time.Now()
	st, err := store.Replay(ctx, in.Schema, size, progress)
	if bar != nil {
		if err != nil {
			_ = bar.Clear() // the error gets the line to itself
		} else {
			_ = bar.Finish()
		}
	}
	if err != nil {
		return err
	}
	sum := replaySummary{Schema: in.Schema, Rows: st.Rows, Written: st.Written, Skipped: st.Skipped, Seconds: time.Since(start).Seconds()}
	if c.asJSON {
		return printJSON(e.stdout, sum)
	}
	fmt.Fprintf(e.stdout, "replayed %s: %d rows read, %d rudder_events written, %d skipped, in %s\n",
		in.Schema, st.Rows, st.Written, st.Skipped, time.Since(start).Round(time.Millisecond))
	return nil
}
