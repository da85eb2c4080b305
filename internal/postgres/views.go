package postgres

import (
	"fmt"
	"strings"
)

// deliveryMetrics are the delivery metrics of Customer.io's reporting-webhooks spec, one
// <metric>_at column each in delivery_funnel. The first six were the funnel's first
// columns; the rest follow them, so CREATE OR REPLACE VIEW can upgrade an existing
// funnel (it only appends columns).
var deliveryMetrics = []string{
	"sent", "delivered", "opened", "clicked", "converted", "bounced",
	"drafted", "attempted", "dropped", "failed", "spammed", "unsubscribed", "undeliverable", "replied",
}

// channelViews are the per-object-type views: every object type of the spec.
var channelViews = []struct{ view, objectType string }{
	{"email_events", "email"}, {"push_events", "push"}, {"sms_events", "sms"},
	{"whatsapp_events", "whatsapp"}, {"in_app_events", "in_app"}, {"slack_events", "slack"},
	{"webhook_events", "webhook"}, {"customer_events", "customer"},
}

// factColumns are event_facts' columns: the ones the views filter, sort and
// summarise by (internal/facts computes them in Go at ingest and replay), and
// how SQL reads each from data's row d and r, its _sdc_raw as jsonb, for a
// table filled by an upgrade. facts.Of is the same mapping in Go; a test holds
// the two equal on Postgres. A legacy body's event_type ("email_opened",
// "in_app_clicked") splits into object_type and metric the way rudder.legacyPair
// splits it. The message and journey ids are not stored here: the events view
// reads them from _sdc_raw (rawIDs), and delivery_facts keeps the delivery's.
// email is stored for bounced events only (bounce_facts reads it); the events
// view reads every event's from _sdc_raw, by the same SQL.
var factColumns = [][2]string{
	{"event_id", "d.event_id"},
	{"object_type", objectTypeSQL},
	{"metric", metricSQL},
	// NULL when it is object_type_metric (facts.Facts.StoredEventName): read it
	// as eventName gives it.
	{"event_name", `NULLIF(coalesce(r->>'event_type', (r->>'object_type') || '_' || (r->>'metric')), ` + objectTypeSQL + ` || '_' || ` + metricSQL + `)`},
	{"occurred_at", `CASE WHEN jsonb_typeof(r->'timestamp') = 'number'
		AND (r->>'timestamp')::numeric BETWEEN -62135596800 AND 253402300799
		THEN to_timestamp((r->>'timestamp')::double precision) END`},
	{"customer_id", customerIDSQL},
	{"email", `coalesce(r#>>'{data,identifiers,email}', r#>>'{data,email_address}',
		CASE WHEN r->>'object_type' = 'email' THEN r#>>'{data,recipient}' END)`},
	{"delivery_id", `coalesce(r#>>'{data,delivery_id}', CASE WHEN r ? 'event_type' THEN r#>>'{data,email_id}' END)`},
	{"received_at", `d._sdc_received_at`},
	{"failure_message", `coalesce(r#>>'{data,failure_message}',
		CASE jsonb_typeof(r#>'{data,recipients}')
		     WHEN 'array' THEN r#>>'{data,recipients,0,failure_message}'
		     WHEN 'object' THEN r#>>'{data,recipients,failure_message}' END)`},
	{"_sdc_sequence", "d._sdc_sequence"},
	// Where an event came from: the import mark's source for an event imported
	// from Customer.io's history (internal/history), NULL for a webhook event.
	{"source", `r#>>'{cioloader_import,source}'`},
	// The hashes of the event's erasure keys, which event_facts_erasure finds a
	// person's events by (migration 000012), but the id equal to customer_id,
	// which event_facts_by_customer finds; the writer computes them from the
	// identifiers Go read (erasureHashesOf).
	{"erasure_hashes", `cioloader.erasure_key_hashes(array_remove(cioloader.erasure_keys(r), cioloader.erasure_key('id', ` + customerIDSQL + `)))`},
}

