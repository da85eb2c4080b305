// Command cioloader turns Customer.io reporting webhooks into Postgres tables.
// main only wires: each subcommand lives in its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes (SPEC 7).
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError is a mistake in how the command was called (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// env is what a command gets from main: streams and the environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "", "run the HTTP server (embedded Postgres when DATABASE_URL is unset)", runServe},
		{"migrate", "[up|down N|version]", "apply, roll back or show control-schema migrations", runMigrate},
		{"integrations", "create NAME | list | delete ID", "manage integrations", runIntegrations},
		{"urls", "generate INTEGRATION | list INTEGRATION | revoke URL_ID", "manage webhook URLs", runURLs},
		{"transform", "[FILE]", "print Customer.io events (object, array or NDJSON) as RudderStack events, one per line", runTransform},
		{"replay", "INTEGRATION", "rebuild rudder_events from data._sdc_raw", runReplay},
		{"bench", "[flags]", "load-test a server and report events/s, latency and memory", runBench},
		{"healthcheck", "[--url URL]", "exit 0 when the server answers 200 (container healthchecks)", runHealthcheck},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(c.run(ctx, e, args[1:]), e.stderr)
		}
	}
	fmt.Fprintf(e.stderr, "cioloader: unknown command %q (run cioloader --help)\n", args[0])
	return exitUsage
}

func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cioloader: %s\n", ue.msg)
		return exitUsage
	}
	fmt.Fprintf(stderr, "cioloader: %s\n", oneLine(err.Error()))
	return exitFail
}

func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "cioloader — Customer.io reporting webhooks into Postgres (Stitch and RudderStack layouts)")
	fmt.Fprintln(w, "\nUsage: cioloader COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %-52s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun cioloader COMMAND --help for a command's flags. Configuration comes from the environment (see README).")
}

// newFlags makes a subcommand's flag set; parse errors become usage errors.
func newFlags(e env, name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("cioloader "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: cioloader %s [flags] %s\n\n%s\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	return nil
}
