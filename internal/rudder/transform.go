package rudder

import (
	"encoding/json"
	"math"
	"time"
)

// Options carries what the transform needs beyond the event itself.
type Options struct {
	// Namespace is the integration's schema name; it makes messageId unique across
	// integrations (see MessageID).
	Namespace string
	// ReceivedAt is the request's arrival, printed as receivedAt; left out when zero.
	ReceivedAt time.Time
}

// source is one destination key and its source paths, first non-null wins.
type source struct {
	key   string
	paths []string
}

// propertySources is the transformer's mapping.json for properties, in its order.
// properties.link is built from data.href and data.link_id (see linkObject).
var propertySources = []source{
	{"eventId", []string{"event_id", "data.event_id"}},
	{"triggerId", []string{"data.trigger_id"}},
	{"deliveryId", []string{"data.delivery_id"}},
	{"actionId", []string{"data.action_id"}},
	{"broadcastId", []string{"data.broadcast_id"}},
	{"journeyId", []string{"data.journey_id"}},
	{"parentActionId", []string{"data.parent_action_id"}},
	{"content", []string{"data.content"}},
	{"contentId", []string{"data.content_id"}},
	{"emailSubject", []string{"data.subject"}},
	{"link", nil},
	{"reason", []string{"data.failure_message", "data.recipients.failure_message"}},
	{"campaignId", []string{"data.campaign_id"}},
	{"deviceId", []string{"data.device_id"}},
	{"devicePlatform", []string{"data.device_platform"}},
	{"recipients", []string{"data.recipients"}},
	{"type", []string{"data.event_type"}},
	{"newsletterId", []string{"data.newsletter_id"}},
	{"transactionalMessageId", []string{"data.transactional_message_id"}},
}

// traitSources is the mapping for context.traits. The email comes from the recipient
// too, so SMS numbers, Slack channels and webhook URLs land there, as upstream.
var traitSources = []source{
	{"email", []string{"data.identifiers.email", "data.recipient", "data.email_address"}},
	{"cioId", []string{"data.identifiers.cio_id"}},
}

// userIDPaths: customer_id, else identifiers.id. A customer_id of "" (or spaces) is
// not null, so it is the userId (qk06, as upstream).
var userIDPaths = []string{"data.customer_id", "data.identifiers.id"}

// Transform turns one decoded Customer.io object into a RudderStack event. obj is
// what encoding/json decodes (best with UseNumber: json.Number values are copied with
// their exact literal, so big integers stay exact). It never fails and never panics.
func Transform(obj map[string]any, opt Options) *Event {
	objectType, metric := pair(obj)
	e := &Event{objectType: objectType, metric: metric}
	e.w = wire{
		Context: eventContext{
			Library:     library{Name: "unknown", Version: "unknown"},
			Integration: integration{Name: integrationName},
			Traits:      mapObject(obj, traitSources),
			Import:      importOf(obj),
		},
		Type:       "track",
		Event:      eventName(e.objectType, e.metric),
		Properties: mapObject(obj, propertySources),
		UserID:     first(obj, userIDPaths),
		MessageID:  messageID(obj, opt.Namespace),
	}
	// The transformer copies a truthy email into anonymousId only when userId is null.
	if email := e.w.Context.Traits.get("email"); e.w.UserID == nil && truthy(email) {
		e.w.AnonymousID = email
	}
	if t, ok := timestamp(obj["timestamp"]); ok {
		e.timestamp, e.hasTime = t, true
		e.w.OriginalTimestamp = t.Format(isoMillis)
		e.w.SentAt = e.w.OriginalTimestamp
	}
	if !opt.ReceivedAt.IsZero() {
		e.w.ReceivedAt = opt.ReceivedAt.UTC().Format(isoMillis)
	}
	return e
}

// ImportKey is the top-level member that marks an event imported from
// Customer.io's history: {"source": "..."} (see internal/history).
const ImportKey = "cioloader_import"

// importOf is the event's import mark, nil for a webhook event.
func importOf(obj map[string]any) *importMark {
	m, _ := obj[ImportKey].(map[string]any)
	if src, ok := m["source"].(string); ok && src != "" {
		return &importMark{Source: src}
	}
	return nil
}

// mapObject builds an object from sources, leaving out keys with no non-null source;
// nil when nothing maps (the transformer then has no such object at all).
func mapObject(obj map[string]any, sources []source) object {
	var o object
	for _, s := range sources {
		v := first(obj, s.paths)
		if s.key == "link" {
			v = linkObject(obj)
		}
		if v != nil {
			o = append(o, member{s.key, v})
		}
	}
	return o
}

// linkObject is properties.link: {url: data.href, id: data.link_id}, either part
// left out when null, nil when both are.
func linkObject(obj map[string]any) any {
	o := mapObject(obj, []source{{"url", []string{"data.href"}}, {"id", []string{"data.link_id"}}})
	if o == nil {
		return nil
	}
	return o
}

// first is a copy of the first non-null value at paths, or nil.
func first(obj map[string]any, paths []string) any {
	for _, p := range paths {
		if v := lookup(obj, p); v != nil {
			return clean(v)
		}
	}
	return nil
}

// Bounds of the timestamps we keep, in Unix milliseconds: 0001-01-01T00:00:00.000Z
// and 9999-12-31T23:59:59.999Z.
const (
	minMillis = -62135596800000
	maxMillis = 253402300799999
)

// timestamp reads the object's timestamp, Unix seconds, as the transformer does:
// new Date(timestamp * 1000) in float64, truncated to the millisecond. Only a JSON
// number counts; strings (ISO dates, err01; numeric strings, qk02), booleans, arrays
// and objects are left out. So is an instant outside the years 0001–9999: beyond
// JavaScript's Date range the transformer fails (err02), and below it a millisecond
// value read as seconds would land near the year 52204 (qk01).
func timestamp(v any) (time.Time, bool) {
	var secs float64
	switch t := v.(type) {
	case json.Number:
		secs = numberValue(string(t))
	case float64:
		secs = t
	default:
		return time.Time{}, false
	}
	ms := math.Trunc(secs * 1000)
	if !(ms >= minMillis && ms <= maxMillis) { // also false for NaN
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

// messageID is MessageID of the object's event_id when it is a string or a json.Number.
// Without one (possible only outside ingest, which rejects such objects) the name is
// the namespace, "#" and the object's JSON with sorted keys, so it stays deterministic
// and cannot collide with a real event_id's name.
func messageID(obj map[string]any, namespace string) string {
	switch id := obj["event_id"].(type) {
	case string:
		return MessageID(namespace, id)
	case json.Number:
		return MessageID(namespace, id.String())
	}
	body, _ := marshal(clean(obj)) // clean makes it encodable
	return newSHA1(messageNamespace, namespace+"#"+string(body)).String()
}
