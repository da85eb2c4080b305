// Command cioloader turns Customer.io reporting webhooks into Postgres tables.
// main only wires: each subcommand lives in its own file, built with cobra
// (GNU flags anywhere among the arguments, generated help, `completion`).
//
// Conventions every command follows (SPEC 7): --help/-h prints the usage on
// stdout and exits 0; a usage mistake (unknown command or flag, wrong
// arguments) exits 2 and a runtime failure exits 1, each with exactly one
// line on stderr starting "cioloader: ".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
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

// failure is an error a command returned while running (exit 1). Errors
// cobra returns by itself (unknown command, bad flag) are usage errors.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }

// env is what a command gets from main: streams and the environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// run runs `cioloader args...` and returns its exit code.
func run(ctx context.Context, args []string, e env) int {
	root := newRoot(e)
	root.SetArgs(args)
	if len(args) == 0 {
		_ = root.Help()
		return exitCode(usagef("no command given (run cioloader --help)"), e.stderr)
	}
	return exitCode(root.ExecuteContext(ctx), e.stderr)
}

// newRoot builds the command tree.
func newRoot(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "cioloader",
		Short: "Customer.io reporting webhooks into Postgres (Stitch and RudderStack layouts)",
		Long: "cioloader — Customer.io reporting webhooks into Postgres (Stitch and RudderStack layouts).\n\n" +
			"INTEGRATION is an integration's id, name or schema. Configuration comes from the environment, then flags (see README);\n" +
			"without DATABASE_URL every command uses the embedded Postgres under CIOLOADER_DATA_DIR/pg, alongside a running serve.\n" +
			"Exit status: 0 success, 1 failure, 2 usage error (one line on stderr).",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (run %s --help)", err, c.CommandPath())
	})
	root.AddCommand(serveCmd(e), migrateCmd(e), integrationsCmd(e), urlsCmd(e), transformCmd(e),
		replayCmd(e), upgradeCmd(e), importCmd(e), forgetCmd(e), activityCmd(e), dbURLCmd(e), benchCmd(e), healthcheckCmd(e))
	root.AddCommand(accessCmd(e))
	markFailures(root)
	return root
}

// markFailures wraps every command's RunE so that what it returns (other
// than a usage error) is a failure: exit 1.
func markFailures(c *cobra.Command) {
	if runE := c.RunE; runE != nil {
		c.RunE = func(c *cobra.Command, args []string) error {
			err := runE(c, args)
			var ue usageError
			if err == nil || errors.As(err, &ue) {
				return err
			}
			return failure{err}
		}
	}
	for _, sub := range c.Commands() {
		markFailures(sub)
	}
}

// noArgs refuses positional arguments with msg.
func noArgs(msg string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 0 {
			return usagef("%s (run %s --help)", msg, c.CommandPath())
		}
		return nil
	}
}

func exitCode(err error, stderr io.Writer) int {
	var f failure
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &f):
		fmt.Fprintf(stderr, "cioloader: %s\n", oneLine(err.Error()))
		return exitFail
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cioloader: %s\n", oneLine(ue.msg))
		return exitUsage
	}
	// cobra's own (unknown command, with its suggestions on more lines).
	fmt.Fprintf(stderr, "cioloader: %s (run cioloader --help)\n", oneLine(err.Error()))
	return exitUsage
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
