package rudder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// namePair is one entry of event-names.json.
type namePair struct {
	ObjectType string `json:"object_type"`
	Metric     string `json:"metric"`
	Event      string `json:"event"`
}

func readEventNames(t *testing.T) (supported, unknown, folding []namePair) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, "event-names.json"))
	require.NoError(t, err)
	var f struct {
		UnknownEvent string     `json:"unknownEvent"`
		Supported    []namePair `json:"supported"`
		Unknown      []namePair `json:"unknownExamples"`
		CaseFolding  []namePair `json:"caseFolding"`
	}
	require.NoError(t, json.Unmarshal(b, &f))
	require.Equal(t, UnknownEvent, f.UnknownEvent)
	return f.Supported, f.Unknown, f.CaseFolding
}

// TestEventNames checks every pair of event-names.json, its unknown and case-folding
// examples, through Transform.
func TestEventNames(t *testing.T) {
	t.Parallel()
	supported, unknown, folding := readEventNames(t)
	require.Len(t, supported, 44)
	count := 0
	for _, metrics := range eventNames {
		count += len(metrics)
	}
	require.Equal(t, len(supported), count, "the table has pairs event-names.json lacks")
	for _, group := range [][]namePair{supported, unknown, folding} {
		for _, p := range group {
			t.Run(p.ObjectType+"/"+p.Metric, func(t *testing.T) {
				t.Parallel()
				obj := map[string]any{"object_type": p.ObjectType, "metric": p.Metric}
				e := Transform(obj, testOptions)
				want := p.Event
				if named, ok := specNamedPairs[p.ObjectType+"/"+p.Metric]; ok {
					want = named // TestDifferenceSpecPairsNamed
				}
				require.Equal(t, want, e.Name())
				objectType, ok := e.ObjectType()
				require.True(t, ok)
				require.Equal(t, p.ObjectType, objectType) // raw, not lower-cased
				metric, ok := e.Metric()
				require.True(t, ok)
				require.Equal(t, p.Metric, metric)
			})
		}
	}
}

func TestEventNameEdgeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		objectType any
		metric     any
		want       string
	}{
		{"upper-case object_type", "WEBHOOK", "failed", "Webhook Message Failed"},
		{"mixed-case object_type", "sMs", "clicked", "SMS Link Clicked"},
		{"upper-case metric", "email", "SENT", UnknownEvent},
		{"Kelvin sign folds to k as in JavaScript", "SLAC\u212a", "sent", "Slack Message Sent"},
		{"dotted I does not fold to i as in JavaScript", "EMA\u0130L", "sent", UnknownEvent},
		{"missing object_type", nil, "sent", UnknownEvent},
		{"missing metric", "email", nil, UnknownEvent},
		{"empty object_type", "", "sent", UnknownEvent},
		{"empty metric", "email", "", UnknownEvent},
		{"number object_type", json.Number("5"), "sent", UnknownEvent},
		{"array metric", "email", []any{"sent"}, UnknownEvent},
		{"number metric", "email", json.Number("1"), UnknownEvent},
		{"object_type with a path", "email.sent", nil, UnknownEvent},
		{"metric with a path", "", "email.sent", UnknownEvent},
		{"in_app, named by the pattern", "in_app", "opened", "In-App Message Opened"},
		{"upper-case whatsapp", "WhatsApp", "sent", "WhatsApp Sent"},
		{"pair outside the spec", "slack", "dropped", UnknownEvent},
		{"metric outside the spec", "whatsapp", "spammed", UnknownEvent},
		{"spaces", " email", "sent", UnknownEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obj := map[string]any{"object_type": tt.objectType, "metric": tt.metric}
			require.Equal(t, tt.want, Transform(obj, testOptions).Name())
		})
	}
}

func TestObjectTypeAndMetricAccessors(t *testing.T) {
	t.Parallel()
	e := Transform(map[string]any{"object_type": []any{"email"}, "metric": json.Number("2")}, testOptions)
	_, ok := e.ObjectType()
	require.False(t, ok)
	_, ok = e.Metric()
	require.False(t, ok)
	e = Transform(map[string]any{}, testOptions)
	_, ok = e.ObjectType()
	require.False(t, ok)
	_, ok = e.Metric()
	require.False(t, ok)
}

