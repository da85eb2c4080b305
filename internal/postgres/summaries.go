package postgres

import (
	"fmt"
	"strings"
)

// The summaries answer the README's per-message, per-customer and bounce
// questions at the cost of the answer, not of the history (a scan of
// delivery_facts or event_facts grew to seconds at 10 M events):
//
//   - message_facts: count deltas per message (object type, kind, id): how many
//     deliveries, and how many of them have each metric's time. A statement-level
//     trigger on delivery_facts appends one row per message a statement changed
//     (+1 for a new row or a time newly set, −1 for a deleted row), so concurrent
//     batches share no row and take no lock on it; compactMessages folds them.
//     message_funnel sums them.
//   - customer_facts: one row per customer: how many events, and the last one
//     (by occurred_at DESC NULLS LAST, received_at DESC, then event_id DESC).
//     Triggers on event_facts keep it: an insert adds to the count and may replace
//     the last event; a delete subtracts, and a customer whose last event went is
//     recomputed from event_facts_by_customer; a change (a newer copy of an
//     event) moves one count and looks the last event up again if it moved.
//   - bounce_facts: the bounced events' time, object type, address and reason,
//     kept by the same triggers: a small table read whole by the bounce query
//     (a heap page per bounce, spread over all of event_facts, took 0.8 s at 10 M).
//
// Because the triggers sit on the typed copies, every path that changes those
// (ingest, replay, erasure, the tombstone and twin drops, retention) keeps the
// summaries right without a change of its own, in its own transaction.

// messageKind and messageID are the README's kind and message id of a row with
// the delivery ids (alias p).
const (
	messageKind = `CASE WHEN p.campaign_id IS NOT NULL THEN 'campaign'
            WHEN p.broadcast_id IS NOT NULL THEN 'broadcast'
            WHEN p.newsletter_id IS NOT NULL THEN 'newsletter'
            WHEN p.transactional_message_id IS NOT NULL THEN 'transactional' END`
	messageID = `coalesce(p.campaign_id, p.broadcast_id, p.newsletter_id, p.transactional_message_id)`
)

// customerLastOrder orders a customer's events latest first (the README's order,
// with event_id to break ties).
const customerLastOrder = `occurred_at DESC NULLS LAST, received_at DESC, event_id DESC`

// laterThan is customerLastOrder as a comparison of two (occurred_at,
// received_at, event_id) triples: a comes before b.

func laterThan(aAt, aRecv, aID, bAt, bRecv, bID string) string {
	key := func(at, recv, id string) string {
		return fmt.Sprintf("(%[1]s IS NOT NULL, coalesce(%[1]s, '-infinity'), coalesce(%[2]s, 'infinity'), %[3]s)", at, recv, id)
	}
	return key(aAt, aRecv, aID) + " > " + key(bAt, bRecv, bID)
}

// summariesDDL (re)creates the trigger functions, and creates the three tables
// when they are missing, with their triggers, filling a new one from the typed
// copies (an upgrade). Creating a
// trigger locks its table against writes until the start's DDL commits, so the
// fill sees every row and misses none written meanwhile.
func summariesDDL(schema string) []string {
	s := func(n string) string { return ident(schema, n) }
	metricCols := make([]string, len(deliveryMetrics))
	for i, m := range deliveryMetrics {
		metricCols[i] = m + " bigint NOT NULL"
	}
	stmts := []string{
		messageTriggerFunctions(schema),
		customerTriggerFunctions(schema),
		fmt.Sprintf(`DO $summaries$
BEGIN
	IF to_regclass(%[1]s) IS NULL THEN
		CREATE TABLE %[2]s (
			object_type text NOT NULL,
			kind        text,
			message_id  text,
			deliveries  bigint NOT NULL,
			%[3]s
		) WITH (autovacuum_vacuum_scale_factor = 0.05);
		%[4]s;
		%[5]s;
	END IF;
	IF to_regclass(%[6]s) IS NULL THEN
		CREATE TABLE %[7]s (
			customer_id      text NOT NULL CONSTRAINT customer_facts_pkey PRIMARY KEY,
			events           bigint NOT NULL,
			last_event_id    text NOT NULL,
			last_event       text,
			last_event_at    timestamptz,
			last_received_at timestamptz
		) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05);
		CREATE TABLE %[8]s (
			event_id        text NOT NULL CONSTRAINT bounce_facts_pkey PRIMARY KEY,
			occurred_at     timestamptz,
			object_type     text,
			email           text,
			failure_message text
		);
		%[9]s;
		%[10]s;
		%[11]s;
	END IF;
END $summaries$`,
			quoteLiteral(s("message_facts")), s("message_facts"), strings.Join(metricCols, ",\n\t\t\t"),
			triggersDDL(schema, "delivery_facts", "message_facts", statementTriggers), messagesFill(schema),
			quoteLiteral(s("customer_facts")), s("customer_facts"), s("bounce_facts"),
			triggersDDL(schema, "event_facts", "customer_facts", factTriggers), customersFill(schema), bouncesFill(schema, ident(schema, "event_facts"))),
	}
	return stmts
}

