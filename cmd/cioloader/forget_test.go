package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/testdb"
)

func TestForgetCLI(t *testing.T) {
	t.Parallel()
	dbURL := testdb.New(t)
	vars := map[string]string{"DATABASE_URL": dbURL}
	app := apptest.StartOn(t, dbURL)
	in, u := app.Setup(t, "Forget Shop")
	post := func(body string) {
		status, resp := app.Post(t, u.URL, body)
		require.Equal(t, http.StatusOK, status, string(resp))
	}
	anna := `[{"event_id":"a1","object_type":"email","metric":"opened","data":{"identifiers":{"id":"user-A","email":"Anna@Example.com"}}},
		{"event_id":"a2","event_type":"email_sent","data":{"customer_id":"user-A"}}]`
	post(anna)
	post(`{"event_id":"b1","object_type":"email","metric":"opened","data":{"identifiers":{"id":"user-B","email":"bob@example.com"}}}`)

	requireFailure(t, cli(t, vars, "", "forget", "forget_shop"), exitUsage, "name the person")
	requireFailure(t, cli(t, vars, "", "forget", "--list", "forget_shop", "--email", "a@b"), exitUsage, "--list takes no")
	requireFailure(t, cli(t, vars, "", "forget", "forget_shop", "--email", "nope"), exitFail, "not an email address")
	requireFailure(t, cli(t, vars, "", "forget", "no_such", "--email", "a@b.c"), exitFail, `no integration has the id, name or schema "no_such"`)

	r := cli(t, vars, "", "forget", "forget_shop", "--email", "ANNA@example.com", "--customer-id", "user-A")
	requireOK(t, r)
	require.Regexp(t, `^erasure 1 on forget_shop: deleted _sdc_rejected 0, data 2, delivery_facts 0, event_facts 2, rudder_events 2; re-delivered events of this person are dropped until \S+Z\n$`, r.stdout)

	conn := app.DB(t)
	require.Equal(t, int64(1), apptest.Count(t, conn, "forget_shop.data"), "Bob stays")
	post(anna)
	require.Equal(t, int64(1), apptest.Count(t, conn, "forget_shop.data"), "a re-delivery is dropped")
	var dropped int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM forget_shop._sdc_rejected WHERE reason LIKE '%erased on request (erasure 1)%' AND record IS NULL`).Scan(&dropped))
	require.Equal(t, int64(2), dropped)

	r = cli(t, vars, "", "forget", "--list", "forget_shop")
	requireOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^1\s+\S+Z\s+cli\s+\S+… \S+…\s+\S+Z\s+_sdc_rejected 0, data 2, delivery_facts 0, event_facts 2, rudder_events 2$`, lines[1])
	require.NotContains(t, r.stdout, "anna")

	r = cli(t, vars, "", "forget", "--json", "--list", in.Schema)
	requireOK(t, r)
	list := decode[[]domain.Erasure](t, r.stdout)
	require.Len(t, list, 1)
	require.Equal(t, "cli", list[0].RequestedBy)
	require.Len(t, list[0].IdentifierHashes, 2)
}
