package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
	"github.com/cioloader/cioloader/internal/webhook"
)

// BenchmarkErase1M measures issue 14's figure: erasing one person (20
// events) from 1 M events in data and rudder_events, through the real
// Store.Erase, while one writer commits single-event batches of other people
// through the real WriteBatch; it reports the erasure's time and the writer's
// worst commit latency during it next to its median. Not part of make test
// (loading 1 M events takes a minute):
//
//	go test -run '^$' -bench Erase1M -benchtime 1x ./internal/postgres/
func BenchmarkErase1M(b *testing.B) {
	ctx := context.Background()
	dbURL := testdb.New(b)
	store, err := postgres.Open(ctx, dbURL, storeConfig(8), slog.New(slog.DiscardHandler), nil)
	require.NoError(b, err)
	defer store.Close()
	in, err := store.CreateIntegration(ctx, "Bench Shop")
	require.NoError(b, err)
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	start := time.Now()
	// ~600-byte email events of 50,000 people (20 each), as the writer stores them.
	_, err = conn.Exec(ctx, `INSERT INTO bench_shop.data (event_id, _sdc_received_at, _sdc_sequence, _sdc_raw)
		SELECT 'ev' || g, now(), g, jsonb_build_object('event_id', 'ev' || g, 'object_type', 'email', 'metric', 'opened', 'timestamp', 1700000000 + g,
			'data', jsonb_build_object('customer_id', 'user-' || (g % 50000), 'delivery_id', md5(g::text), 'campaign_id', g % 97, 'action_id', g % 13,
				'identifiers', jsonb_build_object('id', 'user-' || (g % 50000), 'email', 'person' || (g % 50000) || '@example.com', 'cio_id', 'cio' || (g % 50000)),
				'recipient', 'person' || (g % 50000) || '@example.com', 'subject', 'Your weekly summary is ready, with everything that happened in your account',
				'href', 'https://example.com/some/long/path?utm_source=customerio&utm_medium=email&utm_campaign=' || g))
		FROM generate_series(1, 1000000) g`)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, `INSERT INTO bench_shop.rudder_events (event_id, type, event, user_id, context, properties, payload, _sdc_sequence)
		SELECT event_id, 'track', 'Email Opened', _sdc_raw #>> '{data,customer_id}', jsonb_build_object('traits', jsonb_build_object('email', _sdc_raw #>> '{data,recipient}')),
			_sdc_raw -> 'data', _sdc_raw, _sdc_sequence FROM bench_shop.data`)
	require.NoError(b, err)
	for _, q := range []string{`VACUUM ANALYZE bench_shop.data`, `VACUUM ANALYZE bench_shop.rudder_events`} {
		_, err = conn.Exec(ctx, q)
		require.NoError(b, err)
	}
	b.Logf("loaded 1 M events in %s", time.Since(start).Round(time.Second))

	seq := ingest.NewSequencer(nil)
	write := func(i int) time.Duration {
		body := fmt.Sprintf(`{"event_id":"w%d","object_type":"email","metric":"sent","data":{"identifiers":{"id":"other-%d","email":"other%d@example.com"}}}`, i, i, i)
		batch, err := webhook.Decode([]byte(body), 10)
		require.NoError(b, err)
		req := ingest.Prepare(in.Schema, time.Now(), batch, seq, app.FlattenLimits(config.Defaults()))
		t0 := time.Now()
		require.NoError(b, store.WriteBatch(ctx, []*ingest.Request{req}))
		return time.Since(t0)
	}
	var base []time.Duration
	for i := range 200 {
		base = append(base, write(i))
	}
	slices.Sort(base)

	b.ResetTimer()
	for n := range b.N {
		var during []time.Duration
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 1000 * (n + 1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				during = append(during, write(i))
			}
		})
		time.Sleep(50 * time.Millisecond)
		t0 := time.Now()
		er, err := store.Erase(ctx, in, []domain.PersonIdentifier{{Kind: domain.KindEmail, Value: fmt.Sprintf("Person%d@example.com", 4242+n)}}, "cli", time.Hour)
		took := time.Since(t0)
		time.Sleep(50 * time.Millisecond)
		close(stop)
		wg.Wait()
		require.NoError(b, err)
		require.Equal(b, int64(20), er.RowsDeleted["data"])
		slices.Sort(during)
		b.ReportMetric(float64(took.Milliseconds()), "erase-ms")
		b.ReportMetric(float64(during[len(during)-1].Microseconds())/1000, "ingest-max-ms")
		b.ReportMetric(float64(base[len(base)/2].Microseconds())/1000, "ingest-p50-ms")
		b.Logf("erase %s (rows %v); ingest commits during it: %d, max %s; before: p50 %s, max %s",
			took, er.RowsDeleted, len(during), during[len(during)-1], base[len(base)/2], base[len(base)-1])
	}
}
