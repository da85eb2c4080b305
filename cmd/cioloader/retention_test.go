package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
)

// Ensure `integrations set-retention` sets and clears the window, and a bad
// DAYS is a usage error (exit 2) that changes nothing.
func TestIntegrationsSetRetentionCLI(t *testing.T) {
	t.Parallel()
	vars := dbVars(t)
	requireOK(t, cli(t, vars, "", "integrations", "create", "Shop One"))

	r := cli(t, vars, "", "integrations", "set-retention", "shop_one", "395")
	requireOK(t, r)
	require.Equal(t, "integration 1 \"Shop One\" keeps 395 days of events: a running cioloader serve deletes older ones in the background\n", r.stdout)
	for _, bad := range []string{"0", "1.5", "36501", "forever", ""} {
		requireFailure(t, cli(t, vars, "", "integrations", "set-retention", "shop_one", bad), exitUsage, "DAYS must be a whole number of days from 1 to 36500, or none")
	}
	requireFailure(t, cli(t, vars, "", "integrations", "set-retention", "shop_one", "--", "-1"), exitUsage, "from 1 to 36500")
	requireFailure(t, cli(t, vars, "", "integrations", "set-retention", "shop_one"), exitUsage, "usage: cioloader integrations set-retention INTEGRATION DAYS|none")
	requireFailure(t, cli(t, vars, "", "integrations", "set-retention", "nope", "30"), exitFail, "nope")

	r = cli(t, vars, "", "integrations", "list", "--json")
	requireOK(t, r)
	require.Equal(t, 395, *decode[[]domain.Integration](t, r.stdout)[0].RetentionDays, "the bad values changed nothing")

	r = cli(t, vars, "", "integrations", "set-retention", "1", "none", "--json")
	requireOK(t, r)
	require.Nil(t, decode[domain.Integration](t, r.stdout).RetentionDays)
	r = cli(t, vars, "", "integrations", "set-retention", "Shop One", "NONE")
	requireOK(t, r)
	require.Equal(t, "integration 1 \"Shop One\" keeps every event (no retention window)\n", r.stdout)
}