// objectTypeSQL, metricSQL and customerIDSQL are event_facts' object_type,
// metric and customer_id over r.
const (
	objectTypeSQL = `coalesce(r->>'object_type', substring(r->>'event_type' from '^(in_app|[^_]+)_.+$'))`
	metricSQL     = `coalesce(r->>'metric', substring(r->>'event_type' from '^(?:in_app|[^_]+)_(.+)$'))`
	customerIDSQL = `coalesce(r#>>'{data,identifiers,id}', r#>>'{data,customer_id}')`
)

// eventName is an event's name from the event_facts row alias (the stored
// name, or object_type_metric where none is stored): the events view's and
// the customer summary's.
func eventName(alias string) string {
	return fmt.Sprintf("coalesce(%s.event_name, %s)", alias, derivedName(alias))
}

// derivedName is the name event_facts does not store: object_type_metric of
// the row alias.
func derivedName(alias string) string {
	return fmt.Sprintf("%[1]s.object_type || '_' || %[1]s.metric", alias)
}

// rawIDs are the events view's columns read from _sdc_raw through its join to
// data (event_facts does not store them), as SQL over r, the raw jsonb. Each is
// parsed only when a query reads it. deliveryIDCols but customer_id are among them.
var rawIDs = [][2]string{
	{"campaign_id", `#>>'{data,campaign_id}'`},
	{"broadcast_id", `#>>'{data,broadcast_id}'`},
	{"action_id", `#>>'{data,action_id}'`},
	{"journey_id", `#>>'{data,journey_id}'`},
	{"newsletter_id", `#>>'{data,newsletter_id}'`},
	{"transactional_message_id", `#>>'{data,transactional_message_id}'`},
	{"parent_action_id", `#>>'{data,parent_action_id}'`},
	{"trigger_event_id", `#>>'{data,trigger_event_id}'`},
	{"content_id", `#>>'{data,content_id}'`},
}

// factSQL is factColumns' SQL of the column name.
func factSQL(name string) string {
	for _, c := range factColumns {
		if c[0] == name {
			return c[1]
		}
	}
	panic("postgres: no fact column " + name)
}

// rawID is the SQL of the rawIDs column name over the jsonb expression r.
func rawID(name, r string) string {
	for _, c := range rawIDs {
		if c[0] == name {
			return "(" + r + c[1] + ")"
		}
	}
	panic("postgres: no raw id " + name)
}

// rawJSONB is data's _sdc_raw (alias d) as jsonb, parsed once per row for every
// column that reads it (OFFSET 0 keeps the planner from copying the cast into each):
// a no-op for a jsonb column, one parse for a json one.
const rawJSONB = ` CROSS JOIN LATERAL (SELECT d._sdc_raw::jsonb AS r OFFSET 0) AS j`

// factTypes are the columns' types (text unless named).
var factTypes = map[string]string{"occurred_at": "timestamptz", "received_at": "timestamptz", "_sdc_sequence": "bigint NOT NULL", "erasure_hashes": "int4[]"}

// factsDDL creates event_facts, the narrow typed copy of data the analyst views read
// (a view that parsed _sdc_raw on every query took seconds over a million events).
// When it is new and data is not empty (an upgrade), it is filled from data. An
// index (event_facts_customer_last, see lateIndexes) serves the per-customer
// queries from the index alone.
func factsDDL(schema string) []string {
	cols := make([]string, len(factColumns))
	for i, c := range factColumns {
		typ := factTypes[c[0]]
		if typ == "" {
			typ = "text"
		}
		cols[i] = c[0] + " " + typ
	}
	cols[0] = "event_id text NOT NULL CONSTRAINT event_facts_pkey PRIMARY KEY"
	f := ident(schema, "event_facts")
	return []string{factsUpgrade(schema),
		fmt.Sprintf(`DO $facts$
BEGIN
	IF to_regclass(%[3]s) IS NOT NULL THEN
		RETURN;
	END IF;
	CREATE TABLE %[1]s (
		%[2]s
	);
	%[4]s;
END $facts$`, f, strings.Join(cols, ",\n\t\t"), quoteLiteral(f), factsFill(schema, "", "<")),
	}
}

