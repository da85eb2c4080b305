package config_test

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/config"
)

// readmeConfigRows returns the rows of README.md's configuration table (between
// the config-table markers), keyed by the variable name, as their cells.
func readmeConfigRows(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "<!-- config-table:start -->")
	require.True(t, ok, "README.md lost its <!-- config-table:start --> marker")
	table, _, ok := strings.Cut(rest, "<!-- config-table:end -->")
	require.True(t, ok, "README.md lost its <!-- config-table:end --> marker")

	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) == 0 || !strings.HasPrefix(cells[0], "`") {
			continue // header and separator
		}
		require.Len(t, cells, 4, "README config row %q: want | variable | flag | default | meaning |", line)
		env := strings.Trim(cells[0], "`")
		require.NotContains(t, rows, env, "README config table lists %s twice", env)
		rows[env] = cells
	}
	return rows
}

// Ensure README.md's configuration table lists every setting of Config with
// its flag, default and description, and nothing that no longer exists.
func TestReadmeConfigTable(t *testing.T) {
	t.Parallel()
	rows := readmeConfigRows(t)
	fields := (&config.Config{}).Fields()
	require.NotEmpty(t, fields)
	seen := map[string]bool{}
	for _, f := range fields {
		require.NotEmpty(t, f.Env, "a Config field has no env tag")
		require.NotEmpty(t, f.Flag, "%s has no flag tag", f.Env)
		require.NotEmpty(t, f.Desc, "%s has no desc tag", f.Env)
		seen[f.Env] = true
		row, ok := rows[f.Env]
		if !ok {
			t.Errorf("README.md's configuration table has no row for %s (flag --%s, default %q): add it", f.Env, f.Flag, f.Default)
			continue
		}
		require.Equal(t, "`--"+f.Flag+"`", row[1], "flag of %s in README.md", f.Env)
		wantDefault := ""
		if f.Default != "" {
			wantDefault = "`" + f.Default + "`"
		}
		require.Equal(t, wantDefault, row[2], "default of %s in README.md", f.Env)
		require.Contains(t, row[3], f.Desc, "description of %s in README.md (it starts with the desc tag)", f.Env)
	}
	for env := range rows {
		require.True(t, seen[env], "README.md's configuration table lists %s, which Config no longer has", env)
	}
}

func load(t *testing.T, env map[string]string) (*config.Config, error) {
	t.Helper()
	return config.Load(flag.NewFlagSet("test", flag.ContinueOnError), nil, func(k string) string { return env[k] })
}

// Ensure the default body limit is Stitch's 20 MiB exactly (SPEC 3.1): the
// README and the 413 test in httpapi rely on it.
func TestDefaultMaxBodyIs20MiB(t *testing.T) {
	t.Parallel()
	c, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, int64(20<<20), c.MaxBodyBytes)
}

// Ensure an admin token under 32 characters is refused at start with one
// line naming the variable (SPEC 10.12); none at all is allowed (the admin API
// is then off, or the embedded database generates one).
func TestAdminTokenLength(t *testing.T) {
	t.Parallel()
	_, err := load(t, map[string]string{"CIOLOADER_ADMIN_TOKEN": strings.Repeat("a", 31)})
	require.Error(t, err)
	require.Contains(t, err.Error(), "CIOLOADER_ADMIN_TOKEN must be at least 32 characters")
	require.NotContains(t, err.Error(), "\n")
	require.NotContains(t, err.Error(), strings.Repeat("a", 31), "the error must not echo the token")

	_, err = load(t, map[string]string{"CIOLOADER_ADMIN_TOKEN": strings.Repeat("a", 32)})
	require.NoError(t, err)
	_, err = load(t, nil)
	require.NoError(t, err)
}

// Ensure the token cache TTL is a setting with a 1 s default.
func TestTokenCacheTTL(t *testing.T) {
	t.Parallel()
	c, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, time.Second, c.TokenCacheTTL)
	c, err = load(t, map[string]string{"CIOLOADER_TOKEN_CACHE_TTL": "1h"})
	require.NoError(t, err)
	require.Equal(t, time.Hour, c.TokenCacheTTL)
	_, err = load(t, map[string]string{"CIOLOADER_TOKEN_CACHE_TTL": "0s"})
	require.ErrorContains(t, err, "CIOLOADER_TOKEN_CACHE_TTL must be positive")
}

// Ensure Defaults is every field at its tag's default, and valid: tests and
// callers that start from it get what an unconfigured server runs with.
func TestDefaults(t *testing.T) {
	t.Parallel()
	d := config.Defaults()
	loaded, err := config.Load(flag.NewFlagSet("t", flag.ContinueOnError), nil, func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, loaded, d)
	require.Equal(t, 1000, d.MaxColumns)
	require.Equal(t, 100, d.MaxSubtables)
}

// Ensure the bounds handed to stitch and postgres are refused when zero
// rather than replaced by a default somewhere else.
func TestZeroBoundsRefused(t *testing.T) {
	t.Parallel()
	for _, env := range []string{"CIOLOADER_MAX_DEPTH", "CIOLOADER_MAX_KEYS", "CIOLOADER_MAX_COLUMNS", "CIOLOADER_SIGNATURE_MAX_AGE", "CIOLOADER_SIGNATURE_MAX_FUTURE"} {
		zero := "0"
		if strings.Contains(env, "SIGNATURE") {
			zero = "0s"
		}
		_, err := config.Load(flag.NewFlagSet("t", flag.ContinueOnError), nil, func(k string) string {
			if k == env {
				return zero
			}
			return ""
		})
		require.ErrorContains(t, err, env, env)
	}
}
