package postgres

import (
	"time"

	"github.com/cioloader/cioloader/internal/ingest"
)

// rudderUpsert writes the RudderStack copies with the same sequence guard as data.
func (w *schemaWrite) rudderUpsert() (string, []any) {
	return rudderUpsertSQL(w.texts, w.schema, w.g.events, func(e *ingest.Event) time.Time { return w.g.received[e] }, "<")
}

// rudderUpsertSQL builds the rudder_events upsert. The event's JSON is stored once,
// as properties and context; the whole event (rudder_payloads.payload) is derived
// from the columns when read. guard is "<" for ingest (an
// older copy never overwrites a newer one) and "<=" for replay (the same
// sequence is rewritten with the current mapping).
func rudderUpsertSQL(texts *statementTexts, schema string, evs []*ingest.Event, received func(*ingest.Event) time.Time, guard string) (string, []any) {
	n := len(evs)
	cols := []*column{
		textColumn("event_id", n), textColumn("message_id", n), textColumn("event", n),
		textColumn("user_id", n), textColumn("anonymous_id", n), timeColumn("original_timestamp", n),
		timeColumn("received_at", n), textColumn("object_type", n), textColumn("metric", n),
		textColumn("properties", n), textColumn("context", n), textColumn("nonstring_ids", n), int8Column("_sdc_sequence", n),
	}
	cols[1].conv = "::uuid"
	cols[9].conv, cols[10].conv, cols[11].conv = "::jsonb", "::jsonb", "::jsonb"
	for i, e := range evs {
		r := e.Rudder
		cols[0].set(i, e.ID)
		cols[1].set(i, r.MessageID())
		cols[2].set(i, r.Name())
		setOpt(cols[3], i, r.UserID)
		setOpt(cols[4], i, r.AnonymousID)
		setOptTime(cols[5], i, r.OriginalTimestamp)
		cols[6].set(i, received(e))
		setOpt(cols[7], i, r.ObjectType)
		setOpt(cols[8], i, r.Metric)
		cols[9].set(i, r.PropertiesJSON()) // nil → NULL: no properties
		// The view adds back what every event has: the context's library and
		// integration members, type 'track', and sent_at (= original_timestamp).
		cols[10].set(i, r.ContextVaryingJSON())
		cols[11].set(i, r.NonStringIDsJSON())
		cols[12].set(i, e.Seq)
	}
	q := texts.get(textKey{kind: "rudder", schema: schema, extra: guard, single: singleRow(cols)}, func() string {
		q, _ := insertSQLFrom(ident(schema, rudderRows), cols, nil, 1, "", byKey(0))
		names := make([]string, 0, len(cols)-1)
		for _, c := range cols[1:] {
			names = append(names, c.name)
		}
		return q + " ON CONFLICT (event_id) DO UPDATE SET " + setAll(names) +
			" WHERE t._sdc_sequence " + guard + " EXCLUDED._sdc_sequence"
	})
	return q, insertArgs(cols)
}

func setOpt(c *column, i int, get func() (string, bool)) {
	if v, ok := get(); ok {
		c.set(i, v)
	}
}

func setOptTime[T any](c *column, i int, get func() (T, bool)) {
	if v, ok := get(); ok {
		c.set(i, any(v))
	}
}
