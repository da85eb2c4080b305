package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
)

// makeOldStorage turns b's schema back into what the release before issue 26
// made: _sdc_raw jsonb (with its erasure index on the jsonb) and an event_facts
// that also stored the message and journey ids and no erasure hashes (this
// release's start adds the column, NULL on every row written before).
func (b *writeBundle) makeOldStorage(t *testing.T) {
	t.Helper()
	s := b.table
	views := b.scalar(t, `SELECT string_agg(format('%I.%I', schemaname, viewname), ', ') FROM pg_views
		WHERE schemaname = $1 AND definition LIKE '%data%'`, b.schema)
	_, err := b.conn.Exec(context.Background(), fmt.Sprintf(`DROP VIEW %[1]s CASCADE;
		ALTER TABLE %[4]s DROP COLUMN erasure_hashes;
		ALTER TABLE %[3]s ALTER COLUMN _sdc_raw TYPE jsonb USING _sdc_raw::jsonb;
		CREATE INDEX data_erasure_idx ON %[3]s USING gin (cioloader.erasure_keys(_sdc_raw));
		ALTER TABLE %[4]s ADD COLUMN campaign_id text, ADD COLUMN broadcast_id text, ADD COLUMN action_id text,
			ADD COLUMN journey_id text, ADD COLUMN newsletter_id text, ADD COLUMN transactional_message_id text,
			ADD COLUMN parent_action_id text, ADD COLUMN trigger_event_id text, ADD COLUMN content_id text;
		UPDATE %[4]s AS f SET campaign_id = d._sdc_raw #>> '{data,campaign_id}', journey_id = d._sdc_raw #>> '{data,journey_id}',
			event_name = coalesce(f.event_name, f.object_type || '_' || f.metric)
			FROM %[3]s AS d WHERE d.event_id = f.event_id;
		DROP TRIGGER customer_facts_upd ON %[4]s;
		CREATE TRIGGER customer_facts_upd AFTER UPDATE ON %[4]s FOR EACH ROW
			WHEN ((OLD.customer_id, OLD.event_name, OLD.occurred_at, OLD.received_at)
				IS DISTINCT FROM (NEW.customer_id, NEW.event_name, NEW.occurred_at, NEW.received_at)
			OR ((OLD.metric = 'bounced' OR NEW.metric = 'bounced')
				AND (OLD.metric, OLD.occurred_at, OLD.object_type, OLD.email, OLD.failure_message)
				IS DISTINCT FROM (NEW.metric, NEW.occurred_at, NEW.object_type, NEW.email, NEW.failure_message)))
			EXECUTE FUNCTION %[2]s.cioloader_customer_facts_upd()`,
		views, pgx.Identifier{b.schema}.Sanitize(), s("data"), s("event_facts")))
	require.NoError(t, err)
	require.NoError(t, b.store.EnsureIntegrationObjects(context.Background()), "this release starts on the old storage")
	require.Contains(t, strings.ToLower(b.scalar(t, `SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = 'customer_facts_upd'`, s("event_facts"))),
		"coalesce(old.event_name", "the start replaced the update trigger that compared stored names")
}

