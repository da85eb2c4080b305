package postgres

import "fmt"

// viewDDL returns the analyst views of SPEC 5.1. They read _sdc_raw only, so
// they keep working whatever columns the data table grows, and they are
// CREATE OR REPLACE so a new release can change them.
func viewDDL(schema string) []string {
	data := ident(schema, "data")
	v := func(name string) string { return ident(schema, name) }
	events := fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS
SELECT d.event_id,
       coalesce(d._sdc_raw->>'object_type', substring(d._sdc_raw->>'event_type' from '^(in_app|[^_]+)')) AS object_type,
       coalesce(d._sdc_raw->>'metric', substring(d._sdc_raw->>'event_type' from '^(?:in_app|[^_]+)_(.+)$')) AS metric,
       coalesce(d._sdc_raw->>'event_type',
                (d._sdc_raw->>'object_type') || '_' || (d._sdc_raw->>'metric')) AS event_name,
       CASE WHEN jsonb_typeof(d._sdc_raw->'timestamp') = 'number'
             AND (d._sdc_raw->>'timestamp')::numeric BETWEEN -62135596800 AND 253402300799
            THEN to_timestamp((d._sdc_raw->>'timestamp')::double precision) END AS occurred_at,
       coalesce(d._sdc_raw#>>'{data,customer_id}', d._sdc_raw#>>'{data,identifiers,id}') AS customer_id,
       coalesce(d._sdc_raw#>>'{data,identifiers,email}', d._sdc_raw#>>'{data,email_address}',
                CASE WHEN d._sdc_raw->>'object_type' = 'email' THEN d._sdc_raw#>>'{data,recipient}' END) AS email,
       coalesce(d._sdc_raw#>>'{data,delivery_id}',
                CASE WHEN d._sdc_raw ? 'event_type' THEN d._sdc_raw#>>'{data,email_id}' END) AS delivery_id,
       d._sdc_raw#>>'{data,campaign_id}' AS campaign_id,
       d._sdc_raw#>>'{data,broadcast_id}' AS broadcast_id,
       d._sdc_raw#>>'{data,action_id}' AS action_id,
       d._sdc_raw#>>'{data,journey_id}' AS journey_id,
       d._sdc_received_at AS received_at,
       d._sdc_raw AS raw
FROM %s d`, v("events"), data)

	stmts := []string{events}
	for _, ch := range []struct{ view, objectType string }{
		{"email_events", "email"}, {"push_events", "push"}, {"sms_events", "sms"},
		{"in_app_events", "in_app"}, {"slack_events", "slack"}, {"webhook_events", "webhook"},
		{"customer_events", "customer"},
	} {
		stmts = append(stmts, fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS SELECT * FROM %s WHERE object_type = '%s'`,
			v(ch.view), v("events"), ch.objectType))
	}
	stmts = append(stmts, fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS
SELECT delivery_id,
       object_type,
       min(campaign_id) AS campaign_id,
       min(broadcast_id) AS broadcast_id,
       min(action_id) AS action_id,
       min(customer_id) AS customer_id,
       min(occurred_at) FILTER (WHERE metric = 'sent') AS sent_at,
       min(occurred_at) FILTER (WHERE metric = 'delivered') AS delivered_at,
       min(occurred_at) FILTER (WHERE metric = 'opened') AS opened_at,
       min(occurred_at) FILTER (WHERE metric = 'clicked') AS clicked_at,
       min(occurred_at) FILTER (WHERE metric = 'converted') AS converted_at,
       min(occurred_at) FILTER (WHERE metric = 'bounced') AS bounced_at
FROM %s
WHERE delivery_id IS NOT NULL
GROUP BY delivery_id, object_type`, v("delivery_funnel"), v("events")))
	return stmts
}
