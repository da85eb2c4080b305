package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cioloader/cioloader/internal/bench"
)

func benchCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "load-test a server and report events/s, latency and memory",
		Args:  noArgs("bench takes no arguments, only flags"),
		Long: "Start a cioloader server (on a fresh embedded Postgres with fsync on, or --database-url) and a bare net/http server, " +
			"run SPEC 9's scenarios against both, print each figure next to its target and update BENCHMARKS.md.",
	}
	fs := cmd.Flags()
	dur := fs.Duration("duration", 10*time.Second, "measured time per scenario")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up per scenario")
	dbURL := fs.String("database-url", "", "Postgres to benchmark against (default: a fresh embedded cluster, fsync on)")
	out := fs.String("out", "", "Markdown file whose results section is replaced (e.g. BENCHMARKS.md)")
	urls := fs.StringArray("url", nil, "only load this existing ingest URL (one scenario: --conns, --per-request) and print the result; "+
		"given more than once, each connection sends its requests to the URLs in turn and a line is printed per URL (an A/B in one run)")
	conns := fs.Int("conns", 50, "with --url: concurrent connections")
	per := fs.Int("per-request", 1, "with --url: events per request")
	dataset := fs.Int64("dataset-events", 1_000_000, "read side: realistic events loaded into stitch_customerio before the README queries are timed, e.g. 10000000 for a year's growth (0: skip)")
	vacWait := fs.Duration("autovacuum-wait", 15*time.Minute, "read side: longest wait for autovacuum between the two timings of the README queries")
	readme := fs.String("readme", "README.md", "the README whose example queries are timed")
	readOnly := fs.Bool("read-side-only", false, "skip the throughput scenarios; run only the read side")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		if len(*urls) > 0 {
			if *conns < 1 || *per < 1 || *per > 10000 {
				return usagef("--conns must be ≥ 1 and --per-request between 1 and 10000")
			}
			results := bench.RunAlternating(ctx, bench.Scenario{Name: "url", Conns: *conns, PerReq: *per, Duration: *dur, Warmup: *warm,
				RunID: fmt.Sprint(time.Now().UnixNano())}, *urls)
			for _, res := range results {
				prefix := ""
				if len(results) > 1 {
					prefix = res.Scenario.URL + "  "
				}
				fmt.Fprintf(e.stdout, "%sevents/s %.0f  requests/s %.0f  p50 %s  p99 %s  max %s  errors %d %v\n",
					prefix, res.EventsPerSec(), res.ReqPerSec(), res.P50, res.P99, res.Max, res.Errors, res.ErrorKinds)
			}
			return nil
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		rep, err := bench.Main(ctx, bench.Config{
			Exe: exe, DatabaseURL: *dbURL, Duration: *dur, Warmup: *warm, Stdout: e.stdout, Log: log,
			DatasetEvents: *dataset, Readme: *readme, SkipLoad: *readOnly, AutovacuumWait: *vacWait,
			Command: commandLine(cmd),
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
	return cmd
}

// commandLine is how cmd was called: its path and the flags given.
func commandLine(cmd *cobra.Command) string {
	line := cmd.CommandPath()
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if line += " --" + f.Name; f.Value.Type() != "bool" {
			line += " " + f.Value.String()
		}
	})
	return line
}
