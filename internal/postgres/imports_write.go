package postgres

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cioloader/cioloader/internal/metrics"
)

// The writer's side of history imports (SPEC 11: one occurrence, one event).
//
// An event imported from Customer.io's history has the event_id
// history.EventID gives its occurrence, and every webhook event that records
// an occurrence carries that id as its Twin. A group-commit transaction that
// writes webhook events therefore deletes their imported copies by primary
// key (twinDrop), in the same transaction: the webhook copy replaces the
// imported one in every table. The import skips occurrences already stored
// from the webhook, and closes the race with a webhook transaction that ran
// beside its own by a barrier on the erasure lock (see imports.go).

// twinDrop is the deletion of the imported copies of the batch's webhook
// events: the twins' keys, in lock order, and the statement that deletes them,
// which cioloader.drop_imported (migration 000007) runs only for a schema
// that has had a Customer.io import (see queueDrops). No twins, no statement.
func (w *schemaWrite) twinDrop() ([]string, string) {
	var twins []string
	for _, e := range w.g.events {
		if e.Twin != "" {
			twins = append(twins, e.Twin)
		}
	}
	if len(twins) == 0 {
		return nil, ""
	}
	slices.Sort(twins) // lock order, as every statement of the writer
	subtables := w.subtables()
	q := w.texts.get(textKey{kind: "twins", schema: w.schema, extra: strings.Join(subtables, "\x00")}, func() string {
		return dropEventsSQL(w.schema, subtables, `SELECT d.event_id FROM %[1]s AS d WHERE d.event_id = ANY($1::text[])`)
	})
	return twins, q
}

// subtables are the schema's array subtables, in name order.
func (w *schemaWrite) subtables() []string { return subtableNames(w.tables) }

// subtableNames are the array subtables among a schema's tables, in name order.
func subtableNames(tables map[string]*tableState) []string {
	var subtables []string
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		if name != "data" {
			subtables = append(subtables, name)
		}
	}
	return subtables
}

// countTwins updates the metric once the transaction has committed.
func (w *schemaWrite) countTwins(m *metrics.Metrics) {
	if m != nil && w.twinsDropped > 0 {
		m.ImportedReplaced.WithLabelValues(w.schema).Add(float64(w.twinsDropped))
	}
}

// dropEventsSQL deletes, from data, rudder_events, event_facts and every
// subtable, the events that pick selects (a SELECT of data rows "d" from %[1]s,
// the data table, given $1). The data rows are locked first, in event_id order.
// It returns how many events it deleted. delivery_facts is left as it is: the
// copy that stays has the same delivery, metric and time.
func dropEventsSQL(schema string, subtables []string, pick string) string {
	data := ident(schema, "data")
	ctes := []string{"gone AS (" + fmt.Sprintf(pick, data) + ` ORDER BY d.event_id COLLATE "C" FOR UPDATE OF d)`}
	ctes = append(ctes, deleteEventCTEs(schema, subtables, "ARRAY(SELECT event_id FROM gone)")...)
	return "WITH " + strings.Join(ctes, ",\n") + "\nSELECT count(*) FROM gone"
}

// deleteEventCTEs are the CTEs d0, d1, … that delete the events whose ids the
// array expression ids holds from data, rudder_events, event_facts (keyed on
// event_id) and each subtable (keyed on _sdc_source_key_event_id).
func deleteEventCTEs(schema string, subtables []string, ids string) []string {
	tables := append([]string{"data", "rudder_events", "event_facts"}, subtables...)
	const keyedOnID = 3
	ctes := make([]string, len(tables))
	for i, t := range tables {
		key := "_sdc_source_key_event_id"
		if i < keyedOnID {
			key = "event_id"
		}
		ctes[i] = fmt.Sprintf(`d%d AS (DELETE FROM %s WHERE %s = ANY (%s))`, i, ident(schema, t), ident(key), ids)
	}
	return ctes
}
