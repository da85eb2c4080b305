package postgres

import (
	"fmt"
	"strings"
)

// delivery_facts keeps one row per delivery and object type: its ids and the first
// time of every delivery metric, merged in the write transaction from the batch's
// event_facts rows. delivery_funnel reads it, so the per-delivery questions read
// ~0.4 rows per event instead of aggregating every event.
//
// The merge is monotone (least() per column, which skips NULLs as min() does), so
// concurrent batches of one delivery never lose each other's times. The price: a
// re-delivered copy of an event with a later timestamp than the copy it replaces
// leaves the earlier time in place (Customer.io resends the same body, so this does
// not happen in practice); `cioloader replay` recomputes the rows exactly.

// deliveryIDCols are the ids delivery_funnel carries, in its column order.
var deliveryIDCols = []string{"campaign_id", "broadcast_id", "action_id", "customer_id", "newsletter_id", "transactional_message_id"}

// deliveryColumns are delivery_facts' columns after its key, in delivery_funnel's order.
func deliveryColumns() []string {
	cols := append([]string{}, deliveryIDCols[:4]...)
	for _, m := range deliveryMetrics[:6] {
		cols = append(cols, m+"_at")
	}
	cols = append(cols, deliveryIDCols[4:]...)
	for _, m := range deliveryMetrics[6:] {
		cols = append(cols, m+"_at")
	}
	return cols
}

// deliveriesDDL creates delivery_facts and, when it is new (an upgrade), fills it
// from event_facts.
func deliveriesDDL(schema string) string {
	cols := []string{"delivery_id text NOT NULL", "object_type text NOT NULL"}
	for _, c := range deliveryColumns() {
		typ := "text"
		if strings.HasSuffix(c, "_at") {
			typ = "timestamptz"
		}
		cols = append(cols, c+" "+typ)
	}
	cols = append(cols, "CONSTRAINT delivery_facts_pkey PRIMARY KEY (delivery_id, object_type)")
	t := ident(schema, "delivery_facts")
	fill := deliveriesMerge(schema, factsWithIDs(schema), "true", false)
	return fmt.Sprintf(`DO $deliveries$
BEGIN
	IF to_regclass(%[3]s) IS NOT NULL THEN
		RETURN;
	END IF;
	CREATE TABLE %[1]s (
		%[2]s
	);
	%[4]s;
END $deliveries$`, t, strings.Join(cols, ",\n\t\t"), quoteLiteral(t), fill)
}

// deliveriesMerge is the INSERT that merges the deliveries of the events of from
// (a FROM item f with event_facts' delivery columns and the message ids: see
// factsWithIDs) matching where into delivery_facts, in key order (the writer's lock order). With
// exact, the rows are replaced by the aggregate (replay); otherwise merged (least()).
// A row the merge would not change is not rewritten (the conflict still locks
// it): a repeated open or a re-delivery costs no new row version, and the
// summaries' update trigger sees only real changes.
func deliveriesMerge(schema, from, where string, exact bool) string {
	return deliveriesMergeOf(schema, from, where, exact, false)
}

// deliveriesMergeOne is deliveriesMerge of a from that holds one row at most:
// the row is its own group, so the statement starts no aggregate and no sort.
func deliveriesMergeOne(schema, from string) string {
	return deliveriesMergeOf(schema, from, "true", false, true)
}

func deliveriesMergeOf(schema, from, where string, exact, one bool) string {
	cols := deliveryColumns()
	sel := make([]string, len(cols))
	set := make([]string, len(cols))
	olds, news := make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		m, isTime := strings.CutSuffix(c, "_at")
		switch {
		case one && isTime:
			sel[i] = fmt.Sprintf("CASE WHEN f.metric = '%s' THEN f.occurred_at END", m)
		case one:
			sel[i] = "f." + c
		case isTime:
			sel[i] = fmt.Sprintf("min(f.occurred_at) FILTER (WHERE f.metric = '%s')", m)
		default:
			sel[i] = "min(f." + c + ")"
		}
		olds[i], news[i] = "t."+c, fmt.Sprintf("least(t.%[1]s, EXCLUDED.%[1]s)", c)
		if exact {
			news[i] = "EXCLUDED." + c
		}
		set[i] = c + " = " + news[i]
	}
	group := `
	GROUP BY f.delivery_id, f.object_type
	ORDER BY f.delivery_id COLLATE "C", f.object_type COLLATE "C"`
	if one {
		group = ""
	}
	return fmt.Sprintf(`INSERT INTO %[1]s AS t (delivery_id, object_type, %[2]s)
	SELECT f.delivery_id, f.object_type, %[3]s
	FROM %[4]s
	WHERE f.delivery_id IS NOT NULL AND f.object_type IS NOT NULL AND (%[5]s)%[9]s
	ON CONFLICT (delivery_id, object_type) DO UPDATE SET %[6]s
	WHERE (%[7]s) IS DISTINCT FROM (%[8]s)`,
		ident(schema, "delivery_facts"), strings.Join(cols, ", "), strings.Join(sel, ", "),
		from, where, strings.Join(set, ", "), strings.Join(olds, ", "), strings.Join(news, ", "), group)
}

// factsWithIDs is event_facts (alias f) with the message ids delivery_facts keeps,
// read from data's _sdc_raw (one parse per event): for an exact recompute
// (replay, retention) and an upgrade's fill, which read events written earlier.
func factsWithIDs(schema string) string {
	ids := make([]string, 0, len(deliveryIDCols))
	for _, c := range deliveryIDCols {
		if c != "customer_id" {
			ids = append(ids, rawID(c, "j.r")+" AS "+c)
		}
	}
	return fmt.Sprintf(`(SELECT f.event_id, f.delivery_id, f.object_type, f.metric, f.occurred_at, f.customer_id, %s
		FROM %s AS f JOIN %s AS d ON d.event_id = f.event_id%s) AS f`,
		strings.Join(ids, ", "), ident(schema, "event_facts"), ident(schema, "data"), rawJSONB)
}

// deliveriesOf is the (delivery_id, object_type) pairs of the events in the text[]
// expression ids, for deleting or recomputing them.
func deliveriesOf(schema, ids string) string {
	return fmt.Sprintf(`SELECT f.delivery_id, f.object_type FROM %s AS f WHERE f.event_id = ANY(%s) AND f.delivery_id IS NOT NULL`,
		ident(schema, "event_facts"), ids)
}
