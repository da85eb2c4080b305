// Package facts reads the analyst views' columns out of a decoded Customer.io
// event: object type and metric (split from a legacy event_type), event name,
// time, person, delivery and message ids. It is the one definition of what
// `<schema>.events` shows for an event, computed once at ingest and replay in Go,
// so Postgres never parses the event for it. Values are what Postgres's jsonb
// operators give for the same body (#>>, jsonb_typeof, to_timestamp), so rows
// written before this package, by SQL over _sdc_raw, read the same (a test in
// internal/postgres compares the two on Postgres itself). It is pure.
package facts

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Facts are one event's view columns. A field with Valid false is NULL.
type Facts struct {
	ObjectType, Metric, EventName  Opt
	OccurredAt                     time.Time // valid when Occurred (the year 1 is Go's zero time)
	Occurred                       bool
	CustomerID, Email, DeliveryID  Opt
	CampaignID, BroadcastID        Opt
	ActionID, JourneyID            Opt
	NewsletterID, TransactionalID  Opt
	ParentActionID, TriggerEventID Opt
	ContentID, FailureMessage      Opt
	Source                         Opt // the import mark's source; NULL for a webhook event
	// Identifiers are the values cioloader.erasure_keys (migration 000003)
	// reads, in its order (ErasureKinds): the person an erasure finds this
	// event by. A value equal to an earlier one of the same kind is left out,
	// and so is an id equal to CustomerID: event_facts.customer_id (indexed)
	// finds those, so their hash is not stored (issue 26: 12 bytes an event).
	Identifiers [len(ErasureKinds)]Opt
}

// ErasureKinds are the erasure key kinds of Facts.Identifiers, in
// cioloader.erasure_keys' order.
var ErasureKinds = [8]string{"email", "email", "email", "email", "id", "id", "id", "cio_id"}

// Opt is a nullable text value.
type Opt struct {
	S     string
	Valid bool
}

func opt(v any) Opt {
	s, ok := Text(v)
	return Opt{S: s, Valid: ok}
}

func (o Opt) or(other Opt) Opt {
	if o.Valid {
		return o
	}
	return other
}

// Of reads body's facts.
func Of(body map[string]any) Facts {
	data, _ := body["data"].(map[string]any)
	at := func(keys ...string) Opt { return opt(path(data, keys)) }
	f := Facts{
		CustomerID:      at("identifiers", "id").or(at("customer_id")),
		CampaignID:      at("campaign_id"),
		BroadcastID:     at("broadcast_id"),
		ActionID:        at("action_id"),
		JourneyID:       at("journey_id"),
		NewsletterID:    at("newsletter_id"),
		TransactionalID: at("transactional_message_id"),
		ParentActionID:  at("parent_action_id"),
		TriggerEventID:  at("trigger_event_id"),
		ContentID:       at("content_id"),
	}
	f.OccurredAt, f.Occurred = occurredAt(body["timestamp"])
	objectType, metric, eventType := opt(body["object_type"]), opt(body["metric"]), opt(body["event_type"])
	lot, lm := legacySplit(eventType)
	f.ObjectType, f.Metric = objectType.or(lot), metric.or(lm)
	f.EventName = eventType
	if !f.EventName.Valid && objectType.Valid && metric.Valid {
		f.EventName = Opt{S: objectType.S + "_" + metric.S, Valid: true}
	}
	f.Email = at("identifiers", "email").or(at("email_address"))
	if objectType.Valid && objectType.S == "email" {
		f.Email = f.Email.or(at("recipient"))
	}
	f.DeliveryID = at("delivery_id")
	if _, legacy := body["event_type"]; legacy {
		f.DeliveryID = f.DeliveryID.or(at("email_id"))
	}
	f.FailureMessage = at("failure_message")
	switch r := data["recipients"].(type) {
	case []any:
		f.FailureMessage = f.FailureMessage.or(at("recipients", "0", "failure_message"))
	case map[string]any:
		f.FailureMessage = f.FailureMessage.or(opt(r["failure_message"]))
	}
	mark, _ := body["cioloader_import"].(map[string]any)
	f.Source = opt(mark["source"])
	f.Identifiers = identifiers(data)
	for i, kind := range ErasureKinds {
		if kind == "id" && f.Identifiers[i] == f.CustomerID {
			f.Identifiers[i] = Opt{}
		}
	}
	return f
}

