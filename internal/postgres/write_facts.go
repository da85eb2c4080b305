package postgres

import (
	"fmt"
	"strings"
	"time"

	"github.com/cioloader/cioloader/internal/facts"
	"github.com/cioloader/cioloader/internal/ingest"
)

// factsUpsert writes the batch's event_facts rows from the facts computed in Go
// (ingest.Event.Facts), with data's sequence guard: Postgres parses no event for
// them. It is the writer's and replay's; factsFill (SQL over _sdc_raw) fills a
// table an upgrade creates.
func (w *schemaWrite) factsUpsert() (string, []any) {
	return factsUpsertSQL(w.texts, w.schema, w.g.events, func(e *ingest.Event) time.Time { return w.g.received[e] }, "<", false)
}

// factsUpsertSQL builds the event_facts upsert of evs. guard is "<" at ingest
// and "<=" in replay. With stored, a row is written only while data holds the
// same copy of its event (replay: an erasure or a newer copy committed after the
// page was read wins).
func factsUpsertSQL(texts *statementTexts, schema string, evs []*ingest.Event, received func(*ingest.Event) time.Time, guard string, stored bool) (string, []any) {
	n := len(evs)
	cols := []*column{
		textColumn("event_id", n), textColumn("object_type", n), textColumn("metric", n), textColumn("event_name", n),
		timeColumn("occurred_at", n), textColumn("customer_id", n), textColumn("email", n), textColumn("delivery_id", n),
		timeColumn("received_at", n), textColumn("failure_message", n), int8Column("_sdc_sequence", n), textColumn("source", n),
	}
	firstID := len(cols)
	for range facts.ErasureKinds {
		c := textColumn("", n)
		c.hidden = true
		cols = append(cols, c)
	}
	for i, e := range evs {
		f := &e.Facts
		cols[0].set(i, e.ID)
		for j, o := range []facts.Opt{f.ObjectType, f.Metric, f.StoredEventName()} {
			setFact(cols[1+j], i, o)
		}
		if f.Occurred {
			cols[4].set(i, f.OccurredAt)
		}
		setFact(cols[5], i, f.CustomerID)
		if f.Metric.Valid && f.Metric.S == "bounced" { // bounce_facts' copy; the view reads the rest from _sdc_raw
			setFact(cols[6], i, f.Email)
		}
		setFact(cols[7], i, f.DeliveryID)
		cols[8].set(i, received(e))
		setFact(cols[9], i, f.FailureMessage)
		cols[10].set(i, e.Seq)
		setFact(cols[11], i, f.Source)
		for j, o := range f.Identifiers {
			setFact(cols[firstID+j], i, o)
		}
	}
	q := texts.get(textKey{kind: "facts", schema: schema, extra: fmt.Sprint(guard, stored), single: singleRow(cols)}, func() string {
		from := ""
		if stored {
			from = fmt.Sprintf(" JOIN %s AS d ON d.event_id = u.c0 AND d._sdc_sequence = u.c10", ident(schema, "data"))
		}
		q, _ := insertSQLFrom(ident(schema, "event_facts"), cols, [][2]string{{"erasure_hashes", erasureHashesOf(firstID)}}, 1, from, byKey(0))
		names := []string{"erasure_hashes"}
		for _, c := range cols[1:firstID] {
			names = append(names, c.name)
		}
		return q + " ON CONFLICT (event_id) DO UPDATE SET " + setAll(names) +
			" WHERE t._sdc_sequence " + guard + " EXCLUDED._sdc_sequence"
	})
	return q, insertArgs(cols)
}

// erasureHashesOf is event_facts.erasure_hashes from the identifier values in
// u.c<first>…, in facts.ErasureKinds' order: each one's erasure key (one
// normalisation, cioloader.erasure_key) hashed as cioloader.erasure_key_hashes
// hashes it. No JSON is parsed; Go left out the repeated values.
func erasureHashesOf(first int) string {
	hashes := make([]string, len(facts.ErasureKinds))
	for i, kind := range facts.ErasureKinds {
		hashes[i] = fmt.Sprintf("hashtext(cioloader.erasure_key('%s', u.c%d))", kind, first+i)
	}
	return "array_remove(ARRAY[" + strings.Join(hashes, ", ") + "], NULL)"
}

func setFact(c *column, i int, o facts.Opt) {
	if o.Valid {
		c.set(i, o.S)
	}
}

// deliveriesUpsert merges the batch's deliveries into delivery_facts: the
// delivery columns of the event_facts rows just written (only the copies data
// now holds: the join on the sequence) and the message ids from Go.
func (w *schemaWrite) deliveriesUpsert() (string, []any) {
	evs := w.g.events
	n := len(evs)
	id, seq := textColumn("event_id", n), int8Column("_sdc_sequence", n)
	msg := map[string]*column{}
	cols := []*column{id, seq}
	for _, c := range deliveryIDCols {
		if c != "customer_id" {
			msg[c] = textColumn(c, n)
			cols = append(cols, msg[c])
		}
	}
	for i, e := range evs {
		f := &e.Facts
		id.set(i, e.ID)
		seq.set(i, e.Seq)
		setFact(msg["campaign_id"], i, f.CampaignID)
		setFact(msg["broadcast_id"], i, f.BroadcastID)
		setFact(msg["action_id"], i, f.ActionID)
		setFact(msg["newsletter_id"], i, f.NewsletterID)
		setFact(msg["transactional_message_id"], i, f.TransactionalID)
	}
	q := w.texts.get(textKey{kind: "deliveries", schema: w.schema, single: singleRow(cols)}, func() string {
		var sel []string
		for i, c := range cols[2:] {
			sel = append(sel, fmt.Sprintf("u.c%d AS %s", i+2, c.name))
		}
		from := fmt.Sprintf(`(SELECT f.event_id, f.delivery_id, f.object_type, f.metric, f.occurred_at, f.customer_id, %s
		FROM %s JOIN %s AS f ON f.event_id = u.c0 AND f._sdc_sequence = u.c1) AS f`,
			strings.Join(sel, ", "), rowSource(cols, 1), ident(w.schema, "event_facts"))
		if singleRow(cols) { // one event: one event_facts row at most
			return deliveriesMergeOne(w.schema, from)
		}
		return deliveriesMerge(w.schema, from, "true", false)
	})
	return q, insertArgs(cols)
}
