package rudder

import (
	"time"
)

// isoMillis is how RudderStack prints instants: UTC with milliseconds
// (JavaScript's toISOString, and rudder-server's receivedAt).
const isoMillis = "2006-01-02T15:04:05.000Z"

// integrationName names the source in context.integration and integrations.
const integrationName = "Customer.io"

// Event is one RudderStack track event. Build it with Transform; the zero value is not
// useful. It holds its own copies of the values taken from the object.
type Event struct {
	w          wire
	objectType any
	metric     any
	timestamp  time.Time
	hasTime    bool
}

// wire is the event as JSON, in the transformer's key order, then the keys
// rudder-server's gateway would add. Interface fields are omitted only when nil: a
// JSON null is never mapped, while "" and false are kept.
type wire struct {
	Context           eventContext `json:"context"`
	Integrations      integrations `json:"integrations"`
	Type              string       `json:"type"`
	Event             string       `json:"event"`
	Properties        object       `json:"properties,omitempty"`
	UserID            any          `json:"userId,omitempty"`
	OriginalTimestamp string       `json:"originalTimestamp,omitempty"`
	SentAt            string       `json:"sentAt,omitempty"`
	AnonymousID       any          `json:"anonymousId,omitempty"`
	MessageID         string       `json:"messageId"`
	ReceivedAt        string       `json:"receivedAt,omitempty"`
}

type eventContext struct {
	Library     library     `json:"library"`
	Integration integration `json:"integration"`
	Traits      object      `json:"traits,omitempty"`
	// Import marks an event cioloader imported from Customer.io's history
	// (internal/history) rather than received by webhook; absent otherwise,
	// so webhook events stay identical to the transformer's.
	Import *importMark `json:"cioloader_import,omitempty"`
}

// importMark is context.cioloader_import: where an imported event came from.
type importMark struct {
	Source string `json:"source"`
}

type library struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type integration struct {
	Name string `json:"name"`
}

type integrations struct {
	CustomerIO bool `json:"Customer.io"`
}

// object is a JSON object that keeps its keys in insertion order, so our output reads
// like the transformer's (consumers do not depend on the order).
type object []member

type member struct {
	key   string
	value any
}

// get returns the value of key, or nil.
func (o object) get(key string) any {
	for _, m := range o {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

// MarshalJSON encodes the members in order.
func (o object) MarshalJSON() ([]byte, error) { return o.appendTo(nil), nil }

// MessageID is the deterministic messageId (see the package function MessageID).
func (e *Event) MessageID() string { return e.w.MessageID }

// Type is always "track".
func (e *Event) Type() string { return e.w.Type }

// Name is the event name, such as "Email Opened" or "Unknown Event".
func (e *Event) Name() string { return e.w.Event }

// UserID is the user_id column: a string userId as is, any other value as its JSON
// text (a number keeps its exact literal); false when the event has no userId.
func (e *Event) UserID() (string, bool) { return text(e.w.UserID) }

// AnonymousID is the anonymous_id column, by UserID's rule.
func (e *Event) AnonymousID() (string, bool) { return text(e.w.AnonymousID) }

// OriginalTimestamp is the event's instant in UTC, at millisecond precision; false
// when the object's timestamp was left out.
func (e *Event) OriginalTimestamp() (time.Time, bool) { return e.timestamp, e.hasTime }

// SentAt equals OriginalTimestamp, as in the transformer.
func (e *Event) SentAt() (time.Time, bool) { return e.timestamp, e.hasTime }

// ObjectType is the object's raw object_type (not lower-cased), when it is a string.
func (e *Event) ObjectType() (string, bool) {
	s, ok := e.objectType.(string)
	return s, ok
}

// Metric is the object's raw metric, when it is a string.
func (e *Event) Metric() (string, bool) {
	s, ok := e.metric.(string)
	return s, ok
}

// PropertiesJSON is the properties object, or nil when nothing mapped into it.
func (e *Event) PropertiesJSON() []byte {
	if len(e.w.Properties) == 0 {
		return nil
	}
	return e.w.Properties.appendTo(nil)
}

// NonStringIDsJSON is {"userId": …, "anonymousId": …} with each id that is not a JSON
// string, as the event holds it; nil when both are strings or absent. The user_id
// and anonymous_id columns hold such ids as JSON text, so this is what the stored
// payload needs to give them back their type.
func (e *Event) NonStringIDsJSON() []byte {
	var o object
	if _, isString := e.w.UserID.(string); e.w.UserID != nil && !isString {
		o = append(o, member{"userId", e.w.UserID})
	}
	if _, isString := e.w.AnonymousID.(string); e.w.AnonymousID != nil && !isString {
		o = append(o, member{"anonymousId", e.w.AnonymousID})
	}
	if o == nil {
		return nil
	}
	return o.appendTo(nil)
}

// ContextJSON is the context object; it is never empty.
func (e *Event) ContextJSON() []byte { return e.w.Context.appendTo(nil) }

// ContextConstantJSON is the part of every event's context that Transform never
// varies: the library and integration members.
const ContextConstantJSON = `{"library":{"name":"unknown","version":"unknown"},"integration":{"name":"` + integrationName + `"}}`

// ContextVaryingJSON is the context without ContextConstantJSON's members ({}
// when nothing else is there): the constant part || this is ContextJSON, as jsonb.
func (e *Event) ContextVaryingJSON() []byte {
	return e.w.Context.appendVarying([]byte{'{'}, false)
}

// MarshalJSON is the whole event as `cioloader transform` prints it and the payload
// column stores it: the transformer's event plus messageId and receivedAt. It does not
// fail: every value in the event was made encodable by Transform.
func (e *Event) MarshalJSON() ([]byte, error) { return e.w.appendTo(make([]byte, 0, 1024)), nil }

// AppendJSON appends MarshalJSON's bytes to b.
func (e *Event) AppendJSON(b []byte) []byte { return e.w.appendTo(b) }
