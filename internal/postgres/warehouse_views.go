package postgres

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cioloader/cioloader/internal/warehouse"
)

// The RudderStack warehouse layout (README "For RudderStack users"): the view
// tracks and one view per event table over rudder_events, laid out as RudderStack's
// warehouse loader lays out the same events for Postgres. Their columns are the
// fixed ones below, then every column recorded in cioloader.warehouse_columns for
// the relation, in the order first recorded (so CREATE OR REPLACE VIEW only ever
// appends), each with the Postgres type of its first value.

// tracksTable is RudderStack's table of every track event.
const tracksTable = "tracks"

// whColumn is one recorded column of a relation: its type (the first recorded)
// and every path it is read from.
type whColumn struct {
	name  string
	typ   warehouse.Type
	paths []whPath
}

// whPath is where a column's value is: its source and the keys under it.
type whPath struct {
	source warehouse.Source
	keys   []string
}

// whRelation is one relation's recorded layout: the event names it holds (none
// for tracks: it holds them all) and its columns in order.
type whRelation struct {
	name   string
	events []string
	cols   []*whColumn
}

// whFixedColumns are the columns every track row has, before the recorded ones.
// Where RudderStack's value comes from its own run, the nearest value we hold
// stands in: the message id, the request's arrival, the row's write time, the
// integration's schema as the source id; the request IP is not kept (NULL).
func whFixedColumns(schema string, events map[string]string) [][2]string {
	return [][2]string{
		{"id", "r.message_id::text"},
		{"event", eventValueCase(events)},
		{"event_text", "r.event"},
		{"original_timestamp", "coalesce(r.original_timestamp, r.received_at)"},
		{"sent_at", "coalesce(r.sent_at, r.received_at)"},
		// The processor's rule: received_at − (sent_at − original_timestamp).
		{"timestamp", "r.received_at - (coalesce(r.sent_at, r.received_at) - coalesce(r.original_timestamp, r.received_at))"},
		{"received_at", "r.received_at"},
		{"uuid_ts", "d._sdc_batched_at"},
		{"context_source_id", quoteLiteral(schema) + "::text"},
		{"context_source_type", "'Customerio'::text"},
		{"context_destination_id", "'cioloader'::text"},
		{"context_destination_type", "'POSTGRES'::text"},
		{"context_ip", "NULL::text"},
		{"context_request_ip", "NULL::text"},
	}
}

// eventValueCase maps rudder_events.event to the event column's value (its
// snake_case), for the event names recorded.
func eventValueCase(events map[string]string) string {
	if len(events) == 0 {
		return "NULL::text"
	}
	var b strings.Builder
	b.WriteString("CASE r.event")
	for _, name := range slicesSorted(events) {
		fmt.Fprintf(&b, " WHEN %s THEN %s", quoteLiteral(name), quoteLiteral(events[name]))
	}
	b.WriteString(" END")
	return b.String()
}

func slicesSorted(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// whViewSQL is the CREATE OR REPLACE VIEW of one relation. A column named like a
// fixed one is the fixed one (RudderStack's own values win over the event's).
// uuid_ts comes from data by a LEFT JOIN on its key, which the planner drops when
// a query does not read it.
func whViewSQL(schema string, rel *whRelation, events map[string]string) string {
	var cols []string
	fixed := map[string]bool{}
	for _, f := range whFixedColumns(schema, events) {
		cols = append(cols, f[1]+" AS "+ident(f[0]))
		fixed[f[0]] = true
	}
	for _, c := range rel.cols {
		if !fixed[c.name] {
			cols = append(cols, whValueSQL(schema, c)+" AS "+ident(c.name))
		}
	}
	where := ""
	if rel.name != tracksTable {
		lits := make([]string, len(rel.events))
		for i, e := range rel.events {
			lits[i] = quoteLiteral(e)
		}
		where = "\nWHERE r.event IN (" + strings.Join(lits, ", ") + ")"
	}
	return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS\nSELECT %s\nFROM %s r LEFT JOIN %s d ON d.event_id = r.event_id%s",
		ident(schema, rel.name), strings.Join(cols, ",\n       "), ident(schema, "rudder_events"), ident(schema, "data"), where)
}

// whValueSQL reads a column from its paths: the first non-NULL of them, context and
// ids before properties, and among properties the path RudderStack visits last
// (keys in byte order) first, since its value is the one RudderStack keeps.
func whValueSQL(schema string, c *whColumn) string {
	paths := slices.Clone(c.paths)
	slices.SortStableFunc(paths, func(a, b whPath) int {
		if pa, pb := a.source == warehouse.FromProperties, b.source == warehouse.FromProperties; pa != pb {
			if pa {
				return 1
			}
			return -1
		}
		return -slices.Compare(a.keys, b.keys)
	})
	exprs := make([]string, len(paths))
	for i, p := range paths {
		exprs[i] = whConvert(schema, c.typ, whJSONB(p))
	}
	if len(exprs) == 1 {
		return exprs[0]
	}
	return "coalesce(" + strings.Join(exprs, ", ") + ")"
}

