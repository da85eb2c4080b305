package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

type activityBundle struct {
	ctx   context.Context
	url   string
	a, b  *postgres.Store // two replicas on one database
	shop  domain.Integration
	other domain.Integration
}

func setupActivity(t *testing.T) *activityBundle {
	t.Helper()
	ctx := context.Background()
	b := &activityBundle{ctx: ctx, url: testdb.New(t)}
	for _, s := range []**postgres.Store{&b.a, &b.b} {
		store, err := postgres.Open(ctx, b.url, storeConfig(4), slog.New(slog.DiscardHandler), nil)
		require.NoError(t, err)
		t.Cleanup(store.Close)
		*s = store
	}
	var err error
	b.shop, err = b.a.CreateIntegration(ctx, "Shop")
	require.NoError(t, err)
	b.other, err = b.a.CreateIntegration(ctx, "Other")
	require.NoError(t, err)
	return b
}

func key(ot, m string) domain.ActivityKey { return domain.ActivityKey{ObjectType: ot, Metric: m} }

// Ensure counts recorded on two replicas add up in the table, by receipt hour
// (UTC) and key, with the latest last_at; a second flush adds only what was
// recorded since, and an unknown integration is dropped.
func TestActivityFlushAddsAndMerges(t *testing.T) {
	t.Parallel()
	b := setupActivity(t)
	hour := time.Now().UTC().Truncate(time.Hour)
	t1, t2, t3 := hour.Add(time.Minute), hour.Add(2*time.Minute), hour.Add(-30*time.Minute)
	b.a.RecordActivity(b.shop.ID, t1, map[domain.ActivityKey]int64{key("email", "opened"): 2, key("", ""): 1})
	b.a.RecordActivity(b.shop.ID, t3, map[domain.ActivityKey]int64{key("email", "opened"): 1})
	b.b.RecordActivity(b.shop.ID, t2.In(time.FixedZone("X", 5*3600)), map[domain.ActivityKey]int64{key("email", "opened"): 3, key("push", "sent"): 1})
	b.b.RecordActivity(999999, t2, map[domain.ActivityKey]int64{key("email", "opened"): 1})
	b.a.FlushActivity(b.ctx)
	b.b.FlushActivity(b.ctx)
	b.b.FlushActivity(b.ctx) // nothing pending: nothing added

	list, err := b.a.ListActivity(b.ctx, b.shop.ID, hour.Add(-time.Hour))
	require.NoError(t, err)
	require.ElementsMatch(t, []domain.ActivityCount{
		{Hour: hour.Add(-time.Hour), Key: key("email", "opened"), Events: 1, LastAt: t3},
		{Hour: hour, Key: key("", ""), Events: 1, LastAt: t1},
		{Hour: hour, Key: key("email", "opened"), Events: 5, LastAt: t2},
		{Hour: hour, Key: key("push", "sent"), Events: 1, LastAt: t2},
	}, normalize(list))
	list, err = b.a.ListActivity(b.ctx, b.shop.ID, hour)
	require.NoError(t, err)
	require.Len(t, list, 3, "only the hours from since on")

	b.a.RecordActivity(b.shop.ID, t1, map[domain.ActivityKey]int64{key("push", "sent"): 4})
	b.a.FlushActivity(b.ctx)
	sums, err := b.b.ActivitySummaries(b.ctx, hour.Add(-23*time.Hour))
	require.NoError(t, err)
	require.Len(t, sums, 2, "every integration, with or without activity")
	require.EqualValues(t, 12, sums[b.shop.ID].Events24h)
	require.NotNil(t, sums[b.shop.ID].LastReceivedAt)
	require.True(t, t2.Equal(*sums[b.shop.ID].LastReceivedAt), "%v", sums[b.shop.ID].LastReceivedAt)
	require.Equal(t, domain.ActivitySummary{}, sums[b.other.ID])
	one, err := b.a.ActivitySummary(b.ctx, b.shop.ID, hour)
	require.NoError(t, err)
	require.EqualValues(t, 11, one.Events24h, "the hours from since on")

	var rows int
	conn := connect(t, b)
	require.NoError(t, conn.QueryRow(b.ctx, `SELECT count(*) FROM cioloader.activity WHERE integration_id <> $1`, b.shop.ID).Scan(&rows))
	require.Zero(t, rows, "an unknown integration's counts are dropped")
}

