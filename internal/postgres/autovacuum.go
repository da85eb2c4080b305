package postgres

import (
	"fmt"
	"strings"
)

// insertOnlyVacuum are the autovacuum settings of the tables the analyst views
// read, which grow mostly by inserts. Postgres vacuums such a table once the
// rows inserted since its last vacuum pass 20 % of it: after a bulk load of
// 10 M events up to 2 M rows were not yet all-visible, so the index-only scan
// of the README's last-event query fetched their heap pages, and the first
// scans after the load set their hint bits (writing the pages again). At 2 %
// the vacuums come ten times as often and each scans only the pages added
// since the last (the visibility map skips the rest).
var insertOnlyVacuum = []string{"autovacuum_vacuum_insert_scale_factor=0.02"}

// timeWindowAnalyze is rudder_events' setting: analysed after 2 % of new rows
// (Postgres's default is 10 %), so the warehouse views' time windows are
// planned with statistics that know the newest events. Without them, right
// after a bulk load, the planner costed rudder_events_time as reading every
// page and scanned the whole table instead (164 ms against 18 ms at 1 M).
var timeWindowAnalyze = []string{"autovacuum_analyze_scale_factor=0.02"}

// tableAutovacuum are the tables with settings of their own, and those settings.
var tableAutovacuum = []struct {
	table    string
	settings []string
}{
	{"event_facts", insertOnlyVacuum},
	{"delivery_facts", insertOnlyVacuum},
	{rudderRows, timeWindowAnalyze},
}

// autovacuumDDL sets each table's settings when it lacks them: ALTER TABLE …
// SET waits for a running autovacuum of the table, so a start with nothing to
// change must not issue it.
func autovacuumDDL(schema string) []string {
	var out []string
	for _, t := range tableAutovacuum {
		out = append(out, fmt.Sprintf(`DO $autovacuum$
BEGIN
	IF NOT coalesce((SELECT reloptions FROM pg_class WHERE oid = to_regclass(%[1]s)) @> %[2]s, false) THEN
		ALTER TABLE %[3]s SET (%[4]s);
	END IF;
END $autovacuum$`, quoteLiteral(ident(schema, t.table)), quoteLiteral("{"+strings.Join(t.settings, ",")+"}"), ident(schema, t.table), strings.Join(t.settings, ", ")))
	}
	return out
}
