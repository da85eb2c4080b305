package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/facts"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/rudder"
)

// ReplayStats summarises a replay.
type ReplayStats struct {
	Rows    int64 // rows of data read
	Written int64 // rudder_events rows written
	Skipped int64 // rows whose raw copy could not be decoded (left untouched)
}

// replayer rebuilds the derived tables of a schema from data._sdc_raw.
type replayer struct {
	pool *pgxpool.Pool
	wh   *warehouseViews
}

// CountEvents returns the number of rows in schema.data.
func (s *replayer) CountEvents(ctx context.Context, schema string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+ident(schema, "data")).Scan(&n)
	return n, translate(err)
}

// Replay rebuilds schema.rudder_events (and event_facts, the views' typed copy)
// from data._sdc_raw in batches of size
// rows (keyset order on event_id), each batch in its own transaction, calling
// progress after each. It is safe while ingest continues: rows are written
// with data's own sequence under "<=", so a newer copy committed meanwhile
// (higher sequence) is never overwritten.
func (s *replayer) Replay(ctx context.Context, schema string, size int, progress func(rows int64)) (ReplayStats, error) {
	var st ReplayStats
	after := ""
	for {
		evs, received, last, skipped, err := s.replayPage(ctx, schema, after, size)
		if err != nil {
			return st, fmt.Errorf("replay %s: %w", schema, translate(err))
		}
		n := int64(len(evs)) + skipped
		if n == 0 {
			// The RudderStack warehouse views, every one made again from the record.
			if err := s.wh.rebuild(ctx, schema); err != nil {
				return st, fmt.Errorf("replay %s: warehouse views: %w", schema, translate(err))
			}
			return st, nil
		}
		s.wh.ensure(ctx, schema, evs)
		if len(evs) > 0 {
			var written int64
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				var err error
				written, err = replayWrite(ctx, tx, schema, evs, received, after, last)
				return err
			})
			if err != nil {
				return st, fmt.Errorf("replay %s: %w", schema, translate(err))
			}
			st.Written += written
		}
		st.Rows += n
		st.Skipped += skipped
		after = last
		if progress != nil {
			progress(n)
		}
	}
}

func (s *replayer) replayPage(ctx context.Context, schema, after string, size int) ([]*ingest.Event, map[*ingest.Event]time.Time, string, int64, error) {
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT event_id, _sdc_sequence, coalesce(_sdc_received_at, _sdc_batched_at, now()), _sdc_raw::text
		FROM %s WHERE event_id > $1 ORDER BY event_id LIMIT $2`, ident(schema, "data")), after, size)
	if err != nil {
		return nil, nil, "", 0, err
	}
	var evs []*ingest.Event
	received := map[*ingest.Event]time.Time{}
	var last string
	var skipped int64
	var id, raw string
	var seq int64
	var recv time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &seq, &recv, &raw}, func() error {
		last = id
		obj, ok := decodeObject(raw)
		if !ok {
			skipped++
			return nil
		}
		e := &ingest.Event{ID: id, Seq: seq, Rudder: rudder.Transform(obj, rudder.Options{Namespace: schema, ReceivedAt: recv.UTC()}), Facts: facts.Of(obj)}
		evs = append(evs, e)
		received[e] = recv.UTC()
		return nil
	})
	return evs, received, last, skipped, err
}

func decodeObject(raw string) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, false
	}
	return obj, true
}

// replayWrite upserts one page of rudder_events, removes the rows it wrote
// whose data row is gone (an erasure, erasure.go, that deleted the event after
// the page was read must not see it come back), and refills event_facts for
// the page's key range (after, last].
func replayWrite(ctx context.Context, tx pgx.Tx, schema string, evs []*ingest.Event, received map[*ingest.Event]time.Time, after, last string) (int64, error) {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	q, args := rudderUpsertSQL(nil, schema, evs, func(e *ingest.Event) time.Time { return received[e] }, "<=")
	tag, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s AS r WHERE r.event_id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM %s AS d WHERE d.event_id = r.event_id)`, ident(schema, "rudder_events"), ident(schema, "data")), ids)
	if err != nil {
		return 0, err
	}
	q, args = factsUpsertSQL(nil, schema, evs, func(e *ingest.Event) time.Time { return received[e] }, "<=", true)
	if _, err = tx.Exec(ctx, q, args...); err != nil {
		return 0, err
	}
	// The page's deliveries, recomputed exactly from all their events.
	page := "(f.delivery_id, f.object_type) IN (SELECT g.delivery_id, g.object_type FROM " + ident(schema, "event_facts") +
		" AS g WHERE g.event_id > $1 AND g.event_id <= $2)"
	_, err = tx.Exec(ctx, deliveriesMerge(schema, factsWithIDs(schema), page, true), after, last)
	return tag.RowsAffected(), err
}
