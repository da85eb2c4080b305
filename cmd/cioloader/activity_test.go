package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/admin"
)

// Ensure `cioloader activity` prints every hour of the window with its counts
// by object type, then the events by name, or the same as JSON; a bad --hours
// is a usage error before the database is opened.
func TestActivityCLI(t *testing.T) {
	t.Parallel()
	vars := dbVars(t)
	requireOK(t, cli(t, vars, "", "integrations", "create", "Shop"))
	now := time.Now().UTC().Truncate(time.Hour)
	conn, err := pgx.Connect(context.Background(), vars["DATABASE_URL"])
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), `INSERT INTO cioloader.activity VALUES
		(1, $1::timestamptz, 'email', 'opened', 3, $1 + interval '5 minutes'), (1, $1, 'push', 'sent', 1, $1),
		(1, $1 - interval '2 hours', '', '', 2, $1 - interval '2 hours')`, now)
	require.NoError(t, err)

	r := cli(t, vars, "", "activity", "shop", "--hours", "3")
	requireOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Equal(t, "Shop (shop): 6 events in the last 3 hours", lines[0])
	require.Regexp(t, `^HOUR \(UTC\)\s+EVENTS\s+BY OBJECT TYPE$`, lines[2])
	require.Regexp(t, `^\S+ \S+\s+2\s+\(no object_type\) 2$`, lines[3])
	require.Regexp(t, `^\S+ \S+\s+0\s+-$`, lines[4])
	require.Regexp(t, `^`+now.Format("2006-01-02 15:04")+`\s+4\s+email 3, push 1$`, lines[5])
	require.Regexp(t, `^EVENT\s+EVENTS\s+LAST RECEIVED$`, lines[7])
	require.Regexp(t, `^Email Opened\s+3\s+\S+Z$`, lines[8])
	require.Regexp(t, `^Unknown Event\s+2\s+`, lines[9])
	require.Regexp(t, `^Push Sent\s+1\s+`, lines[10])

	r = cli(t, vars, "", "activity", "1", "--json")
	requireOK(t, r)
	a := decode[admin.Activity](t, r.stdout)
	require.Len(t, a.Buckets, admin.DefaultActivityHours)
	require.EqualValues(t, 6, a.Total)

	for _, bad := range []string{"0", "721"} {
		requireFailure(t, cli(t, vars, "", "activity", "shop", "--hours", bad), exitUsage, "--hours must be between 1 and 720")
	}
	requireFailure(t, cli(t, vars, "", "activity"), exitUsage, "usage: cioloader activity INTEGRATION")
	requireFailure(t, cli(t, vars, "", "activity", "nope"), exitFail, "nope")
}
