package postgres

import (
	"github.com/cioloader/cioloader/internal/rudder"

	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ident quotes one or more identifier parts: ident("s", "data") = "s"."data".
func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// integrationDDL creates (idempotently) everything an integration's schema
// holds: the Stitch table, the rejection table, the RudderStack table and the
// analyst views. It runs at creation and, as a migration step, at every start
// for integrations that already exist, so an upgrade adds what is new.
func integrationDDL(schema string) []string {
	s := func(table string) string { return ident(schema, table) }
	stmts := []string{
		`CREATE SCHEMA IF NOT EXISTS ` + ident(schema),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			event_id           text NOT NULL CONSTRAINT data_pkey PRIMARY KEY,
			_sdc_received_at   timestamptz,
			_sdc_batched_at    timestamptz,
			_sdc_sequence      bigint NOT NULL,
			_sdc_table_version bigint,
			_sdc_raw           json
		)`, s("data")),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			_sdc_rejected_at timestamptz,
			table_name       text,
			reason           text,
			record           text
		)`, s("_sdc_rejected")),
		rudderRowsRename(schema),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			event_id           text NOT NULL CONSTRAINT rudder_events_pkey PRIMARY KEY,
			message_id         uuid,
			event              text,
			user_id            text,
			anonymous_id       text,
			original_timestamp timestamptz,
			received_at        timestamptz,
			object_type        text,
			metric             text,
			properties         jsonb,
			context            jsonb,
			nonstring_ids      jsonb,
			_sdc_sequence      bigint NOT NULL
		)`, s(rudderRows)),
		rudderPayloadUpgrade(schema),
		rudderEventsView(schema),
	}
	stmts = append(stmts, subtableUpgrade(schema))
	stmts = append(stmts, factsDDL(schema)...)
	for _, ix := range lateIndexes {
		stmts = append(stmts, ix.ddl(schema))
	}
	stmts = append(stmts, deliveriesDDL(schema))
	stmts = append(stmts, summariesDDL(schema)...)
	stmts = append(stmts, whInitialDDL(schema)...)
	stmts = append(stmts, autovacuumDDL(schema)...)
	return append(stmts, viewDDL(schema)...)
}

// subtableSystemColumns are the Stitch system columns every subtable has besides its
// keys and _sdc_sequence (Stitch documents them for every table it loads). The writer
// copies them from the event's data row.
var subtableSystemColumns = [][2]string{
	{"_sdc_received_at", "timestamptz"}, {"_sdc_batched_at", "timestamptz"}, {"_sdc_table_version", "bigint"},
}

// subtableUpgrade adds subtableSystemColumns to the subtables made before they
// existed. It alters only the tables that lack them, so a start with nothing to
// upgrade takes no table lock.
func subtableUpgrade(schema string) string {
	adds := make([]string, len(subtableSystemColumns))
	for i, c := range subtableSystemColumns {
		adds[i] = "ADD COLUMN IF NOT EXISTS " + c[0] + " " + c[1]
	}
	return fmt.Sprintf(`DO $upgrade$
DECLARE t text;
BEGIN
	FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = %[1]s AND c.relkind = 'r' AND c.relname LIKE 'data\_\_%%'
		  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = '_sdc_table_version' AND NOT a.attisdropped)
	LOOP
		EXECUTE format('ALTER TABLE %%I.%%I %[2]s', %[1]s, t);
	END LOOP;
END $upgrade$`, quoteLiteral(schema), strings.Join(adds, ", "))
}

// rudderPayloadUpgrade moves a table made before the payload was derived to the lean
// layout: the ids that were not JSON strings are kept in nonstring_ids (the payload
// needs their type back), then the stored payload column goes. It does nothing on a
// table already in that layout.
func rudderPayloadUpgrade(schema string) string {
	r := ident(schema, rudderRows)
	return fmt.Sprintf(`DO $upgrade$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = %[2]s AND table_name = 'rudder_rows' AND column_name = 'payload') THEN
		RETURN;
	END IF;
	ALTER TABLE %[1]s ADD COLUMN IF NOT EXISTS nonstring_ids jsonb;
	UPDATE %[1]s SET nonstring_ids = jsonb_strip_nulls(jsonb_build_object(
		'userId', CASE WHEN jsonb_typeof(payload->'userId') <> 'string' THEN payload->'userId' END,
		'anonymousId', CASE WHEN jsonb_typeof(payload->'anonymousId') <> 'string' THEN payload->'anonymousId' END))
	WHERE jsonb_typeof(payload->'userId') NOT IN ('string', 'null')
	   OR jsonb_typeof(payload->'anonymousId') NOT IN ('string', 'null');
	ALTER TABLE %[1]s DROP COLUMN payload;
END $upgrade$`, r, quoteLiteral(schema))
}

// rudderRows is the table behind the rudder_events view: the columns of
// rudder_events that vary between events, context without the members every
// event has (rudder.ContextConstantJSON); the view adds the rest back. The primary key keeps
// its documented name, rudder_events_pkey.
const rudderRows = "rudder_rows"

// rudderRowsRename turns a rudder_events table (a schema made before rudder_rows)
// into rudder_rows, so the view can take its name. A rename: nothing is rewritten.
// Its rows keep their whole context, which the view reads the same (the constant
// members || a whole context is that context). Views over the table follow it;
// the integration DDL makes cioloader's own again over the view.
func rudderRowsRename(schema string) string {
	return fmt.Sprintf(`DO $rename$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass(%[1]s) AND relkind = 'r') THEN
		ALTER TABLE %[2]s RENAME TO rudder_rows;
	END IF;
END $rename$`, quoteLiteral(ident(schema, "rudder_events")), ident(schema, "rudder_events"))
}

// rudderEventsView is rudder_events (SPEC 6) over rudder_rows: the same columns,
// with what every event has added back: the context's constant members, type
// (always "track") and sent_at (always original_timestamp, as in the
// transformer). A table renamed from rudder_events keeps its type and sent_at
// columns, equal to these; the writer leaves them NULL.
func rudderEventsView(schema string) string {
	return fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS
SELECT r.event_id, r.message_id, 'track'::text AS type, r.event, r.user_id, r.anonymous_id, r.original_timestamp,
       r.original_timestamp AS sent_at,
       r.received_at, r.object_type, r.metric, r.properties, %s::jsonb || r.context AS context,
       r.nonstring_ids, r._sdc_sequence
FROM %s AS r`, ident(schema, "rudder_events"), quoteLiteral(rudder.ContextConstantJSON), ident(schema, rudderRows))
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// subtableDDL creates an array subtable with its Stitch keys.
func subtableDDL(schema, table string, depth int) string {
	cols := []string{"_sdc_source_key_event_id text NOT NULL"}
	keys := []string{"_sdc_source_key_event_id"}
	for i := range depth {
		cols = append(cols, fmt.Sprintf("_sdc_level_%d_id bigint NOT NULL", i))
		keys = append(keys, fmt.Sprintf("_sdc_level_%d_id", i))
	}
	cols = append(cols, "_sdc_sequence bigint NOT NULL")
	for _, c := range subtableSystemColumns {
		cols = append(cols, c[0]+" "+c[1])
	}
	cols = append(cols, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n\t%s\n)", ident(schema, table), strings.Join(cols, ",\n\t"))
}
