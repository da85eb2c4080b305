package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
)

// summaryReferences are the summaries' answers computed from the whole history
// (the README's queries before the summaries existed), each beside its summary:
// the two must hold the same rows.
var summaryReferences = []struct{ name, summary, history string }{
	{"message_funnel", `SELECT * FROM %[1]s.message_funnel`, `SELECT object_type,
		CASE WHEN campaign_id IS NOT NULL THEN 'campaign' WHEN broadcast_id IS NOT NULL THEN 'broadcast'
		     WHEN newsletter_id IS NOT NULL THEN 'newsletter' WHEN transactional_message_id IS NOT NULL THEN 'transactional' END AS kind,
		coalesce(campaign_id, broadcast_id, newsletter_id, transactional_message_id) AS message_id,
		count(*) AS deliveries, count(sent_at), count(delivered_at), count(opened_at), count(clicked_at), count(converted_at),
		count(bounced_at), count(drafted_at), count(attempted_at), count(dropped_at), count(failed_at), count(spammed_at),
		count(unsubscribed_at), count(undeliverable_at), count(replied_at)
		FROM %[1]s.delivery_funnel GROUP BY 1, 2, 3`},
	{"customer_summary", `SELECT customer_id, last_event, last_event_at, events, last_event_id FROM %[1]s.customer_summary`,
		`SELECT DISTINCT ON (customer_id) customer_id, event_name, occurred_at,
		count(*) OVER (PARTITION BY customer_id), event_id
		FROM %[1]s.events WHERE customer_id IS NOT NULL
		ORDER BY customer_id, occurred_at DESC NULLS LAST, received_at DESC, event_id DESC`},
	{"bounces", `SELECT * FROM %[1]s.bounces`,
		`SELECT event_id, occurred_at, object_type, email, failure_message FROM %[1]s.events WHERE metric = 'bounced'`},
}

// requireSummariesMatch checks every summary against its history query.
func (b *writeBundle) requireSummariesMatch(t *testing.T, phase string) {
	t.Helper()
	s := pgx.Identifier{b.schema}.Sanitize()
	for _, r := range summaryReferences {
		sum, hist := fmt.Sprintf(r.summary, s), fmt.Sprintf(r.history, s)
		diff := b.scalar(t, fmt.Sprintf(`SELECT string_agg(side || ' ' || row, E'\n' ORDER BY row) FROM (
			SELECT 'summary only' AS side, x::text AS row FROM ((%[1]s) EXCEPT ALL (%[2]s)) AS x
			UNION ALL SELECT 'history only', y::text FROM ((%[2]s) EXCEPT ALL (%[1]s)) AS y) AS d`, sum, hist))
		require.Equal(t, null, diff, "%s after %s", r.name, phase)
		require.NotEqual(t, "0", b.scalar(t, fmt.Sprintf(`SELECT count(*)::text FROM (%s) AS x`, hist)), "%s after %s: nothing to compare", r.name, phase)
	}
}

// summaryWorkload is a random history: deliveries of every kind of message over
// several channels, each with a few metrics, events without a customer or a
// usable timestamp, ties on time, and bounces with and without an address.
func summaryWorkload(rng *rand.Rand, now time.Time, deliveries int) []string {
	var out []string
	channels := []string{"email", "email", "push", "sms", "in_app"}
	metrics := []string{"sent", "delivered", "opened", "clicked", "bounced", "converted", "failed", "unsubscribed"}
	for d := range deliveries {
		var ids string
		switch d % 5 {
		case 0, 1:
			ids = fmt.Sprintf(`"campaign_id":%d,"action_id":%d`, d%4, d%7)
		case 2:
			ids = fmt.Sprintf(`"broadcast_id":%d`, d%3)
		case 3:
			ids = fmt.Sprintf(`"newsletter_id":"n%d"`, d%2)
		}
		if ids != "" {
			ids = "," + ids
		}
		channel := channels[rng.IntN(len(channels))]
		customer := ""
		if rng.IntN(10) > 0 {
			customer = fmt.Sprintf(`"identifiers":{"id":"c%d","email":"c%d@example.com"},`, rng.IntN(25), rng.IntN(25))
		}
		base := now.AddDate(0, 0, -rng.IntN(420)).Unix()
		for i, m := range metrics[:1+rng.IntN(4)] {
			if m == "delivered" && rng.IntN(3) == 0 {
				m = "bounced"
			}
			ts := fmt.Sprintf(`"timestamp":%d,`, base+int64(i*60*rng.IntN(2))) // sometimes a tie
			if rng.IntN(15) == 0 {
				ts = ""
			}
			extra := ""
			if m == "bounced" {
				extra = fmt.Sprintf(`,"failure_message":"550 reason %d"`, rng.IntN(3))
			}
			out = append(out, fmt.Sprintf(`{"event_id":"e%d-%d","object_type":%q,"metric":%q,%s"data":{%s"delivery_id":"d%d"%s%s}}`,
				d, i, channel, m, ts, customer, d, ids, extra))
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Ensure the summaries hold what the history says through every path that
// changes the typed copies: concurrent ingest, re-deliveries that move an event
// in time or to another person, compaction, replay, erasure and retention.
func TestSummariesFollowTheHistory(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(7, 22))
	events := summaryWorkload(rng, now, 300)

	// Four writers at once, 25 events a transaction.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w * 25; i < len(events); i += 100 {
				writeReceived(t, b.store, b.schema, now, events[i:min(i+25, len(events))]...)
			}
		})
	}
	wg.Wait()
	b.requireSummariesMatch(t, "concurrent ingest")
	require.NoError(t, b.store.CompactSummaries(ctx))
	b.requireSummariesMatch(t, "compaction")
	require.Equal(t, b.scalar(t, `SELECT count(*)::text FROM (SELECT DISTINCT object_type, kind, message_id FROM `+
		pgx.Identifier{b.schema, "message_facts"}.Sanitize()+`) AS k`),
		b.scalar(t, `SELECT count(*)::text FROM `+pgx.Identifier{b.schema, "message_facts"}.Sanitize()), "one row per message after compaction")

	// Re-deliveries: later copies that move events in time, to another person, or
	// to another metric (a bounce becomes a delivery and back).
	var again []string
	for _, e := range events[:60] {
		e = strings.Replace(e, `"timestamp":`, `"timestamp":1`, 1) // far in the future or past: the order moves
		e = strings.Replace(e, `"id":"c1`, `"id":"c2`, 1)
		if rng.IntN(2) == 0 {
			e = strings.Replace(e, `"metric":"bounced"`, `"metric":"delivered"`, 1)
		} else {
			e = strings.Replace(e, `"metric":"delivered"`, `"metric":"bounced"`, 1)
		}
		again = append(again, e)
	}
	writeReceived(t, b.store, b.schema, now.Add(time.Minute), again...)
	b.requireSummariesMatch(t, "re-deliveries")
	// And back: the same events move earlier, to their first person and metric.
	writeReceived(t, b.store, b.schema, now.Add(2*time.Minute), events[:60]...)
	b.requireSummariesMatch(t, "re-deliveries back")

	_, err := b.store.Replay(ctx, b.schema, 50, nil)
	require.NoError(t, err)
	b.requireSummariesMatch(t, "replay")

	in := mustFind(t, b.store, b.schema)
	_, err = b.store.Erase(ctx, in, []domain.PersonIdentifier{{Kind: domain.KindID, Value: "c3"}}, "cli", time.Hour)
	require.NoError(t, err)
	b.requireSummariesMatch(t, "an erasure")
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+pgx.Identifier{b.schema, "customer_summary"}.Sanitize()+` WHERE customer_id = 'c3'`))

	days := 200
	_, err = b.store.SetRetention(ctx, in.ID, &days)
	require.NoError(t, err)
	rep, err := b.store.PruneExpired(ctx, now)
	require.NoError(t, err)
	require.NotZero(t, rep.Events[b.schema], "the workload spans 420 days: something is pruned")
	b.requireSummariesMatch(t, "retention")
	require.NoError(t, b.store.CompactSummaries(ctx))
	b.requireSummariesMatch(t, "a second compaction")
}

