package main

import (
	"context"
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/postgres"
)

// upgradeSummary is what upgrade prints with --json.
type upgradeSummary struct {
	Schema       string   `json:"schema"`
	RawRewritten bool     `json:"raw_rewritten"`
	RawRows      int64    `json:"raw_rows"`
	RawSeconds   float64  `json:"raw_seconds"`
	FactsNarrow  bool     `json:"facts_rewritten"`
	FactsDropped []string `json:"facts_columns_dropped"`
	FactsSeconds float64  `json:"facts_seconds"`
	ErasureMoved bool     `json:"erasure_index_moved"`
}

func upgradeCmd(e env) *cobra.Command {
	var quiet bool
	cmd := adminCommand(e, "upgrade INTEGRATION", "rewrite an older integration's tables to this release's storage (_sdc_raw json, narrow event_facts, erasure hashes)",
		"Rewrite INTEGRATION's tables, made by an earlier release, to this release's storage: data._sdc_raw from jsonb "+
			"to json (the table is copied with every event's JSON compacted, then swapped in with its views), and event_facts "+
			"without the columns it no longer stores and with every event's erasure hashes, after which the erasure index on "+
			"_sdc_raw is dropped (VACUUM FULL). Writes to data wait while it runs, so ingest answers 503 "+
			"and Customer.io retries; analysts' reads go on until the swap. Under 12 minutes at 10 M events on 2 cores (README, "+
			"\"Upgrading storage\"). An integration already upgraded is left as it is.",
		exactArgs(1),
		func(ctx context.Context, c *adminCall) error { return upgrade(ctx, c, quiet) })
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

// upgrade runs the store's storage upgrade; like replay it is maintenance, not an
// admin use case, and admin.Service resolves INTEGRATION.
func upgrade(ctx context.Context, c *adminCall, quiet bool) error {
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
			progressbar.OptionSetDescription("upgrade "+in.Schema+": data"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
	}
	progress := func(n int64) {
		if bar != nil {
			_ = bar.Add64(n)
		}
	}
	start := time.Now()
	up, err := store.UpgradeStorage(ctx, in.Schema, progress)
	if bar != nil {
		_ = bar.Clear()
	}
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, upgradeSummary{Schema: up.Schema, RawRewritten: up.RawDone, RawRows: up.RawRows,
			RawSeconds: up.RawTook.Seconds(), FactsNarrow: up.FactsDone, FactsDropped: up.FactsFreed, FactsSeconds: up.FactsTook.Seconds(), ErasureMoved: up.ErasureMoved})
	}
	fmt.Fprintln(e.stdout, describeUpgrade(up, time.Since(start)))
	return nil
}

func describeUpgrade(up postgres.StorageUpgrade, took time.Duration) string {
	if !up.RawDone && !up.FactsDone {
		return fmt.Sprintf("upgrade %s: nothing to do (_sdc_raw is json, event_facts is narrow and holds the erasure hashes)", up.Schema)
	}
	out := fmt.Sprintf("upgraded %s in %s:", up.Schema, took.Round(time.Millisecond))
	if up.FactsDone { // first: see UpgradeStorage
		out += fmt.Sprintf(" event_facts rewritten (%d columns dropped) in %s;", len(up.FactsFreed), up.FactsTook.Round(time.Millisecond))
	}
	if up.ErasureMoved {
		out += " erasures find people by event_facts_erasure (data_erasure_idx dropped);"
	}
	if up.RawDone {
		out += fmt.Sprintf(" data._sdc_raw is json (%d rows rewritten in %s);", up.RawRows, up.RawTook.Round(time.Millisecond))
	}
	return out[:len(out)-1]
}
