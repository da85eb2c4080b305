package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cioloader/cioloader/internal/bench"
)

func runBench(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "bench", "", "Start a cioloader server (on a fresh embedded Postgres with fsync on, or --database-url) and a bare net/http server, "+
		"run SPEC 9's scenarios against both, print each figure next to its target and update BENCHMARKS.md.")
	dur := fs.Duration("duration", 10*time.Second, "measured time per scenario")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up per scenario")
	dbURL := fs.String("database-url", "", "Postgres to benchmark against (default: a fresh embedded cluster, fsync on)")
	out := fs.String("out", "", "Markdown file whose results section is replaced (e.g. BENCHMARKS.md)")
	if err := parse(fs, args); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := bench.Main(ctx, bench.Config{
		Exe: exe, DatabaseURL: *dbURL, Duration: *dur, Warmup: *warm, Stdout: e.stdout, Log: log,
		Command: strings.TrimSpace("cioloader bench " + strings.Join(args, " ")),
	})
	if err != nil {
		return err
	}
	rep.WriteText(e.stdout)
	if *out != "" {
		if err := bench.UpdateFile(*out, rep); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "\nresults written to %s\n", *out)
	}
	return nil
}
