// Command cioloader turns Customer.io reporting webhooks into Postgres tables.
// main only wires: each subcommand lives in its own file.
//
// Conventions every command follows (SPEC 7): --help/-h prints the usage on
// stdout and exits 0; a usage mistake (unknown command or flag, wrong
// arguments) exits 2 and a runtime failure exits 1, each with exactly one
// line on stderr starting "cioloader: ".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cioloader/cioloader/internal/config"
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
		{"integrations", "create NAME | list | delete INTEGRATION", "manage integrations", runIntegrations},
		{"urls", "generate INTEGRATION | list INTEGRATION | revoke URL_ID", "manage webhook URLs", runURLs},
		{"transform", "[FILE]", "print Customer.io events (object, array or NDJSON) as RudderStack events, one per line", runTransform},
		{"replay", "INTEGRATION", "rebuild rudder_events from data._sdc_raw", runReplay},
		{"forget", "INTEGRATION --email E | --list INTEGRATION", "erase a person's events everywhere (GDPR, CCPA); --list shows past erasures", runForget},
		{"db-url", "", "print the database URL in use (starts the embedded Postgres if needed)", runDBURL},
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
	if len(args) == 0 {
		printUsage(e.stdout)
		fmt.Fprintln(e.stderr, "cioloader: no command given (run cioloader --help)")
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(e.stdout)
		return exitOK
	case "help":
		if len(args) == 1 {
			printUsage(e.stdout)
			return exitOK
		}
		// cioloader help COMMAND [SUBCOMMAND] = cioloader COMMAND [SUBCOMMAND] --help
		return run(ctx, append(append([]string{}, args[1:]...), "--help"), e)
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
		fmt.Fprintf(stderr, "cioloader: %s\n", oneLine(ue.msg))
		return exitUsage
	}
	fmt.Fprintf(stderr, "cioloader: %s\n", oneLine(err.Error()))
	return exitFail
}

// oneLine folds a multi-line error (pgx lists each connection attempt on its
// own line, pgcluster appends the server log) into one line: lines are
// trimmed, blank and repeated ones dropped.
func oneLine(s string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "cioloader — Customer.io reporting webhooks into Postgres (Stitch and RudderStack layouts)")
	fmt.Fprintln(w, "\nUsage: cioloader COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %-56s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nINTEGRATION is an integration's id, name or schema.")
	fmt.Fprintln(w, "Run cioloader COMMAND --help for a command's flags. Configuration comes from the environment (see README);")
	fmt.Fprintln(w, "without DATABASE_URL every command uses the embedded Postgres under CIOLOADER_DATA_DIR/pg, alongside a running serve.")
	fmt.Fprintln(w, "Exit status: 0 success, 1 failure, 2 usage error (one line on stderr).")
}

// cliConfigFlags are the configuration flags listed in the help of commands
// other than serve (which lists them all); the others are accepted too.
var cliConfigFlags = map[string]bool{
	"database-url": true, "data-dir": true, "public-url": true, "addr": true, "log-level": true, "log-format": true,
}

// configFlags names every configuration flag.
var configFlags = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range (&config.Config{}).Fields() {
		m[f.Flag] = true
	}
	return m
}()

// newFlags makes a subcommand's flag set. It prints nothing by itself: help
// goes to stdout (see parseWith), and a parse error becomes one usage line.
func newFlags(e env, name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("cioloader "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := e.stdout
		fmt.Fprintf(w, "%s\n\n%s\n", strings.TrimSpace("Usage: cioloader "+name+" [flags] "+args), summary)
		var hidden int
		var listed []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) {
			if name != "serve" && configFlags[f.Name] && !cliConfigFlags[f.Name] {
				hidden++
				return
			}
			listed = append(listed, f)
		})
		if len(listed) > 0 {
			fmt.Fprintln(w, "\nFlags:")
			pf := flag.NewFlagSet("", flag.ContinueOnError)
			pf.SetOutput(w)
			for _, f := range listed {
				pf.Var(f.Value, f.Name, f.Usage)
				pf.Lookup(f.Name).DefValue = f.DefValue
			}
			pf.PrintDefaults()
		}
		if hidden > 0 {
			fmt.Fprintf(w, "\nThe other configuration flags (%d, see cioloader serve --help) are accepted too.\n", hidden)
		}
	}
	return fs
}

// parse parses a flag set whose flags are all registered. Flags may follow
// positional arguments (cioloader urls list shop --json); fs.Args() then
// holds the positional ones.
func parse(fs *flag.FlagSet, args []string) error {
	return parseWith(fs, func() error { return parseInterspersed(fs, args) })
}

// parseWith runs parseFn (which parses fs) and turns its outcome into the
// CLI's conventions: help printed on stdout and flag.ErrHelp returned (exit
// 0); a flag mistake returned as a one-line usage error (exit 2); any other
// error returned unchanged.
func parseWith(fs *flag.FlagSet, parseFn func() error) error {
	usage := fs.Usage
	var flagErr bool
	fs.Usage = func() { flagErr = true } // the flag package calls it on -h and on every parse error
	err := parseFn()
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil && flagErr:
		return usagef("%v (run %s --help)", err, fs.Name())
	}
	return err
}

// parseInterspersed parses args with flags anywhere before a "--".
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	flags, positional := splitArgs(fs, args)
	if err := fs.Parse(flags); err != nil {
		return err
	}
	// Leave fs.Args() = the positional arguments.
	return fs.Parse(append([]string{"--"}, positional...))
}

// splitArgs moves flags (and the values of non-boolean ones) ahead of the
// positional arguments. "-" is positional; everything after "--" is too.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue(fs, name) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, positional
}

// takesValue reports whether flag name consumes the next argument: a
// registered non-boolean flag, or a configuration flag (registered later by
// config.Load). Unknown flags are left for the flag package to refuse.
func takesValue(fs *flag.FlagSet, name string) bool {
	if f := fs.Lookup(name); f != nil {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			return false
		}
		return true
	}
	return configFlags[name]
}