// Ensure counts that could not be flushed are kept, and added at the next flush.
func TestActivityFailedFlushKeepsCounts(t *testing.T) {
	t.Parallel()
	b := setupActivity(t)
	now := time.Now()
	b.a.RecordActivity(b.shop.ID, now, map[domain.ActivityKey]int64{key("email", "sent"): 2})
	canceled, cancel := context.WithCancel(b.ctx)
	cancel()
	b.a.FlushActivity(canceled)
	list, err := b.a.ListActivity(b.ctx, b.shop.ID, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, list, "nothing written")
	b.a.RecordActivity(b.shop.ID, now, map[domain.ActivityKey]int64{key("email", "sent"): 1})
	b.a.FlushActivity(b.ctx)
	list, err = b.a.ListActivity(b.ctx, b.shop.ID, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.EqualValues(t, 3, list[0].Events)
}

// Ensure two replicas flushing the same many rows at once never deadlock
// (each upserts in key order) and lose nothing.
func TestActivityConcurrentFlushes(t *testing.T) {
	t.Parallel()
	b := setupActivity(t)
	hour := time.Now().UTC().Truncate(time.Hour)
	counts := map[domain.ActivityKey]int64{}
	for i := range 300 {
		counts[key(fmt.Sprintf("type%03d", i%17), fmt.Sprintf("metric%03d", i))] = 1
	}
	const rounds = 5
	for range rounds {
		var wg sync.WaitGroup
		for _, s := range []*postgres.Store{b.a, b.b} {
			s.RecordActivity(b.shop.ID, hour, counts)
			s.RecordActivity(b.other.ID, hour, counts)
			wg.Go(func() { s.FlushActivity(b.ctx) })
		}
		wg.Wait()
	}
	sums, err := b.a.ActivitySummaries(b.ctx, hour)
	require.NoError(t, err)
	require.EqualValues(t, 2*rounds*len(counts), sums[b.shop.ID].Events24h, "every count of both replicas")
	require.EqualValues(t, 2*rounds*len(counts), sums[b.other.ID].Events24h)
}

// Ensure pruning deletes the hours older than 35 days, except each
// integration's newest hour, which keeps its last-received time.
func TestActivityPrune(t *testing.T) {
	t.Parallel()
	b := setupActivity(t)
	now := time.Now().UTC().Truncate(time.Hour)
	day := 24 * time.Hour
	conn := connect(t, b)
	rows := []struct {
		id   int64
		hour time.Time
		ot   string
	}{
		{b.shop.ID, now.Add(-40 * day), "email"},
		{b.shop.ID, now.Add(-34 * day), "email"}, // within the 35 days: kept
		{b.shop.ID, now, "email"},
		{b.other.ID, now.Add(-51 * day), "email"},
		{b.other.ID, now.Add(-50 * day), "email"}, // the newest hour: kept, both keys
		{b.other.ID, now.Add(-50 * day), "push"},
	}
	for _, r := range rows {
		_, err := conn.Exec(b.ctx, `INSERT INTO cioloader.activity VALUES ($1, $2, $3, 'sent', 1, $4)`, r.id, r.hour, r.ot, r.hour.Add(time.Minute))
		require.NoError(t, err)
	}
	require.NoError(t, b.a.PruneActivity(b.ctx, now))

	var got []string
	r, err := conn.Query(b.ctx, `SELECT integration_id, hour, object_type FROM cioloader.activity ORDER BY integration_id, hour, object_type`)
	require.NoError(t, err)
	var id int64
	var h time.Time
	var ot string
	_, err = pgx.ForEachRow(r, []any{&id, &h, &ot}, func() error {
		got = append(got, fmt.Sprintf("%d -%dd %s", id, int(now.Sub(h)/day), ot))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{
		fmt.Sprintf("%d -34d email", b.shop.ID), fmt.Sprintf("%d -0d email", b.shop.ID),
		fmt.Sprintf("%d -50d email", b.other.ID), fmt.Sprintf("%d -50d push", b.other.ID),
	}, got)

	sum, err := b.a.ActivitySummary(b.ctx, b.other.ID, now.Add(-23*time.Hour))
	require.NoError(t, err)
	require.Zero(t, sum.Events24h)
	require.NotNil(t, sum.LastReceivedAt, "the newest hour keeps the last-received time")
	require.True(t, now.Add(-50*day+time.Minute).Equal(*sum.LastReceivedAt))
}

func connect(t *testing.T, b *activityBundle) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(b.ctx, b.url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// normalize makes times comparable with require.Equal (UTC, no monotonic clock).
func normalize(list []domain.ActivityCount) []domain.ActivityCount {
	for i := range list {
		list[i].Hour, list[i].LastAt = list[i].Hour.UTC().Round(0), list[i].LastAt.UTC().Round(0)
	}
	return list
}