// triggerSpec is one trigger of a summary: its operation (ins, upd, del), the
// event, and what follows it up to EXECUTE FUNCTION.
type triggerSpec struct{ op, event, how string }

// statementTriggers are a summary's three statement-level triggers
// (transition tables need one trigger per operation).
var statementTriggers = []triggerSpec{
	{"ins", "INSERT", "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"},
	{"upd", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"},
	{"del", "DELETE", "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"},
}

// factTriggers are event_facts' triggers. An update is rare there (a newer copy
// of an event, or replay rewriting the same values), but ingest's INSERT … ON
// CONFLICT DO UPDATE fires a statement-level UPDATE trigger on every batch, and
// calling a PL/pgSQL function that finds nothing cost 36 µs: so the update
// trigger is per row, and fires only when a value the summaries hold changed.
var factTriggers = []triggerSpec{
	statementTriggers[0],
	{"upd", "UPDATE", `FOR EACH ROW WHEN ((OLD.customer_id, ` + eventName("OLD") + `, OLD.occurred_at, OLD.received_at)
			IS DISTINCT FROM (NEW.customer_id, ` + eventName("NEW") + `, NEW.occurred_at, NEW.received_at)
		OR ((OLD.metric = 'bounced' OR NEW.metric = 'bounced')
			AND (OLD.metric, OLD.occurred_at, OLD.object_type, OLD.email, OLD.failure_message)
			IS DISTINCT FROM (NEW.metric, NEW.occurred_at, NEW.object_type, NEW.email, NEW.failure_message)))`},
	statementTriggers[2],
}

// triggersDDL (re)creates a summary's triggers on table. It runs only when the
// summary's table is new, so a start with nothing to change takes no lock; the
// trigger functions, by contrast, are replaced at every start. A release that
// changes a trigger's definition (its events, level or WHEN) must therefore
// recreate it itself.
func triggersDDL(schema, table, summary string, specs []triggerSpec) string {
	var out []string
	for _, t := range specs {
		out = append(out, fmt.Sprintf(`DROP TRIGGER IF EXISTS %[1]s ON %[3]s;
		CREATE TRIGGER %[1]s AFTER %[2]s ON %[3]s %[4]s EXECUTE FUNCTION %[5]s()`,
			ident(summary+"_"+t.op), t.event, ident(schema, table), t.how, ident(schema, "cioloader_"+summary+"_"+t.op)))
	}
	return strings.Join(out, ";\n\t\t")
}

// messageDelta is the SELECT of message_facts' delta rows from rows (alias p) with
// sign +1 or −1 per row.
func messageDelta(rows, sign string) string {
	cols := []string{"p.object_type", messageKind + " AS kind", messageID + " AS message_id", sign + " AS deliveries"}
	for _, m := range deliveryMetrics {
		cols = append(cols, fmt.Sprintf("%s * (p.%s_at IS NOT NULL)::int AS %s", sign, m, m))
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + rows + " AS p"
}

// messageInsert appends the sum of the deltas per message, leaving out the
// messages whose deltas cancel (an update that set no new time).
func messageInsert(schema string, deltas ...string) string {
	sums, nonzero := []string{"sum(c.deliveries)"}, []string{"sum(c.deliveries) <> 0"}
	for _, m := range deliveryMetrics {
		sums = append(sums, "sum(c."+m+")")
		nonzero = append(nonzero, "sum(c."+m+") <> 0")
	}
	return fmt.Sprintf(`INSERT INTO %[1]s (object_type, kind, message_id, deliveries, %[2]s)
	SELECT c.object_type, c.kind, c.message_id, %[3]s FROM (%[4]s) AS c
	GROUP BY c.object_type, c.kind, c.message_id HAVING %[5]s`,
		ident(schema, "message_facts"), strings.Join(deliveryMetrics, ", "), strings.Join(sums, ", "),
		strings.Join(deltas, "\n\tUNION ALL "), strings.Join(nonzero, " OR "))
}

// messagesFill fills a new message_facts from delivery_facts.
func messagesFill(schema string) string {
	return messageInsert(schema, messageDelta(ident(schema, "delivery_facts"), "1"))
}

// triggerFunction is a plpgsql trigger function of the schema.
func triggerFunction(schema, name, body string) string {
	return fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $fn$
%s
END $fn$`, ident(schema, name), body)
}

// messageTriggerFunctions are delivery_facts' trigger functions.
func messageTriggerFunctions(schema string) string {
	body := func(rows string, deltas ...string) string {
		return "BEGIN\n\t" + ifNone(rows) + messageInsert(schema, deltas...) + ";\n\tRETURN NULL;"
	}
	return strings.Join([]string{
		triggerFunction(schema, "cioloader_message_facts_ins", body("new_rows", messageDelta("new_rows", "1"))),
		triggerFunction(schema, "cioloader_message_facts_upd", body("old_rows", messageDelta("new_rows", "1"), messageDelta("old_rows", "-1"))),
		triggerFunction(schema, "cioloader_message_facts_del", body("old_rows", messageDelta("old_rows", "-1"))),
	}, ";\n")
}

// ifNone returns from a trigger function at once when its transition table rows
// is empty: a statement-level trigger fires for every statement, and ingest's
// INSERT … ON CONFLICT DO UPDATE fires the UPDATE triggers too, mostly with no
// row updated.
func ifNone(rows string) string {
	return "IF NOT EXISTS (SELECT 1 FROM " + rows + ") THEN\n\t\tRETURN NULL;\n\tEND IF;\n\t"
}

// customerSubtract subtracts the deleted rows (changes) from their customers'
// counts, for the customers not in the array skip (recomputed instead).
func customerSubtract(schema, changes, skip string) string {
	return fmt.Sprintf(`UPDATE %[1]s AS t SET events = t.events - d.n
	FROM (SELECT c.customer_id, count(*) AS n FROM (%[2]s) AS c WHERE NOT c.customer_id = ANY(%[3]s) GROUP BY c.customer_id) AS d
	WHERE t.customer_id = d.customer_id`, ident(schema, "customer_facts"), changes, skip)
}

// customerAdd adds the new rows of an insert to customer_facts: the count and
// each customer's latest new event, in one upsert with the rows locked in key
// order (the common path: once per ingest batch).
func customerAdd(schema string) string {
	return fmt.Sprintf(`INSERT INTO %[1]s AS t (customer_id, events, last_event_id, last_event, last_event_at, last_received_at)
	SELECT DISTINCT ON (n.customer_id COLLATE "C") n.customer_id, count(*) OVER (PARTITION BY n.customer_id COLLATE "C"),
	       n.event_id, `+eventName("n")+`, n.occurred_at, n.received_at
	FROM new_rows AS n WHERE n.customer_id IS NOT NULL ORDER BY n.customer_id COLLATE "C", %[2]s
	ON CONFLICT (customer_id) DO UPDATE SET %[3]s`,
		ident(schema, "customer_facts"), prefixed("n.", customerLastOrder), customerSet())
}

// customerSet is the ON CONFLICT assignment that adds EXCLUDED's count and
// keeps the later of the two last events.
func customerSet() string {
	set := []string{"events = t.events + EXCLUDED.events"}
	later := laterThan("EXCLUDED.last_event_at", "EXCLUDED.last_received_at", "EXCLUDED.last_event_id",
		"t.last_event_at", "t.last_received_at", "t.last_event_id")
	for _, c := range []string{"last_event_id", "last_event", "last_event_at", "last_received_at"} {
		set = append(set, fmt.Sprintf("%[1]s = CASE WHEN %[2]s THEN EXCLUDED.%[1]s ELSE t.%[1]s END", c, later))
	}
	return strings.Join(set, ", ")
}

// customerRecompute sets the count and last event of the customers in the
// array ids from event_facts alone.
func customerRecompute(schema, ids string) string {
	return fmt.Sprintf(`UPDATE %[1]s AS t SET events = coalesce(x.n, 0), last_event_id = coalesce(x.event_id, t.last_event_id),
		last_event = x.event_name, last_event_at = x.occurred_at, last_received_at = x.received_at
	FROM unnest(%[3]s::text[]) AS r(customer_id) LEFT JOIN (
		SELECT DISTINCT ON (f.customer_id) f.customer_id, count(*) OVER (PARTITION BY f.customer_id) AS n,
		       f.event_id, `+eventName("f")+` AS event_name, f.occurred_at, f.received_at
		FROM %[2]s AS f WHERE f.customer_id = ANY(%[3]s) ORDER BY f.customer_id, %[4]s) AS x USING (customer_id)
	WHERE t.customer_id = r.customer_id`,
		ident(schema, "customer_facts"), ident(schema, "event_facts"), ids, prefixed("f.", customerLastOrder))
}

// prefixed qualifies the columns of an ORDER BY list.
func prefixed(alias, order string) string {
	parts := strings.Split(order, ", ")
	for i, p := range parts {
		parts[i] = alias + p
	}
	return strings.Join(parts, ", ")
}

// customersFill fills a new customer_facts from event_facts.
func customersFill(schema string) string {
	return fmt.Sprintf(`INSERT INTO %[1]s (customer_id, events, last_event_id, last_event, last_event_at, last_received_at)
	SELECT DISTINCT ON (f.customer_id) f.customer_id, count(*) OVER (PARTITION BY f.customer_id), f.event_id, `+eventName("f")+`, f.occurred_at, f.received_at
	FROM %[2]s AS f WHERE f.customer_id IS NOT NULL ORDER BY f.customer_id, %[3]s`,
		ident(schema, "customer_facts"), ident(schema, "event_facts"), prefixed("f.", customerLastOrder))
}

// bouncesFill inserts the bounced events of rows (a relation with event_facts'
// columns) into bounce_facts.
func bouncesFill(schema, rows string) string {
	return fmt.Sprintf(`INSERT INTO %[1]s (event_id, occurred_at, object_type, email, failure_message)
	SELECT f.event_id, f.occurred_at, f.object_type, f.email, f.failure_message FROM %[2]s AS f
	WHERE f.metric = 'bounced' ORDER BY f.event_id COLLATE "C"
	ON CONFLICT (event_id) DO UPDATE SET occurred_at = EXCLUDED.occurred_at, object_type = EXCLUDED.object_type,
		email = EXCLUDED.email, failure_message = EXCLUDED.failure_message`,
		ident(schema, "bounce_facts"), rows)
}

// bouncesDrop deletes the bounce_facts rows of the bounced rows of old_rows.
func bouncesDrop(schema string) string {
	return fmt.Sprintf(`DELETE FROM %s AS b USING old_rows AS o WHERE b.event_id = o.event_id AND o.metric = 'bounced'`, ident(schema, "bounce_facts"))
}

// customerChanges are the event_facts rows a delete changed (the statement's
// old_rows), as (customer_id, sign, event_id, event_name, occurred_at,
// received_at) with sign −1.
func customerChanges() string {
	return `SELECT customer_id, -1 AS sign, event_id, ` + eventName("old_rows") + ` AS event_name, occurred_at, received_at FROM old_rows WHERE customer_id IS NOT NULL`
}

// customerRowChange is the update trigger's body (one row, OLD → NEW): the old
// customer loses one event and the new one gains it, with the new version as a
// candidate for its last event; then, if the old version is still its
// customer's last event (it moved earlier, or to another customer), that last
// event is looked up again. Only counts are deltas: the look-up reads the
// statement's final state, so the rows of one statement can run in any order.
func customerRowChange(schema string) string {
	cf := ident(schema, "customer_facts")
	return fmt.Sprintf(`BEGIN
	%[3]s;
	PERFORM 1 FROM %[1]s AS t WHERE t.customer_id IN (OLD.customer_id, NEW.customer_id) ORDER BY t.customer_id COLLATE "C" FOR UPDATE;
	IF OLD.customer_id IS NOT NULL THEN
		UPDATE %[1]s AS t SET events = t.events - 1 WHERE t.customer_id = OLD.customer_id;
	END IF;
	IF NEW.customer_id IS NOT NULL THEN
		INSERT INTO %[1]s AS t (customer_id, events, last_event_id, last_event, last_event_at, last_received_at)
		VALUES (NEW.customer_id, 1, NEW.event_id, `+eventName("NEW")+`, NEW.occurred_at, NEW.received_at)
		ON CONFLICT (customer_id) DO UPDATE SET %[4]s;
	END IF;
	IF OLD.customer_id IS NOT NULL THEN
		UPDATE %[1]s AS t SET last_event_id = x.event_id, last_event = x.event_name, last_event_at = x.occurred_at, last_received_at = x.received_at
		FROM (SELECT f.event_id, `+eventName("f")+` AS event_name, f.occurred_at, f.received_at FROM %[2]s AS f
		      WHERE f.customer_id = OLD.customer_id ORDER BY %[5]s LIMIT 1) AS x
		WHERE t.customer_id = OLD.customer_id AND t.last_event_id = OLD.event_id;
		DELETE FROM %[1]s AS t WHERE t.customer_id = OLD.customer_id AND t.events <= 0;
	END IF;
	RETURN NULL;`, cf, ident(schema, "event_facts"), bouncesChange(schema), customerSet(), prefixed("f.", customerLastOrder))
}

// bouncesChange moves an updated row's bounce_facts row (row trigger: OLD, NEW).
func bouncesChange(schema string) string {
	return fmt.Sprintf(`DELETE FROM %[1]s AS b WHERE b.event_id = OLD.event_id AND OLD.metric = 'bounced';
	INSERT INTO %[1]s (event_id, occurred_at, object_type, email, failure_message)
	SELECT NEW.event_id, NEW.occurred_at, NEW.object_type, NEW.email, NEW.failure_message WHERE NEW.metric = 'bounced'`,
		ident(schema, "bounce_facts"))
}

// customerTriggerFunctions are event_facts' trigger functions: customer_facts
// and bounce_facts.
func customerTriggerFunctions(schema string) string {
	cf := ident(schema, "customer_facts")
	// Most inserts hold no bounce: the fill (an upsert under a sort) is started
	// only for those that do.
	insert := "BEGIN\n\t" + ifNone("new_rows") + customerAdd(schema) + ";\n\t" +
		"IF EXISTS (SELECT 1 FROM new_rows WHERE metric = 'bounced') THEN\n\t\t" +
		bouncesFill(schema, "new_rows") + ";\n\tEND IF;\n\tRETURN NULL;"
	// A change or delete locks its customers' rows first (in key order, as
	// ingest's upsert does), then finds those whose last event it removed or
	// moved, recomputes them from event_facts (a statement after the lock sees
	// what committed before it), adds the rest, and drops emptied customers.
	del := fmt.Sprintf(`DECLARE
	affected text[];
	redo text[];
BEGIN
	%[6]s%[5]s;
	SELECT array_agg(DISTINCT c.customer_id COLLATE "C" ORDER BY c.customer_id COLLATE "C") INTO affected FROM (%[2]s) AS c;
	IF affected IS NULL THEN
		RETURN NULL;
	END IF;
	PERFORM 1 FROM %[1]s AS t WHERE t.customer_id = ANY(affected) ORDER BY t.customer_id COLLATE "C" FOR UPDATE;
	SELECT coalesce(array_agg(t.customer_id), '{}') INTO redo FROM %[1]s AS t
	WHERE t.customer_id = ANY(affected) AND t.last_event_id IN (SELECT c.event_id FROM (%[2]s) AS c);
	%[3]s;
	IF cardinality(redo) > 0 THEN
		%[4]s;
	END IF;
	DELETE FROM %[1]s AS t WHERE t.customer_id = ANY(affected) AND t.events <= 0;
	RETURN NULL;`, cf, customerChanges(), customerSubtract(schema, customerChanges(), "redo"), customerRecompute(schema, "redo"),
		bouncesDrop(schema), ifNone("old_rows"))
	return strings.Join([]string{
		triggerFunction(schema, "cioloader_customer_facts_ins", insert),
		triggerFunction(schema, "cioloader_customer_facts_upd", customerRowChange(schema)),
		triggerFunction(schema, "cioloader_customer_facts_del", del),
	}, ";\n")
}

// summaryViews are the views over the summaries, for the README's queries.
func summaryViews(schema string) []string {
	v := func(n string) string { return ident(schema, n) }
	sums := []string{"sum(deliveries)::bigint AS deliveries"}
	for _, m := range deliveryMetrics {
		sums = append(sums, fmt.Sprintf("sum(%[1]s)::bigint AS %[1]s", m))
	}
	return []string{
		fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS
SELECT object_type, kind, message_id, %s
FROM %s GROUP BY object_type, kind, message_id HAVING sum(deliveries) > 0`, v("message_funnel"), strings.Join(sums, ", "), v("message_facts")),
		fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS
SELECT customer_id, last_event, last_event_at, events, last_event_id FROM %s`, v("customer_summary"), v("customer_facts")),
		fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS
SELECT event_id, occurred_at, object_type, email, failure_message FROM %s`, v("bounces"), v("bounce_facts")),
	}
}