// factsUpgrade adds the columns later releases added to an event_facts made
// before them, without a rewrite: source (webhook events' NULL is its right
// value) and erasure_hashes (NULL on the rows written before it, whose person
// data_erasure_idx still finds until `cioloader upgrade` computes them). It
// alters only a table that lacks one, so a start with nothing to upgrade takes no lock.
func factsUpgrade(schema string) string {
	return fmt.Sprintf(`DO $upgrade$
BEGIN
	IF to_regclass(%[2]s) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = %[3]s AND table_name = 'event_facts' AND column_name = 'source') THEN
		ALTER TABLE %[1]s ADD COLUMN source text;
	END IF;
	IF to_regclass(%[2]s) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = %[3]s AND table_name = 'event_facts' AND column_name = 'erasure_hashes') THEN
		ALTER TABLE %[1]s ADD COLUMN erasure_hashes int4[];
	END IF;
	-- The update trigger compares the event's name as eventName gives it since
	-- event_name is NULL when derivable (a trigger is not replaced at start).
	IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(%[2]s) AND tgname = 'customer_facts_upd'
		AND pg_get_triggerdef(oid) NOT ILIKE '%%coalesce(old.event_name%%') THEN
		%[4]s;
	END IF;
END $upgrade$`, ident(schema, "event_facts"), quoteLiteral(ident(schema, "event_facts")), quoteLiteral(schema),
		triggersDDL(schema, "event_facts", "customer_facts", factTriggers[1:2]))
}

// factsFill is the INSERT that (re)writes event_facts from data's rows matching
// where ("" for all). Rows are taken in event_id order, as the writer locks them.
// guard is "<" at ingest (a row is replaced by a newer copy only) and "<=" in replay
// (the same copy is rewritten with the current mapping).
func factsFill(schema, where, guard string) string {
	names, exprs := make([]string, len(factColumns)), make([]string, len(factColumns))
	for i, c := range factColumns {
		names[i], exprs[i] = c[0], c[1]
		if c[0] == "email" { // stored for bounces only, as the writer stores it
			exprs[i] = "CASE WHEN " + factSQL("metric") + " = 'bounced' THEN " + c[1] + " END"
		}
	}
	sets := make([]string, 0, len(names)-1)
	for _, n := range names[1:] {
		sets = append(sets, n+" = EXCLUDED."+n)
	}
	if where != "" {
		where = " WHERE " + where
	}
	return fmt.Sprintf(`INSERT INTO %s AS t (%s) SELECT %s FROM %s AS d`+rawJSONB+`%s ORDER BY d.event_id COLLATE "C"
	ON CONFLICT (event_id) DO UPDATE SET %s WHERE t._sdc_sequence %s EXCLUDED._sdc_sequence`,
		ident(schema, "event_facts"), strings.Join(names, ", "), strings.Join(exprs, ",\n\t"), ident(schema, "data"), where,
		strings.Join(sets, ", "), guard)
}

// eventsSelect is the events view over event_facts. raw comes from data by a LEFT
// JOIN on its primary key, which the planner drops when a query does not read raw.
// Columns are only ever appended (CREATE OR REPLACE VIEW cannot reorder them).
// The ids event_facts does not store are read from raw, each parsed only when a
// query reads it; raw stays jsonb whatever data's column is (json since SPEC 5
// changed), so the view's columns keep their types.
var eventsSelect = `SELECT f.event_id, f.object_type, f.metric, ` + eventName("f") + ` AS event_name, f.occurred_at, f.customer_id,
       (SELECT ` + factSQL("email") + ` FROM (SELECT d._sdc_raw::jsonb AS r OFFSET 0) AS j) AS email,
       f.delivery_id, ` + rawID("campaign_id", "d._sdc_raw::jsonb") + ` AS campaign_id, ` + rawID("broadcast_id", "d._sdc_raw::jsonb") + ` AS broadcast_id,
       ` + rawID("action_id", "d._sdc_raw::jsonb") + ` AS action_id, ` + rawID("journey_id", "d._sdc_raw::jsonb") + ` AS journey_id, f.received_at,
       d._sdc_raw::jsonb AS raw,
       ` + rawID("newsletter_id", "d._sdc_raw::jsonb") + ` AS newsletter_id, ` + rawID("transactional_message_id", "d._sdc_raw::jsonb") + ` AS transactional_message_id,
       ` + rawID("parent_action_id", "d._sdc_raw::jsonb") + ` AS parent_action_id, ` + rawID("trigger_event_id", "d._sdc_raw::jsonb") + ` AS trigger_event_id,
       ` + rawID("content_id", "d._sdc_raw::jsonb") + ` AS content_id,
       f.failure_message, coalesce(f.source, 'webhook') AS source
FROM %[1]s f LEFT JOIN %[2]s d ON d.event_id = f.event_id`