// specNamedPairs is every (object_type, metric) pair of Customer.io's reporting-webhooks
// spec that rudder-transformer calls "Unknown Event", with the name SPEC 6 gives it.
// The list is written out, not derived, so a change to the rule shows here.
var specNamedPairs = map[string]string{
	"customer/cio_subscription_preferences_changed": "Customer Subscription Preferences Changed",
	"email/undeliverable":                           "Email Undeliverable",
	"push/undeliverable":                            "Push Undeliverable",
	"sms/undeliverable":                             "SMS Undeliverable",
	"sms/replied":                                   "SMS Replied",
	"whatsapp/drafted":                              "WhatsApp Drafted",
	"whatsapp/attempted":                            "WhatsApp Attempted",
	"whatsapp/sent":                                 "WhatsApp Sent",
	"whatsapp/delivered":                            "WhatsApp Delivered",
	"whatsapp/opened":                               "WhatsApp Opened",
	"whatsapp/clicked":                              "WhatsApp Link Clicked",
	"whatsapp/converted":                            "WhatsApp Converted",
	"whatsapp/bounced":                              "WhatsApp Bounced",
	"whatsapp/dropped":                              "WhatsApp Dropped",
	"whatsapp/failed":                               "WhatsApp Failed",
	"whatsapp/undeliverable":                        "WhatsApp Undeliverable",
	"whatsapp/replied":                              "WhatsApp Replied",
	"slack/undeliverable":                           "Slack Message Undeliverable",
	"webhook/undeliverable":                         "Webhook Message Undeliverable",
	"in_app/drafted":                                "In-App Message Drafted",
	"in_app/attempted":                              "In-App Message Attempted",
	"in_app/sent":                                   "In-App Message Sent",
	"in_app/opened":                                 "In-App Message Opened",
	"in_app/clicked":                                "In-App Message Link Clicked",
	"in_app/converted":                              "In-App Message Converted",
	"in_app/failed":                                 "In-App Message Failed",
	"in_app/undeliverable":                          "In-App Message Undeliverable",
	// Customer events triggered from a message carry the channel's object_type.
	"email/cio_subscription_preferences_changed":  "Email Subscription Preferences Changed",
	"sms/unsubscribed":                            "SMS Unsubscribed",
	"whatsapp/subscribed":                         "WhatsApp Subscribed",
	"in_app/cio_subscription_preferences_changed": "In-App Message Subscription Preferences Changed",
}

// TestDifferenceSpecPairsNamed: every pair of Customer.io's spec has a name; the ones
// upstream calls "Unknown Event" follow upstream's pattern, and every pair upstream
// names keeps upstream's name (TestEventNames).
func TestDifferenceSpecPairsNamed(t *testing.T) {
	t.Parallel()
	count := 0
	for objectType, metrics := range specMetrics {
		for _, m := range metrics {
			count++
			require.NotContains(t, subscriptionMetrics, m, "listed twice")
			name := eventName(objectType, m)
			require.NotEqual(t, UnknownEvent, name, "%s/%s", objectType, m)
			if upstream, ok := eventNames[objectType][m]; ok {
				require.Equal(t, upstream, name)
				continue
			}
			require.Equal(t, specNamedPairs[objectType+"/"+m], name, "%s/%s", objectType, m)
		}
	}
	// The spec's message pairs: its 67 pairs less customer's 2 and email/unsubscribed
	// (all three are in subscriptionMetrics), plus push/drafted (the spec's push_drafted
	// schema has the metric enum "attempted", a copy slip there; upstream names
	// push/drafted, so we keep it). The customer metrics come on top, for every type.
	require.Equal(t, 65, count)
	for objectType := range specMetrics {
		for _, m := range subscriptionMetrics {
			require.NotEqual(t, UnknownEvent, eventName(objectType, m), "%s/%s", objectType, m)
		}
	}
	for pair, want := range specNamedPairs {
		objectType, metric, _ := strings.Cut(pair, "/")
		require.Equal(t, want, eventName(objectType, metric))
	}
}

// TestLegacyEventTypeNamed: a legacy body's event_type is split as the views split it
// and named as the current body would be; object_type and metric, when present, win.
func TestLegacyEventTypeNamed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		obj                    map[string]any
		event, objType, metric string
	}{
		{map[string]any{"event_type": "email_delivered"}, "Email Delivered", "email", "delivered"},
		{map[string]any{"event_type": "in_app_clicked"}, "In-App Message Link Clicked", "in_app", "clicked"},
		{map[string]any{"event_type": "whatsapp_replied"}, "WhatsApp Replied", "whatsapp", "replied"},
		{map[string]any{"event_type": "customer_subscribed"}, "Customer Subscribed", "customer", "subscribed"},
		{map[string]any{"event_type": "email_drafted", "metric": "sent"}, "Email Sent", "email", "sent"},
		{map[string]any{"event_type": "email_drafted", "object_type": "push"}, "Push Drafted", "push", "drafted"},
	}
	for _, tt := range tests {
		e := Transform(tt.obj, testOptions)
		require.Equal(t, tt.event, e.Name(), "%v", tt.obj)
		ot, _ := e.ObjectType()
		m, _ := e.Metric()
		require.Equal(t, []string{tt.objType, tt.metric}, []string{ot, m})
	}
	for _, bad := range []any{"email", "_sent", "email_", "in_app_", json.Number("3"), nil} {
		e := Transform(map[string]any{"event_type": bad}, testOptions)
		require.Equal(t, UnknownEvent, e.Name(), "%v", bad)
	}
}

// Ensure EventName names a pair as Transform names its event (the activity
// counters are named with it).
func TestEventNameOfPair(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ot, metric, want string }{
		{"email", "opened", "Email Opened"},
		{"EMAIL", "clicked", "Email Link Clicked"},
		{"in_app", "clicked", "In-App Message Link Clicked"},
		{"email", "", UnknownEvent},
		{"", "", UnknownEvent},
	} {
		require.Equal(t, tc.want, EventName(tc.ot, tc.metric), tc)
		if tc.ot != "" { // "" is how the counters keep a missing object_type
			ev := Transform(map[string]any{"object_type": tc.ot, "metric": tc.metric}, Options{})
			require.Equal(t, ev.Name(), EventName(tc.ot, tc.metric), tc)
		}
	}
}