// Ensure a compaction pass goes on when an autovacuum of rudder_events holds
// the lock that summarising its block ranges needs: the message deltas are
// still folded, the pass neither waits nor fails, and the next pass
// summarises what is new.
func TestCompactionSkipsBlockRangesWhileRudderEventsIsVacuumed(t *testing.T) {
	t.Parallel()
	b := setupWrite(t)
	ctx := context.Background()
	now := time.Now().UTC()
	// Past one block range (128 pages) of rudder_events: the ranges after the
	// first are not summarised as they fill.
	events := summaryWorkload(rand.New(rand.NewPCG(1, 2)), now, 3400)
	for i := 0; i < len(events); i += 500 {
		writeReceived(t, b.store, b.schema, now, events[i:min(i+500, len(events))]...)
	}
	var pages int64
	require.NoError(t, b.conn.QueryRow(ctx, `SELECT pg_relation_size($1::regclass) / 8192`, b.schema+".rudder_rows").Scan(&pages))
	require.Greater(t, pages, int64(256), "rudder_events must span more than two block ranges")
	mf := pgx.Identifier{b.schema, "message_facts"}.Sanitize()
	require.NotEqual(t, b.scalar(t, `SELECT count(*)::text FROM (SELECT DISTINCT object_type, kind, message_id FROM `+mf+`) AS k`),
		b.scalar(t, `SELECT count(*)::text FROM `+mf), "several delta rows per message before the pass")

	tx, err := b.conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{b.schema, "rudder_events"}.Sanitize()+` IN SHARE UPDATE EXCLUSIVE MODE`)
	require.NoError(t, err)
	began := time.Now()
	require.NoError(t, b.store.CompactSummaries(ctx))
	require.Less(t, time.Since(began), 3*time.Second, "the pass waited for the table's lock")
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, b.scalar(t, `SELECT count(*)::text FROM (SELECT DISTINCT object_type, kind, message_id FROM `+mf+`) AS k`),
		b.scalar(t, `SELECT count(*)::text FROM `+mf), "the deltas were folded all the same")
	b.requireSummariesMatch(t, "a pass that skipped the block ranges")

	require.NoError(t, b.store.CompactSummaries(ctx))
	require.Equal(t, "0", b.scalar(t, `SELECT brin_summarize_new_values($1::regclass)::text`, b.schema+".rudder_events_time"),
		"the pass left no block range to summarise")
	// And it analyses rudder_rows, all of it new since no ANALYZE (the statistics
	// reach pg_stat_user_tables within about a second of the writes).
	require.Eventually(t, func() bool {
		require.NoError(t, b.store.CompactSummaries(ctx))
		return b.scalar(t, `SELECT (last_analyze IS NOT NULL)::text FROM pg_stat_user_tables WHERE relid = $1::regclass`, b.schema+".rudder_rows") == "true"
	}, 10*time.Second, 200*time.Millisecond, "a pass analyses rudder_rows once 10 %% of it is new")
}
