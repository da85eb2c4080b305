package rudder

import (
	"encoding/json"
	"os"
	"path/filepath"
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
				require.Equal(t, p.Event, e.Name())
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
		{"in_app", "in_app", "opened", UnknownEvent},
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