// funnelSelect is delivery_funnel: one row per delivery and object type, with the
// first time of every delivery metric, from delivery_facts (see deliveries.go). Ids
// come after the first six metric columns so that CREATE OR REPLACE VIEW could
// upgrade the first funnel, which had only those.
const funnelSelect = `SELECT delivery_id, object_type, %[2]s FROM %[1]s`

// payloadSelect is rudder_payloads: the whole RudderStack event, as `cioloader
// transform` prints it, derived from rudder_events' columns (it is not stored a second
// time). Optional members are left out when NULL, as the transform leaves them out;
// instants print as JavaScript's toISOString does.
const payloadSelect = `SELECT r.event_id,
       jsonb_build_object('context', r.context, 'integrations', '{"Customer.io": false}'::jsonb,
                          'type', r.type, 'event', r.event, 'messageId', r.message_id::text)
       || CASE WHEN r.properties IS NULL THEN '{}' ELSE jsonb_build_object('properties', r.properties) END
       || CASE WHEN r.user_id IS NULL THEN '{}'
               ELSE jsonb_build_object('userId', coalesce(r.nonstring_ids->'userId', to_jsonb(r.user_id))) END
       || CASE WHEN r.anonymous_id IS NULL THEN '{}'
               ELSE jsonb_build_object('anonymousId', coalesce(r.nonstring_ids->'anonymousId', to_jsonb(r.anonymous_id))) END
       || CASE WHEN r.original_timestamp IS NULL THEN '{}'
               ELSE jsonb_build_object('originalTimestamp', %[2]s, 'sentAt', %[2]s) END
       || CASE WHEN r.received_at IS NULL THEN '{}' ELSE jsonb_build_object('receivedAt', %[3]s) END AS payload
FROM %[1]s r`

// isoMillis formats a timestamptz column as RudderStack prints instants.
func isoMillis(col string) string {
	return fmt.Sprintf(`to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`, col)
}

// viewDDL returns the analyst views of SPEC 5.1, as CREATE OR REPLACE so that every
// start upgrades them.
func viewDDL(schema string) []string {
	v := func(name string) string { return ident(schema, name) }
	stmts := []string{"CREATE OR REPLACE VIEW " + v("events") + " AS\n" + fmt.Sprintf(eventsSelect, v("event_facts"), v("data"))}
	for _, ch := range channelViews {
		stmts = append(stmts, fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS SELECT * FROM %s WHERE object_type = '%s'`,
			v(ch.view), v("events"), ch.objectType))
	}
	stmts = append(stmts, "CREATE OR REPLACE VIEW "+v("rudder_payloads")+" AS\n"+
		fmt.Sprintf(payloadSelect, v("rudder_events"), isoMillis("r.original_timestamp"), isoMillis("r.received_at")))
	stmts = append(stmts, "CREATE OR REPLACE VIEW "+v("delivery_funnel")+" AS\n"+
		fmt.Sprintf(funnelSelect, v("delivery_facts"), strings.Join(deliveryColumns(), ", ")))
	return append(stmts, summaryViews(schema)...)
}