// StoredEventName is event_facts.event_name: NULL when the name is
// object_type_metric, which the views and the summaries derive (every current
// body's name, and a legacy event_type that splits), so only a name that is
// not derivable is stored (issue 26: 13 bytes an event).
func (f Facts) StoredEventName() Opt {
	if f.ObjectType.Valid && f.Metric.Valid && f.EventName.S == f.ObjectType.S+"_"+f.Metric.S {
		return Opt{}
	}
	return f.EventName
}

// identifiers reads erasure_keys' paths from an event's data object: the
// current identifiers, the deprecated customer_id and email_address, recipient
// when it holds an "@", and a legacy body's variables.customer.
func identifiers(data map[string]any) [len(ErasureKinds)]Opt {
	at := func(keys ...string) Opt { return opt(path(data, keys)) }
	recipient := at("recipient")
	if !strings.Contains(recipient.S, "@") {
		recipient = Opt{}
	}
	ids := [len(ErasureKinds)]Opt{
		at("identifiers", "email"), at("email_address"), recipient, at("variables", "customer", "email"),
		at("identifiers", "id"), at("customer_id"), at("variables", "customer", "id"),
		at("identifiers", "cio_id"),
	}
	for i := range ids {
		for j := range i {
			if ErasureKinds[j] == ErasureKinds[i] && ids[j] == ids[i] {
				ids[i] = Opt{}
				break
			}
		}
	}
	return ids
}

// path is jsonb's #> from v: object members by key, array elements by an
// integer key (negative counts from the end), nil where the path leads nowhere.
func path(v any, keys []string) any {
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil {
				return nil
			}
			if i < 0 {
				i += len(x)
			}
			if i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// legacySplit splits a legacy event_type's text as the SQL of the views did:
// '^(in_app|[^_]+)_(.+)$' (the longest first group, so "in_app_clicked" is
// in_app/clicked).
func legacySplit(eventType Opt) (objectType, metric Opt) {
	if !eventType.Valid {
		return Opt{}, Opt{}
	}
	s := eventType.S
	if rest, ok := strings.CutPrefix(s, "in_app_"); ok && rest != "" {
		return Opt{S: "in_app", Valid: true}, Opt{S: rest, Valid: true}
	}
	ot, m, ok := strings.Cut(s, "_")
	if !ok || ot == "" || m == "" {
		return Opt{}, Opt{}
	}
	return Opt{S: ot, Valid: true}, Opt{S: m, Valid: true}
}

// The years 1 to 9999 in Unix seconds: the timestamps the views read as a time.
var (
	minSeconds = big.NewRat(-62135596800, 1)
	maxSeconds = big.NewRat(253402300799, 1)
)

// postgresEpoch is Postgres's timestamp zero, 2000-01-01 UTC, in Unix seconds.
const postgresEpoch = 946684800

// occurredAt is to_timestamp(timestamp) for a number of seconds in the years 1
// to 9999, computed as Postgres does (float seconds, rounded half to even to
// the microsecond); ok is false otherwise.
func occurredAt(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	secs, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(secs, 0) {
		return time.Time{}, false
	}
	if !(secs > -62135596799 && secs < 253402300798) { // near a bound: compare exactly
		r, ok := new(big.Rat).SetString(string(n))
		if !ok || r.Cmp(minSeconds) < 0 || r.Cmp(maxSeconds) > 0 {
			return time.Time{}, false
		}
	}
	micros := int64(math.RoundToEven((secs - postgresEpoch) * 1e6))
	sec, rem := micros/1e6, micros%1e6
	if rem < 0 {
		sec, rem = sec-1, rem+1e6
	}
	return time.Unix(postgresEpoch+sec, rem*1000).UTC(), true
}
