package testdb_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// isolated runs in two parallel tests: each must see only its own write.
func isolated(t *testing.T, name string) {
	t.Parallel()
	url := testdb.New(t)
	conn := connect(t, url)
	ctx := t.Context()

	var db string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	require.NotEqual(t, "postgres", db)

	var table *string
	require.NoError(t, conn.QueryRow(ctx, "SELECT to_regclass('cioloader.integrations')::text").Scan(&table))
	require.NotNil(t, table, "control schema migrated")

	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM cioloader.integrations").Scan(&n))
	require.Zero(t, n, "starts empty")

	_, err := conn.Exec(ctx, "INSERT INTO cioloader.integrations (name, schema_name) VALUES ($1, $1)", name)
	require.NoError(t, err)
	// Give the other test time to write too, so a shared database would show.
	time.Sleep(300 * time.Millisecond)
	var names []string
	rows, err := conn.Query(ctx, "SELECT name FROM cioloader.integrations")
	require.NoError(t, err)
	names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{name}, names)
}

func TestIsolatedA(t *testing.T) { isolated(t, "a") }
func TestIsolatedB(t *testing.T) { isolated(t, "b") }

func TestManyParallelClones(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			conn := connect(t, testdb.New(t))
			_, err := conn.Exec(t.Context(), "INSERT INTO cioloader.integrations (name, schema_name) VALUES ('x', $1)", strconv.Itoa(i))
			require.NoError(t, err)
		})
	}
}

func TestServerAndDrop(t *testing.T) {
	admin, cluster := testdb.Server(t)
	if cluster != nil {
		require.Equal(t, cluster.URL("postgres"), admin)
	}
	var name string
	t.Run("inner", func(t *testing.T) {
		conn := connect(t, testdb.New(t))
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name))
	})
	// The inner test's cleanups ran: its database is gone.
	var exists bool
	require.NoError(t, connect(t, admin).QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	require.False(t, exists)
}

// TestOutage stops and restarts the local cluster; it is not parallel, so
// it runs before the parallel tests start.
func TestOutage(t *testing.T) {
	_, cluster := testdb.Server(t)
	if cluster == nil {
		t.Skip("not a local cluster")
	}
	url := testdb.New(t)
	ctx := t.Context()
	require.NoError(t, cluster.Stop(ctx))
	_, err := pgx.Connect(ctx, url)
	require.Error(t, err)
	require.NoError(t, cluster.Start(ctx))
	conn := connect(t, url)
	require.NoError(t, conn.Ping(ctx))
}

func TestDatabaseURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://postgres@/x?host=/tmp/a/run&port=5&sslmode=disable",
		testdb.DatabaseURL("postgres://postgres@/postgres?host=/tmp/a/run&port=5&sslmode=disable", "x"))
	require.Equal(t, "postgres://u:p@h:1/x?sslmode=disable", testdb.DatabaseURL("postgres://u:p@h:1/?sslmode=disable", "x"))
	require.Equal(t, "host=h dbname='x'", testdb.DatabaseURL("host=h", "x"))
}
