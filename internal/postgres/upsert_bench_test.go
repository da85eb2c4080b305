package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/testdb"
)

// BenchmarkUpsert compares the two group-commit write shapes issue 4 asks
// about, on the same 500-row batch of data-like rows: one INSERT … SELECT FROM
// unnest($1…) ON CONFLICT (what the writer does), and COPY into a temporary
// table followed by one INSERT … SELECT … ON CONFLICT. The test cluster runs
// with fsync off, so this compares statement cost, not durability.
//
//	go test -run '^$' -bench Upsert -benchtime 50x ./internal/postgres/
func BenchmarkUpsert(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testdb.New(b))
	require.NoError(b, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `CREATE TABLE t (event_id text PRIMARY KEY, seq bigint NOT NULL, raw jsonb, a text, b bigint, c text, d double precision)`)
	require.NoError(b, err)
	const n = 500
	ids, seqs, raws, as, bs, cs, ds := make([]string, n), make([]int64, n), make([]string, n), make([]string, n), make([]int64, n), make([]string, n), make([]float64, n)
	fill := func(round int) {
		for i := range n {
			ids[i] = fmt.Sprintf("e-%d-%d", round, i)
			seqs[i] = int64(round*n + i)
			raws[i] = fmt.Sprintf(`{"event_id":%q,"object_type":"email","metric":"sent","data":{"customer_id":"c%d","subject":"Your weekly summary is ready","content":"<html><body><p>Here is what happened in your account this week.</p></body></html>"}}`, ids[i], i)
			as[i], bs[i], cs[i], ds[i] = "customer@example.com", int64(i), "RAECAAFwnUSneIa0ZXkmq8EdkAM", float64(i)/3
		}
	}
	const onConflict = ` ON CONFLICT (event_id) DO UPDATE SET seq = EXCLUDED.seq, raw = EXCLUDED.raw, a = EXCLUDED.a, b = EXCLUDED.b, c = EXCLUDED.c, d = EXCLUDED.d WHERE t.seq < EXCLUDED.seq`
	b.Run("unnest", func(b *testing.B) {
		for i := range b.N {
			fill(i)
			_, err := pool.Exec(ctx, `INSERT INTO t AS t (event_id, seq, raw, a, b, c, d)
				SELECT u.i, u.s, u.r::jsonb, u.a, u.b, u.c, u.d FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::float8[]) AS u(i, s, r, a, b, c, d)`+onConflict,
				ids, seqs, raws, as, bs, cs, ds)
			require.NoError(b, err)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("copy_temp", func(b *testing.B) {
		for i := range b.N {
			fill(i + 1_000_000)
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS tt (event_id text, seq bigint, raw jsonb, a text, b bigint, c text, d double precision) ON COMMIT DELETE ROWS`); err != nil {
					return err
				}
				rows := make([][]any, n)
				for j := range n {
					rows[j] = []any{ids[j], seqs[j], raws[j], as[j], bs[j], cs[j], ds[j]}
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tt"}, []string{"event_id", "seq", "raw", "a", "b", "c", "d"}, pgx.CopyFromRows(rows)); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO t AS t SELECT * FROM tt`+onConflict)
				return err
			})
			require.NoError(b, err)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	})
}
