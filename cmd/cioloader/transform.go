package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/rudder"
)

func transformCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transform [FILE]",
		Short: "print Customer.io events (object, array or NDJSON) as RudderStack events, one per line",
		Long: "Read Customer.io events (one object, an array, or NDJSON) from FILE (or stdin, also as -) and print each as a RudderStack event, " +
			"one JSON per line: the event, or {\"error\": ...} for an element that is not an object. messageId is deterministic " +
			"(a UUIDv5 of --schema and event_id); pass --received-at for a deterministic receivedAt too. No database needed.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("transform takes at most one FILE (run cioloader transform --help)")
			}
			return nil
		},
	}
	schema := cmd.Flags().String("schema", "customerio", "schema name used for the deterministic messageId (the integration's schema)")
	received := cmd.Flags().String("received-at", "", "receivedAt as RFC 3339 (default: now)")
	cmd.RunE = func(_ *cobra.Command, args []string) error { return transform(e, args, *schema, *received) }
	return cmd
}

// transform reads FILE (args[0]; stdin when absent or "-").
func transform(e env, args []string, schema, received string) error {
	opt := rudder.Options{Namespace: schema, ReceivedAt: time.Now().UTC()}
	if received != "" {
		t, err := time.Parse(time.RFC3339Nano, received)
		if err != nil {
			return usagef("--received-at must be RFC 3339, such as 2026-01-02T15:04:05Z, not %q", received)
		}
		opt.ReceivedAt = t.UTC()
	}
	var in io.Reader = e.stdin
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("open %s: %w", args[0], err)
		}
		defer f.Close()
		in = f
	}
	out := bufio.NewWriter(e.stdout)
	if err := rudder.TransformStream(in, out, opt); err != nil {
		return err
	}
	return out.Flush()
}
