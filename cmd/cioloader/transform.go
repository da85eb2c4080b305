package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cioloader/cioloader/internal/rudder"
)

func runTransform(_ context.Context, e env, args []string) error {
	fs := newFlags(e, "transform", "[FILE]", "Read Customer.io events (one object, an array, or NDJSON) from FILE (or stdin, also as -) and print each as a RudderStack event, "+
		"one JSON per line: the event, or {\"error\": ...} for an element that is not an object. messageId is deterministic "+
		"(a UUIDv5 of --schema and event_id); pass --received-at for a deterministic receivedAt too. No database needed.")
	schema := fs.String("schema", "customerio", "schema name used for the deterministic messageId (the integration's schema)")
	received := fs.String("received-at", "", "receivedAt as RFC 3339 (default: now)")
	if err := parse(fs, args); err != nil {
		return err
	}
	opt := rudder.Options{Namespace: *schema, ReceivedAt: time.Now().UTC()}
	if *received != "" {
		t, err := time.Parse(time.RFC3339Nano, *received)
		if err != nil {
			return usagef("--received-at must be RFC 3339, such as 2026-01-02T15:04:05Z, not %q", *received)
		}
		opt.ReceivedAt = t.UTC()
	}
	var in io.Reader = e.stdin
	switch {
	case fs.NArg() == 0, fs.NArg() == 1 && fs.Arg(0) == "-":
	case fs.NArg() == 1:
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("open %s: %w", fs.Arg(0), err)
		}
		defer f.Close()
		in = f
	default:
		return usagef("transform takes at most one FILE (run cioloader transform --help)")
	}
	out := bufio.NewWriter(e.stdout)
	if err := rudder.TransformStream(in, out, opt); err != nil {
		return err
	}
	return out.Flush()
}
