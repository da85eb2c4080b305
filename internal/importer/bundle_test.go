package importer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/importer"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// testBundle is a running server on a fresh database with one integration and
// one webhook URL, and an importer writing through that server's own store
// and group commit (the ingest path a webhook delivery takes).
type testBundle struct {
	app  *apptest.App
	in   domain.Integration
	url  admin.GeneratedURL
	im   *importer.Importer
	conn *pgx.Conn
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	a := apptest.Start(t)
	in, u := a.Setup(t, "Stitch Customer.io")
	conn, err := pgx.Connect(context.Background(), a.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	// The import's own group commit, as cioloader import makes it, beside the server's.
	batcher, err := ingest.NewBatcher(a.Store, importer.BatcherConfig(a.Config.BatchMaxEvents, a.Config.BatchStall), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = batcher.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	im := &importer.Importer{Store: a.Store, Submit: batcher, Limits: app.FlattenLimits(a.Config),
		RetryPause: 10 * time.Millisecond}
	return &testBundle{app: a, in: in, url: u, im: im, conn: conn}
}

// count runs a count(*) query.
func (b *testBundle) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.conn.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// tableCounts are the rows of every event table of the schema.
func (b *testBundle) tableCounts(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, tbl := range []string{"data", "rudder_events", "event_facts", "delivery_facts", "_sdc_rejected"} {
		out[tbl] = b.count(t, "SELECT count(*) FROM "+pgx.Identifier{b.in.Schema, tbl}.Sanitize())
	}
	return out
}