// whJSONB is the jsonb value at p in rudder_events' row r.
func whJSONB(p whPath) string {
	switch p.source {
	case warehouse.FromUserID:
		return "coalesce(r.nonstring_ids->'userId', to_jsonb(r.user_id))"
	case warehouse.FromAnonymousID:
		return "coalesce(r.nonstring_ids->'anonymousId', to_jsonb(r.anonymous_id))"
	case warehouse.FromContext:
		return "(r.context #> " + textArray(p.keys) + ")"
	}
	return "(r.properties #> " + textArray(p.keys) + ")"
}

func textArray(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
	}
	return quoteLiteral("{"+strings.Join(q, ",")+"}") + "::text[]"
}

// whConvert is a jsonb value v as a column of type t, by RudderStack's rules for a
// value whose own type is not the column's (its loader's HandleSchemaChange): a text
// column takes any value as text (arrays as their compact JSON), a bigint column
// takes numbers (a fraction is cut off), a numeric column numbers, and otherwise
// the value is discarded (NULL; RudderStack writes it to rudder_discards). Blank
// values (null, "", [], [""]) are NULL, as RudderStack leaves them out.
func whConvert(schema string, t warehouse.Type, v string) string {
	switch t {
	case warehouse.Int:
		return fmt.Sprintf(`CASE WHEN jsonb_typeof(%[1]s) = 'number' AND abs(%[1]s::numeric) < 9223372036854775807
			THEN trunc(%[1]s::numeric)::bigint END`, v)
	case warehouse.Float:
		return fmt.Sprintf(`CASE WHEN jsonb_typeof(%[1]s) = 'number' THEN %[1]s::numeric END`, v)
	case warehouse.Boolean:
		return fmt.Sprintf(`CASE WHEN jsonb_typeof(%[1]s) = 'boolean' THEN %[1]s::boolean END`, v)
	case warehouse.Datetime:
		return fmt.Sprintf(`CASE WHEN jsonb_typeof(%[1]s) = 'string' THEN %[2]s(%[1]s #>> '{}') END`, v, ident(schema, whTimestampFunc))
	case warehouse.JSON:
		return v
	}
	return fmt.Sprintf(`CASE jsonb_typeof(%[1]s) WHEN 'array' THEN CASE WHEN %[1]s NOT IN ('[]', '[""]') THEN %[2]s(%[1]s) END
			WHEN 'object' THEN %[2]s(%[1]s) ELSE nullif(%[1]s #>> '{}', '') END`, v, ident(schema, whJSONFunc))
}

// The helper functions of the views, in each integration's schema (a reader role
// may not use the control schema).
const (
	whJSONFunc      = "_rudder_json_text"
	whTimestampFunc = "_rudder_timestamptz"
)

// whHelpersDDL creates the helpers: the compact JSON text of a jsonb value (keys in
// byte order, no spaces: what Go's encoder writes, which RudderStack loads for an
// array), and a timestamp string read as RudderStack reads one (ISO-8601 shapes
// only, UTC when no zone, years 1–9999; NULL otherwise, never an error).
func whHelpersDDL(schema string) []string {
	return []string{
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION %[1]s(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
SELECT CASE jsonb_typeof(v)
	WHEN 'object' THEN '{' || coalesce((SELECT string_agg(to_jsonb(k)::text || ':' || %[1]s(e), ',' ORDER BY k COLLATE "C")
		FROM jsonb_each(v) AS x(k, e)), '') || '}'
	WHEN 'array' THEN '[' || coalesce((SELECT string_agg(%[1]s(e), ',' ORDER BY i)
		FROM jsonb_array_elements(v) WITH ORDINALITY AS x(e, i)), '') || ']'
	ELSE v::text END
$f$`, ident(schema, whJSONFunc)),
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s(s text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE t timestamptz;
BEGIN
	IF length(s) > 40 OR s !~ %s THEN
		RETURN NULL;
	END IF;
	IF s ~ '[T ][0-9:.]+([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$' THEN
		t := s::timestamptz;
	ELSE
		t := s::timestamp AT TIME ZONE 'UTC';
	END IF;
	IF extract(year FROM t AT TIME ZONE 'UTC') NOT BETWEEN 1 AND 9999 THEN
		RETURN NULL;
	END IF;
	RETURN t;
EXCEPTION WHEN others THEN
	RETURN NULL;
END
$f$`, ident(schema, whTimestampFunc), quoteLiteral(whTimestampPattern)),
	}
}

// whTimestampPattern is warehouse's timestamp shape in Postgres's regex syntax.
const whTimestampPattern = `^([+-]?[0-9]{4})((-)((0[1-9]|1[0-2])(-([12][0-9]|0[1-9]|3[01])))([T ]((([01][0-9]|2[0-3])((:)[0-5][0-9]))(:[0-9]+)?)?(:[0-5][0-9]([.][0-9]+)?)?([zZ]|([+-])([01][0-9]|2[0-3]):?([0-5][0-9])?)?)?)$`

// whInitialDDL creates, in a new schema, the helpers and a tracks view with the
// fixed columns only (an existing one is left as it is: it may have grown).
func whInitialDDL(schema string) []string {
	create := whViewSQL(schema, &whRelation{name: tracksTable}, nil)
	return append(whHelpersDDL(schema), fmt.Sprintf(`DO $wh$
BEGIN
	IF to_regclass(%s) IS NULL THEN
		EXECUTE %s;
	END IF;
END $wh$`, quoteLiteral(ident(schema, tracksTable)), quoteLiteral(create)))
}
