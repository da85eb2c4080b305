package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/config"

	"github.com/cioloader/cioloader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// result is what one CLI run gave.
type result struct {
	code           int
	stdout, stderr string
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cli runs `cioloader args...` in-process with only vars as its environment
// and stdin as its standard input.
func cli(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	code := run(ctx, args, env{
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string { return vars[k] },
	})
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("cioloader %s → %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

// requireOK checks a run succeeded.
func requireOK(t *testing.T, r result) {
	t.Helper()
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
}

// requireFailure checks the exit code and that stderr is exactly one line
// "cioloader: ..." containing each of want.
func requireFailure(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	require.Equal(t, code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.True(t, strings.HasPrefix(r.stderr, "cioloader: "), "stderr must start with 'cioloader: ': %q", r.stderr)
	require.True(t, strings.HasSuffix(r.stderr, "\n"), "stderr must end its line: %q", r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr must be exactly one line: %q", r.stderr)
	for _, w := range want {
		require.Contains(t, r.stderr, w)
	}
}

// decode parses JSON output into a T.
func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(s), &v), "output: %s", s)
	return v
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// closedPortURL is a DATABASE_URL nothing listens on: any command that
// touches the database fails with exit 1.
func closedPortURL(t *testing.T) string {
	t.Helper()
	return "postgres://nobody:secret@" + closedAddr(t) + "/nothing?sslmode=disable&connect_timeout=5"
}

func TestNoArgumentsIsAUsageError(t *testing.T) {
	t.Parallel()
	r := cli(t, nil, "")
	requireFailure(t, r, exitUsage, "no command given", "cioloader --help")
	require.Contains(t, r.stdout, "Usage:\n  cioloader [command]")
}

// commandNames lists the top-level commands.
func commandNames() []string {
	var names []string
	for _, c := range newRoot(env{getenv: func(string) string { return "" }}).Commands() {
		names = append(names, c.Name())
	}
	return names
}

func TestHelp(t *testing.T) {
	t.Parallel()
	// Help never touches the database nor creates the data directory.
	dataDir := filepath.Join(t.TempDir(), "never-created")
	vars := map[string]string{"CIOLOADER_DATA_DIR": dataDir}
	names := commandNames()
	require.Len(t, names, 14)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := cli(t, vars, "", args...)
		requireOK(t, r)
		require.Empty(t, r.stderr)
		require.Contains(t, r.stdout, "Usage:\n  cioloader [command]")
		for _, name := range append(names, "completion") {
			require.Contains(t, r.stdout, "  "+name+" ")
		}
	}
	check := func(t *testing.T, want string, args ...string) {
		t.Helper()
		r := cli(t, vars, "", args...)
		requireOK(t, r)
		require.Empty(t, r.stderr)
		require.Contains(t, r.stdout, want)
	}
	for _, name := range names {
		for _, h := range []string{"--help", "-h"} {
			check(t, "Usage:\n  cioloader "+name, name, h)
		}
		check(t, "Usage:\n  cioloader "+name, "help", name)
	}
	groups := map[string][]string{"integrations": {"create", "list", "delete", "set-retention"}, "urls": {"generate", "list", "revoke"}}
	for group, subs := range groups {
		check(t, "Available Commands:", group, "help")
		for _, sub := range subs {
			check(t, "  "+sub, group, "--help")
			for _, h := range []string{"--help", "-h"} {
				check(t, "Usage:\n  cioloader "+group+" "+sub, group, sub, h)
			}
			check(t, "--json", group, sub, "--help")
			check(t, "Usage:\n  cioloader "+group+" "+sub, "help", group, sub)
			// Help wins over missing or extra arguments, wherever it is.
			check(t, "Usage:\n  cioloader "+group+" "+sub, group, sub, "a", "b", "c", "--help")
		}
	}
	check(t, "--received-at", "transform", "--help")
	check(t, "--batch", "replay", "--help")
	check(t, "--tcp", "db-url", "--help")
	check(t, "--json", "migrate", "--help")
	check(t, "--email stringArray", "forget", "--help")
	check(t, "--signature-max-age duration", "serve", "--help") // serve lists every configuration flag
	check(t, "# ", "completion", "bash")                        // shell completion, generated
	_, err := os.Stat(dataDir)
	require.ErrorIs(t, err, os.ErrNotExist, "help must not start the embedded database")
}

// Ensure serve's help lists its configuration flags in GNU form, with their
// default and variable, as generated from config.Config's tags.
func TestServeHelpListsConfigFlags(t *testing.T) {
	t.Parallel()
	r := cli(t, nil, "", "serve", "--help")
	requireOK(t, r)
	require.Regexp(t, `(?m)^\s+--addr string\s+HTTP listen address \(\$CIOLOADER_ADDR\) \(default ":8080"\)$`, r.stdout)
	for _, f := range (&config.Config{}).Fields() {
		require.Contains(t, r.stdout, "--"+f.Flag+" ", f.Env)
	}
	require.NotRegexp(t, `(?m)^\s+-[a-z]{2}`, r.stdout, "no single-dash long flags")
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	// A usage error is found before the database is opened: with an
	// unreachable DATABASE_URL they still exit 2, not 1.
	vars := map[string]string{"DATABASE_URL": closedPortURL(t)}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--frobnicate"}, `unknown flag: --frobnicate`},
		{[]string{"integrations"}, "integrations needs a subcommand"},
		{[]string{"integrations", "rename"}, `unknown integrations subcommand "rename"`},
		{[]string{"integrations", "create"}, "usage: cioloader integrations create NAME"},
		{[]string{"integrations", "create", "a", "b"}, "usage: cioloader integrations create NAME"},
		{[]string{"integrations", "list", "extra"}, "usage: cioloader integrations list"},
		{[]string{"integrations", "delete"}, "usage: cioloader integrations delete INTEGRATION"},
		{[]string{"integrations", "list", "--bogus"}, "unknown flag: --bogus (run cioloader integrations list --help)"},
		{[]string{"integrations", "list", "--json=maybe"}, `invalid argument "maybe" for "--json" flag`},
		{[]string{"urls"}, "urls needs a subcommand"},
		{[]string{"urls", "make"}, `unknown urls subcommand "make"`},
		{[]string{"urls", "generate"}, "usage: cioloader urls generate INTEGRATION"},
		{[]string{"urls", "list"}, "usage: cioloader urls list INTEGRATION"},
		{[]string{"urls", "revoke"}, "usage: cioloader urls revoke URL_ID"},
		{[]string{"urls", "revoke", "abc"}, `URL_ID must be a webhook URL's number`},
		{[]string{"urls", "revoke", "0"}, `URL_ID must be a webhook URL's number`},
		{[]string{"migrate", "sideways"}, "usage: cioloader migrate [up|down N|version]"},
		{[]string{"migrate", "down"}, "usage: cioloader migrate"},
		{[]string{"migrate", "down", "zero"}, "positive number of steps"},
		{[]string{"migrate", "down", "0"}, "positive number of steps"},
		{[]string{"migrate", "version", "2"}, "usage: cioloader migrate"},
		{[]string{"migrate", "--bogus"}, "unknown flag: --bogus (run cioloader migrate --help)"},
		{[]string{"migrate", "--max-events", "many"}, `invalid argument "many" for "--max-events" flag: not a whole number`},
		{[]string{"migrate", "--database-url"}, "flag needs an argument: --database-url"},
		{[]string{"replay"}, "usage: cioloader replay INTEGRATION"},
		{[]string{"replay", "a", "b"}, "usage: cioloader replay INTEGRATION"},
		{[]string{"replay", "a", "--batch", "0"}, "--batch must be between 1 and 50000"},
		{[]string{"replay", "a", "--batch", "x"}, `invalid argument "x" for "--batch" flag`},
		{[]string{"transform", "a", "b"}, "transform takes at most one FILE"},
		{[]string{"transform", "--received-at", "yesterday"}, "--received-at must be RFC 3339"},
		{[]string{"transform", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"db-url", "extra"}, "db-url takes no arguments"},
		{[]string{"serve", "extra"}, "serve takes no arguments"},
		{[]string{"serve", "--addr"}, "flag needs an argument: --addr"},
		{[]string{"serve", "--nope"}, "unknown flag: --nope (run cioloader serve --help)"},
		{[]string{"serve", "-addr", ":1"}, "unknown shorthand flag: 'a' in -addr"}, // GNU: a long flag takes two dashes
		{[]string{"healthcheck", "extra"}, "healthcheck takes no arguments"},
		{[]string{"healthcheck", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag`},
		{[]string{"bench", "--conns", "x"}, `invalid argument "x" for "--conns" flag`},
		{[]string{"import"}, "import needs a subcommand"},
		{[]string{"import", "customerio"}, "usage: cioloader import customerio INTEGRATION"},
		{[]string{"import", "customerio", "x", "--region", "mars"}, "--region must be us or eu"},
		{[]string{"import", "customerio", "x", "--since", "last year"}, `--since "last year" is not a date`},
		{[]string{"import", "customerio", "x", "--since", "2025-06-01", "--until", "2025-01-01"}, "--since must be before --until"},
		{[]string{"import", "customerio", "x", "--api-url", "ftp://proxy"}, "--api-url must be an http:// or https:// URL"},
		{[]string{"import", "customerio", "x"}, "no App API key: set CIOLOADER_CIO_APP_API_KEY"},
		{[]string{"import", "customerio", "x", "--app-api-key-file", "/nonexistent/key"}, "--app-api-key-file"},
		{[]string{"import", "file", "x"}, "usage: cioloader import file INTEGRATION PATH..."},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			t.Parallel()
			r := cli(t, vars, "", tc.args...)
			requireFailure(t, r, exitUsage, tc.want)
			require.NotContains(t, r.stderr, "Usage:", "a usage error is one line; --help shows the usage")
		})
	}
}

func TestRuntimeFailuresExit1WithOneLine(t *testing.T) {
	t.Parallel()
	closed := closedPortURL(t)
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		want []string
	}{
		{"unreachable database", map[string]string{"DATABASE_URL": closed}, []string{"integrations", "list"},
			[]string{"cioloader: database: ", "connection refused"}},
		{"unreachable database, JSON logs", map[string]string{"DATABASE_URL": closed, "CIOLOADER_LOG_FORMAT": "json"},
			[]string{"urls", "list", "shop", "--json"}, []string{"connection refused"}},
		{"unreachable database, migrate", map[string]string{"DATABASE_URL": closed}, []string{"migrate", "version"},
			[]string{"connection refused"}},
		{"unreachable database, replay", map[string]string{"DATABASE_URL": closed}, []string{"replay", "shop"},
			[]string{"connection refused"}},
		{"malformed database URL", map[string]string{"DATABASE_URL": "::not a url"}, []string{"integrations", "list"},
			[]string{"database: ", "parse database url"}},
		{"database URL flag", nil, []string{"integrations", "create", "x", "--database-url", closed},
			[]string{"connection refused"}},
		{"bad setting in the environment", map[string]string{"CIOLOADER_LOG_LEVEL": "loud"}, []string{"integrations", "list"},
			[]string{"configuration: CIOLOADER_LOG_LEVEL must be debug, info, warn or error"}},
		{"bad number in the environment", map[string]string{"CIOLOADER_MAX_EVENTS": "lots"}, []string{"serve"},
			[]string{"configuration: CIOLOADER_MAX_EVENTS=\"lots\": not a whole number"}},
		{"bad setting as a flag", nil, []string{"db-url", "--public-url", "ftp://x"},
			[]string{"configuration: CIOLOADER_PUBLIC_URL must start with http:// or https://"}},
		{"missing transform file", nil, []string{"transform", "/does/not/exist.json"},
			[]string{"open /does/not/exist.json"}},
		{"unreadable transform input", nil, []string{"transform"}, []string{"input is neither JSON nor NDJSON: line 2, column 8"}},
		{"healthcheck on nothing", nil, []string{"healthcheck", "--url", "http://" + closedAddr(t) + "/readyz"},
			[]string{"healthcheck: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdin := ""
			if tc.name == "unreadable transform input" {
				stdin = "{\n  \"a\": ,\n  \"b\": 1\n}\n"
			}
			r := cli(t, tc.vars, stdin, tc.args...)
			requireFailure(t, r, exitFail, tc.want...)
			require.NotContains(t, r.stderr, "secret", "the database password is never printed")
		})
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a", oneLine("a"))
	require.Equal(t, "failed to connect to `x`: host: refused", oneLine("failed to connect to `x`:\n\thost: refused\n\thost: refused\n"))
	require.Equal(t, "start failed; server log: FATAL: boom", oneLine("start failed\nserver log:\n\nFATAL: boom"))
}

// Ensure flags may come anywhere among the arguments, as --flag value or
// --flag=value, and that "--" ends them ("-" is an argument).
func TestFlagsMayFollowArguments(t *testing.T) {
	t.Parallel()
	var got []string
	cmd := &cobra.Command{Use: "x", RunE: func(_ *cobra.Command, args []string) error { got = args; return nil }}
	j := cmd.Flags().Bool("json", false, "")
	n := cmd.Flags().Int("n", 0, "")
	s := cmd.Flags().String("s", "", "")
	cmd.SetArgs([]string{"a", "--json", "b", "--n", "3", "--s=v", "--", "--json", "-"})
	require.NoError(t, cmd.Execute())
	require.True(t, *j)
	require.Equal(t, 3, *n)
	require.Equal(t, "v", *s)
	require.Equal(t, []string{"a", "b", "--json", "-"}, got)

	// The same through a real command: flags before, between and after.
	in := `{"event_id":"e1","object_type":"email","metric":"sent","timestamp":1700000000,"data":{}}`
	want := cli(t, nil, in, "transform", "--schema", "s", "--received-at", "2026-01-02T15:04:05Z").stdout
	require.NotEmpty(t, want)
	for _, args := range [][]string{
		{"transform", "-", "--schema=s", "--received-at", "2026-01-02T15:04:05Z"},
		{"transform", "--received-at=2026-01-02T15:04:05Z", "--schema", "s", "--", "-"},
	} {
		r := cli(t, nil, in, args...)
		requireOK(t, r)
		require.Equal(t, want, r.stdout)
	}
}