// TestUpgradeStorage: a schema of the release before keeps working (ingest,
// the views, erasure) until `cioloader upgrade` rewrites it, and after the
// rewrite _sdc_raw is compact json, event_facts is narrow, the views and the
// summaries give the same answers, and ingest, erasure and the warehouse views
// still work. Running it again does nothing.
func TestUpgradeStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupWrite(t)
	rng := rand.New(rand.NewPCG(26, 1))
	bodies := summaryWorkload(rng, time.Now(), 60)
	half := len(bodies) / 2
	write := func(from []string, seq0 int64) {
		seqs := make([]int64, len(from))
		for i := range seqs {
			seqs[i] = seq0 + int64(i)
		}
		require.NoError(t, b.store.WriteBatch(ctx, []*ingest.Request{b.request(t, seqs, from...)}))
	}
	write(bodies[:half], 1)
	b.makeOldStorage(t)
	require.Equal(t, "jsonb", b.scalar(t, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = '_sdc_raw'`, b.table("data")))

	// The old storage takes this release's writes, and an erasure finds a
	// person's events written before (no hashes: data_erasure_idx) and after.
	write(bodies[half:], 1000)
	b.requireSummariesMatch(t, "writes on the old storage")
	require.NotEqual(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("event_facts")+` WHERE erasure_hashes IS NULL`))
	in, err := b.store.FindIntegration(ctx, b.schema)
	require.NoError(t, err)
	early := b.scalar(t, `SELECT f.customer_id FROM `+b.table("event_facts")+` AS f WHERE f.erasure_hashes IS NULL AND f.customer_id IS NOT NULL
		AND EXISTS (SELECT 1 FROM `+b.table("event_facts")+` AS g WHERE g.customer_id = f.customer_id AND g.erasure_hashes IS NOT NULL) LIMIT 1`)
	_, err = b.store.Erase(ctx, in, []domain.PersonIdentifier{{Kind: domain.KindID, Value: early}}, "cli", time.Hour)
	require.NoError(t, err)
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("events")+` WHERE customer_id = $1`, early), "rows from before and after the hashes")
	b.requireSummariesMatch(t, "an erasure on the old storage")
	before := b.scalar(t, `SELECT md5(string_agg(e::text, E'\n' ORDER BY event_id)) FROM `+b.table("events")+` AS e`)
	raws := b.scalar(t, `SELECT md5(string_agg(_sdc_raw::jsonb::text, E'\n' ORDER BY event_id)) FROM `+b.table("data"))

	var done int64
	up, err := b.store.UpgradeStorage(ctx, b.schema, func(n int64) { done += n })
	require.NoError(t, err)
	require.True(t, up.RawDone)
	require.True(t, up.FactsDone)
	require.True(t, up.ErasureMoved)
	rows := b.scalar(t, `SELECT count(*)::text FROM `+b.table("data"))
	require.Equal(t, rows, fmt.Sprint(up.RawRows))
	require.Equal(t, rows, fmt.Sprint(done), "progress counts every row")
	require.Len(t, up.FactsFreed, 9)
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("event_facts")+` WHERE event_name = object_type || '_' || metric`),
		"no derivable name is stored")

	require.Equal(t, "json", b.scalar(t, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = '_sdc_raw'`, b.table("data")))
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("data")+` WHERE _sdc_raw::text ~ '": |, "'`), "compact text")
	require.Equal(t, raws, b.scalar(t, `SELECT md5(string_agg(_sdc_raw::jsonb::text, E'\n' ORDER BY event_id)) FROM `+b.table("data")), "the same events")
	require.Equal(t, before, b.scalar(t, `SELECT md5(string_agg(e::text, E'\n' ORDER BY event_id)) FROM `+b.table("events")+` AS e`), "the events view reads the same")
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'campaign_id' AND NOT attisdropped`, b.table("event_facts")))
	b.requireSummariesMatch(t, "the upgrade")
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("event_facts")+` WHERE erasure_hashes IS NULL`), "every row has its hashes")
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("event_facts")+` AS f JOIN `+b.table("data")+` AS d USING (event_id)
		CROSS JOIN LATERAL (SELECT cioloader.erasure_key_hashes(cioloader.erasure_keys(d._sdc_raw::jsonb)) AS h) AS k
		WHERE NOT (f.erasure_hashes <@ k.h AND f.erasure_hashes || hashtext(cioloader.erasure_key('id', f.customer_id)) @> k.h)`),
		"the hashes of the keys but the customer_id's")
	require.Equal(t, "", b.scalar(t, `SELECT coalesce(to_regclass($1)::text, '')`, b.schema+".data_erasure_idx"), "the index on _sdc_raw is gone")
	require.Equal(t, "event_facts_bounced event_facts_by_customer event_facts_erasure event_facts_pkey event_facts_unsubscribed",
		b.scalar(t, `SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			WHERE i.indrelid = $1::regclass AND i.indisvalid`, b.table("event_facts")), "the secondary indexes dropped for the rewrite are built again")
	var plan string
	_, err = b.conn.Exec(ctx, `SET enable_seqscan = off`) // a table this small is read whole otherwise
	require.NoError(t, err)
	require.NoError(t, b.conn.QueryRow(ctx, `EXPLAIN (COSTS OFF) SELECT event_id FROM `+b.table("event_facts")+` WHERE erasure_hashes && cioloader.erasure_key_hashes('{id:x}')`).Scan(&plan))
	require.Contains(t, plan, "Bitmap Heap Scan on event_facts", "event_facts_erasure (its one index on erasure_hashes) is usable")
	_, err = b.conn.Exec(ctx, `RESET enable_seqscan`)
	require.NoError(t, err)
	require.NotEqual(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("tracks")), "the warehouse views are back")

	// Ingest (a new shape of the writer's statements), erasure and a second run.
	more := summaryWorkload(rng, time.Now(), 10)
	write(more, 5000)
	b.requireSummariesMatch(t, "writes after the upgrade")
	person := b.scalar(t, `SELECT customer_id FROM `+b.table("events")+` WHERE customer_id IS NOT NULL LIMIT 1`)
	_, err = b.store.Erase(ctx, in, []domain.PersonIdentifier{{Kind: domain.KindID, Value: person}}, "cli", time.Hour)
	require.NoError(t, err)
	require.Equal(t, "0", b.scalar(t, `SELECT count(*)::text FROM `+b.table("events")+` WHERE customer_id = $1`, person))
	b.requireSummariesMatch(t, "an erasure after the upgrade")
	again, err := b.store.UpgradeStorage(ctx, b.schema, nil)
	require.NoError(t, err)
	require.False(t, again.RawDone || again.FactsDone, "nothing left to do")
}
