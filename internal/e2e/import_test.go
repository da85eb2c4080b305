package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/cioapi/cioapitest"
	"github.com/cioloader/cioloader/internal/history"
	"github.com/cioloader/cioloader/internal/testdb"
)

const e2eAppKey = "e2e-app-api-key-0123456789"

// importCmd is `cioloader import customerio` against the stand-in at apiURL.
func importCmd(ctx context.Context, db, apiURL, key string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binPath, append([]string{"import", "customerio", "Import Crash", "--api-url", apiURL, "--quiet"}, args...)...)
	cmd.Env = childEnv(map[string]string{"DATABASE_URL": db, "CIOLOADER_CIO_APP_API_KEY": key})
	return cmd
}

// expectedIDs are the event_ids an import of ds stores.
func expectedIDs(t *testing.T, ds []map[string]any) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, d := range ds {
		b, err := json.Marshal(d)
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var obj map[string]any
		require.NoError(t, dec.Decode(&obj))
		m, err := history.Map(obj)
		require.NoError(t, err)
		for _, e := range m.Events {
			out[history.EventID(e.Occurrence)] = true
		}
	}
	return out
}

// SPEC 11: `cioloader import customerio` killed with kill -9 in the middle of
// its walk, started again, continues the same import where it stopped and
// ends with every recorded metric stored once in data and rudder_events.
func TestImportKilledAndResumed(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := startServer(t, "import", map[string]string{"DATABASE_URL": db}, 30*time.Second)
	in, _ := srv.setup(t, "Import Crash")
	ds := cioapitest.Generate(9000, 11, time.Now().AddDate(0, -13, 0), time.Now().Add(-time.Hour))
	api := cioapitest.New(cioapitest.Options{Key: e2eAppKey, Deliveries: ds})
	t.Cleanup(api.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	count := func(sql string) int64 {
		var n int64
		require.NoError(t, conn.QueryRow(ctx, sql).Scan(&n))
		return n
	}

	first := importCmd(ctx, db, api.URL, e2eAppKey)
	var out bytes.Buffer
	first.Stdout, first.Stderr = &out, &out
	require.NoError(t, first.Start())
	waitFor(t, 60*time.Second, "the first pages committed", func() bool {
		return count(`SELECT coalesce(sum(events_written), 0) FROM cioloader.imports`) > 0
	})
	require.NoError(t, first.Process.Kill())
	_ = first.Wait()
	written := count(`SELECT count(*) FROM ` + in.Schema + `.data`)
	requests := api.Requests()
	t.Logf("killed after %d requests with %d events stored: %s", requests, written, out.String())

	second := importCmd(ctx, db, api.URL, e2eAppKey, "--json")
	res, err := second.CombinedOutput()
	require.NoError(t, err, string(res))
	var imp struct {
		ID            int64  `json:"id"`
		State         string `json:"state"`
		EventsWritten int64  `json:"events_written"`
	}
	require.NoError(t, json.Unmarshal(res, &imp), string(res))
	require.Equal(t, "done", imp.State)
	require.EqualValues(t, 1, count(`SELECT count(*) FROM cioloader.imports`), "the killed import was continued, not started anew")
	require.Less(t, api.Requests()-requests, requests+20, "the second run did not start from the beginning")

	want := expectedIDs(t, ds)
	for _, table := range []string{"data", "rudder_events", "event_facts"} {
		rows, err := conn.Query(ctx, "SELECT event_id FROM "+in.Schema+"."+table)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Len(t, got, len(want), table)
		for _, id := range got {
			require.True(t, want[id], "%s holds %s, not an event of the history", table, id)
		}
	}
}

// A refused key: one line naming the cause, exit 1, nothing written. No key: exit 2.
func TestImportRefusedKeyCLI(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	runCLI(t, map[string]string{"DATABASE_URL": db}, "integrations", "create", "Import Crash")
	api := cioapitest.New(cioapitest.Options{Key: e2eAppKey})
	t.Cleanup(api.Close)
	ctx := context.Background()

	cmd := importCmd(ctx, db, api.URL, "not-the-key")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	line := strings.TrimSpace(stderr.String())
	require.NotContains(t, line, "\n")
	require.Contains(t, line, "401")
	require.Contains(t, line, "region")
	require.NotContains(t, line, "not-the-key", "the key is never printed")

	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM cioloader.imports`).Scan(&n))
	require.Zero(t, n)

	cmd = importCmd(ctx, db, api.URL, "")
	stderr.Reset()
	cmd.Stderr = &stderr
	require.ErrorAs(t, cmd.Run(), &exit)
	require.Equal(t, 2, exit.ExitCode(), stderr.String())
	require.Contains(t, stderr.String(), "CIOLOADER_CIO_APP_API_KEY")
}
