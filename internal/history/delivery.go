package history

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cioloader/cioloader/internal/rudder"
)

// objectTypes maps a delivery's type to the object_type reporting webhooks
// send for it. live_notification has no reporting-webhook events.
var objectTypes = map[string]string{
	"email": "email", "push": "push", "twilio": "sms", "sms": "sms", "whatsapp": "whatsapp",
	"slack": "slack", "webhook": "webhook", "in_app": "in_app",
}

// failureMetrics are the metrics whose events carry the delivery's failure_message.
var failureMetrics = map[string]bool{"failed": true, "bounced": true, "dropped": true, "undeliverable": true}

// dataFields are the delivery's members that an event's data carries under the
// same name, as reporting webhooks do. customer_identifiers becomes identifiers,
// id becomes delivery_id, and failure_message is added on failures.
var dataFields = []string{
	"customer_id", "recipient", "subject", "campaign_id", "newsletter_id", "broadcast_id",
	"action_id", "parent_action_id", "content_id", "trigger_event_id",
}

// Skip says why a delivery gave no events.
type Skip string

// The reasons a delivery gives no events.
const (
	SkipNone      Skip = ""
	SkipForgotten Skip = "forgotten"           // the person was forgotten in Customer.io
	SkipType      Skip = "no_reporting_events" // a type reporting webhooks do not send (live_notification)
	SkipNoMetric  Skip = "no_metrics"          // no metric that is a reporting-webhook event
)

// Event is one imported event: its occurrence and its body, a reporting-webhook
// object as JSON.
type Event struct {
	Occurrence Occurrence
	Body       []byte
}

// Mapped is what one delivery becomes.
type Mapped struct {
	DeliveryID string
	Events     []Event // in metric name order
	Skip       Skip
}

// InvalidError says why a delivery object cannot be imported at all.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Map turns one delivery (decoded with json.Decoder.UseNumber) into its events:
// one per recorded metric that is a reporting-webhook metric of its channel,
// timestamped with that metric's time. created and the human_/prefetch_
// variants are not events; they, and every member data does not carry, stay
// in the event's cioloader_import.delivery, so nothing of the delivery is lost.
func Map(d map[string]any) (Mapped, error) {
	id, _ := d["id"].(string)
	if strings.TrimSpace(id) == "" {
		return Mapped{}, &InvalidError{Msg: "delivery without a string id"}
	}
	typ, ok := d["type"].(string)
	if !ok {
		return Mapped{}, &InvalidError{Msg: fmt.Sprintf("delivery %s: type is not a string", id)}
	}
	m := Mapped{DeliveryID: id}
	if forgotten, _ := d["forgotten"].(bool); forgotten {
		m.Skip = SkipForgotten
		return m, nil
	}
	ot, known := objectTypes[typ]
	if !known {
		m.Skip = SkipType
		return m, nil
	}
	metrics, _ := d["metrics"].(map[string]any)
	data, rest := split(d)
	for _, name := range slices.Sorted(maps.Keys(metrics)) {
		ts, isInt := integer(metrics[name])
		if !isInt || !rudder.SpecPair(ot, name) {
			continue // created, human_/prefetch_ variants, other channels' metrics
		}
		o := Occurrence{DeliveryID: id, ObjectType: ot, Metric: name, Timestamp: ts}
		body, err := eventBody(o, data, rest, d["failure_message"])
		if err != nil {
			return Mapped{}, &InvalidError{Msg: fmt.Sprintf("delivery %s: %v", id, err)}
		}
		m.Events = append(m.Events, Event{Occurrence: o, Body: body})
	}
	if len(m.Events) == 0 {
		m.Skip = SkipNoMetric
	}
	return m, nil
}

// split divides a delivery into what every event's data carries and the rest.
func split(d map[string]any) (data, rest map[string]any) {
	data = map[string]any{"delivery_id": d["id"]}
	for _, k := range dataFields {
		if v := d[k]; v != nil {
			data[k] = v
		}
	}
	if ids, ok := d["customer_identifiers"].(map[string]any); ok {
		present := map[string]any{}
		for k, v := range ids {
			if v != nil {
				present[k] = v
			}
		}
		if len(present) > 0 {
			data["identifiers"] = present
		}
	}
	rest = map[string]any{}
	for k, v := range d {
		if carried := slices.Contains(dataFields, k) && v != nil; carried || k == "id" || k == "customer_identifiers" || k == "failure_message" {
			continue
		}
		rest[k] = v
	}
	return data, rest
}

// eventBody is the reporting-webhook object of o. Keys are sorted by
// encoding/json, so the same delivery always gives the same bytes.
func eventBody(o Occurrence, data, rest map[string]any, failure any) ([]byte, error) {
	switch {
	case failure != nil && failureMetrics[o.Metric]:
		data = maps.Clone(data)
		data["failure_message"] = failure
	case failure != nil: // not this event's: kept with the rest, so it is not lost
		rest = maps.Clone(rest)
		rest["failure_message"] = failure
	}
	return json.Marshal(map[string]any{
		"event_id":       EventID(o),
		"object_type":    o.ObjectType,
		"metric":         o.Metric,
		"timestamp":      o.Timestamp,
		"data":           data,
		rudder.ImportKey: map[string]any{"source": Source, "delivery": rest},
	})
}
