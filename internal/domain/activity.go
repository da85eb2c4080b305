package domain

import (
	"strings"
	"time"
	"unicode/utf8"
)

// MaxActivityKeyBytes bounds the object_type and the metric an event is
// counted under: Customer.io's are short words, and a long one sent by
// mistake must not make a key the counters' primary key cannot hold.
const MaxActivityKeyBytes = 64

// ActivityKey is what a received event is counted under in the activity
// counters: its object_type and metric as sent (legacy event_type bodies
// split as the transform splits them). Either is "" when the event has none
// that is a string; such events are named rudder.UnknownEvent.
type ActivityKey struct {
	ObjectType string
	Metric     string
}

// NewActivityKey builds the key of an event, made storable: invalid UTF-8 and
// NUL become U+FFFD, and each part is cut to MaxActivityKeyBytes on a
// character boundary.
func NewActivityKey(objectType, metric string) ActivityKey {
	return ActivityKey{ObjectType: activityText(objectType), Metric: activityText(metric)}
}

func activityText(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= MaxActivityKeyBytes {
		return s
	}
	n := MaxActivityKeyBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ActivityCount is how many events of one key an integration received in one
// hour (UTC), and when the last of them arrived.
type ActivityCount struct {
	Hour   time.Time
	Key    ActivityKey
	Events int64
	LastAt time.Time
}

// ActivitySummary is what an integration received lately, shown in the list.
type ActivitySummary struct {
	Events24h      int64      `json:"events_24h"`
	LastReceivedAt *time.Time `json:"last_received_at"`
}
