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

// legacySplit is how a legacy body's event_type ("email_opened", "in_app_clicked")
// splits into object_type (group 1 of the first pattern) and metric (of the second);
// rudder.legacyPair splits it the same way.
const (
	legacyObjectType = `'^(in_app|[^_]+)_.+$'`
	legacyMetric     = `'^(?:in_app|[^_]+)_(.+)$'`
)

// eventsSelect is the events view. It reads _sdc_raw only, so it works whatever
// columns the data table has grown. Columns are only ever appended (CREATE OR
// REPLACE VIEW cannot reorder them): the ids added for the whole spec come last.
const eventsSelect = `SELECT d.event_id,
       coalesce(d._sdc_raw->>'object_type', substring(d._sdc_raw->>'event_type' from %[2]s)) AS object_type,
       coalesce(d._sdc_raw->>'metric', substring(d._sdc_raw->>'event_type' from %[3]s)) AS metric,
       coalesce(d._sdc_raw->>'event_type',
                (d._sdc_raw->>'object_type') || '_' || (d._sdc_raw->>'metric')) AS event_name,
       CASE WHEN jsonb_typeof(d._sdc_raw->'timestamp') = 'number'
             AND (d._sdc_raw->>'timestamp')::numeric BETWEEN -62135596800 AND 253402300799
            THEN to_timestamp((d._sdc_raw->>'timestamp')::double precision) END AS occurred_at,
       coalesce(d._sdc_raw#>>'{data,identifiers,id}', d._sdc_raw#>>'{data,customer_id}') AS customer_id,
       coalesce(d._sdc_raw#>>'{data,identifiers,email}', d._sdc_raw#>>'{data,email_address}',
                CASE WHEN d._sdc_raw->>'object_type' = 'email' THEN d._sdc_raw#>>'{data,recipient}' END) AS email,
       coalesce(d._sdc_raw#>>'{data,delivery_id}',
                CASE WHEN d._sdc_raw ? 'event_type' THEN d._sdc_raw#>>'{data,email_id}' END) AS delivery_id,
       d._sdc_raw#>>'{data,campaign_id}' AS campaign_id,
       d._sdc_raw#>>'{data,broadcast_id}' AS broadcast_id,
       d._sdc_raw#>>'{data,action_id}' AS action_id,
       d._sdc_raw#>>'{data,journey_id}' AS journey_id,
       d._sdc_received_at AS received_at,
       d._sdc_raw AS raw,
       d._sdc_raw#>>'{data,newsletter_id}' AS newsletter_id,
       d._sdc_raw#>>'{data,transactional_message_id}' AS transactional_message_id,
       d._sdc_raw#>>'{data,parent_action_id}' AS parent_action_id,
       d._sdc_raw#>>'{data,trigger_event_id}' AS trigger_event_id,
       d._sdc_raw#>>'{data,content_id}' AS content_id,
       coalesce(d._sdc_raw#>>'{data,failure_message}',
                CASE jsonb_typeof(d._sdc_raw#>'{data,recipients}')
                     WHEN 'array' THEN d._sdc_raw#>>'{data,recipients,0,failure_message}'
                     WHEN 'object' THEN d._sdc_raw#>>'{data,recipients,failure_message}' END) AS failure_message
FROM %[1]s d`

// funnelSelect is delivery_funnel: one row per delivery and object type, with the
// first time of every delivery metric. Ids come after the first six metric columns
// for the same append-only reason as in eventsSelect.
const funnelSelect = `SELECT delivery_id,
       object_type,
       min(campaign_id) AS campaign_id,
       min(broadcast_id) AS broadcast_id,
       min(action_id) AS action_id,
       min(customer_id) AS customer_id,
       %[2]s,
       min(newsletter_id) AS newsletter_id,
       min(transactional_message_id) AS transactional_message_id,
       %[3]s
FROM %[1]s
WHERE delivery_id IS NOT NULL
GROUP BY delivery_id, object_type`

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
	stmts := []string{"CREATE OR REPLACE VIEW " + v("events") + " AS\n" +
		fmt.Sprintf(eventsSelect, v("data"), legacyObjectType, legacyMetric)}
	for _, ch := range channelViews {
		stmts = append(stmts, fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS SELECT * FROM %s WHERE object_type = '%s'`,
			v(ch.view), v("events"), ch.objectType))
	}
	stmts = append(stmts, "CREATE OR REPLACE VIEW "+v("rudder_payloads")+" AS\n"+
		fmt.Sprintf(payloadSelect, v("rudder_events"), isoMillis("r.original_timestamp"), isoMillis("r.received_at")))
	return append(stmts, "CREATE OR REPLACE VIEW "+v("delivery_funnel")+" AS\n"+
		fmt.Sprintf(funnelSelect, v("events"), firstTimes(deliveryMetrics[:6]), firstTimes(deliveryMetrics[6:])))
}

// firstTimes is one "min(occurred_at) FILTER (...) AS <metric>_at" column per metric.
func firstTimes(metrics []string) string {
	cols := make([]string, len(metrics))
	for i, m := range metrics {
		cols[i] = fmt.Sprintf("min(occurred_at) FILTER (WHERE metric = '%s') AS %s_at", m, m)
	}
	return strings.Join(cols, ",\n       ")
}
