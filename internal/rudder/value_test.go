package rudder

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLookup checks the get-value path rules the mapping relies on.
func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		obj  string
		path string
		want any
	}{
		{"nested", `{"data":{"identifiers":{"id":"x"}}}`, "data.identifiers.id", "x"},
		{"missing", `{"data":{}}`, "data.identifiers.id", nil},
		{"null", `{"data":{"customer_id":null}}`, "data.customer_id", nil},
		{"literal dotted key wins", `{"data.customer_id":"lit","data":{"customer_id":"nested"}}`, "data.customer_id", "lit"},
		{"joined segments", `{"data":{"identifiers.id":"j"}}`, "data.identifiers.id", "j"},
		{"joined at the top", `{"data.identifiers":{"id":"j"}}`, "data.identifiers.id", "j"},
		{"array on the way", `{"data":{"recipients":[{"failure_message":"f"}]}}`, "data.recipients.failure_message", nil},
		{"string on the way", `{"data":"s"}`, "data.customer_id", nil},
		{"null on the way", `{"data":null}`, "data.customer_id", nil},
		{"object value", `{"data":{"recipients":{"a":1}}}`, "data.recipients", map[string]any{"a": json.Number("1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, lookup(jsonObject(t, tt.obj), tt.path))
		})
	}
}

// TestLiteralDottedKeys: the mapping follows get-value, so a top-level key spelled as
// a whole path maps as upstream maps it.
func TestLiteralDottedKeys(t *testing.T) {
	t.Parallel()
	e := Transform(jsonObject(t, `{"data.customer_id":"lit","data":{"identifiers.email":"e@x.y"}}`), testOptions)
	userID, _ := e.UserID()
	require.Equal(t, "lit", userID)
	require.JSONEq(t, `{"library":{"name":"unknown","version":"unknown"},"integration":{"name":"Customer.io"},`+
		`"traits":{"email":"e@x.y"}}`, string(e.ContextJSON()))
}

// TestClean: values that encoding/json cannot encode become null, so the event
// always encodes, even from an object that was not decoded from JSON.
func TestClean(t *testing.T) {
	t.Parallel()
	obj := map[string]any{
		"event_id": "e",
		"data": map[string]any{
			"customer_id":  math.NaN(),
			"delivery_id":  json.Number("1x"),
			"action_id":    7,
			"broadcast_id": make(chan int),
			"content":      []any{math.Inf(1), json.Number("2"), "<&>"},
			"subject":      struct{ A int }{1},
			"recipient":    float64(3),
		},
	}
	e := Transform(obj, testOptions)
	_, ok := e.UserID()
	require.False(t, ok)
	anon, ok := e.AnonymousID()
	require.True(t, ok)
	require.Equal(t, "3", anon)
	require.JSONEq(t, `{"eventId":"e","actionId":7,"content":[null,2,"<&>"],"emailSubject":{"A":1}}`,
		string(e.PropertiesJSON()))
	b, err := e.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(b), `"<&>"`, "no HTML escaping")
}

// TestTransformCopies: the event shares nothing with the object it came from.
func TestTransformCopies(t *testing.T) {
	t.Parallel()
	obj := jsonObject(t, `{"data":{"recipients":[{"device_id":"d"}],"customer_id":"c"}}`)
	e := Transform(obj, testOptions)
	before := e.PropertiesJSON()
	obj["data"].(map[string]any)["recipients"].([]any)[0].(map[string]any)["device_id"] = "changed"
	require.Equal(t, before, e.PropertiesJSON())
}

func TestPropertiesAndContextJSON(t *testing.T) {
	t.Parallel()
	e := Transform(map[string]any{}, testOptions)
	require.Nil(t, e.PropertiesJSON())
	require.JSONEq(t, `{"library":{"name":"unknown","version":"unknown"},"integration":{"name":"Customer.io"}}`,
		string(e.ContextJSON()))
	require.Equal(t, "track", e.Type())

	e = Transform(readObject(t, "dv26_all_mapped_fields.input.json"), testOptions)
	want := readObject(t, "dv26_all_mapped_fields.expected.json")
	require.Equal(t, want["properties"], decodeJSON(t, e.PropertiesJSON()))
	require.Equal(t, want["context"], decodeJSON(t, e.ContextJSON()))
}

// TestKeyOrder: the event reads like the transformer's output, then our two keys.
func TestKeyOrder(t *testing.T) {
	t.Parallel()
	obj := jsonObject(t, `{"event_id":"e","timestamp":1,"data":{"href":"h","link_id":2,"delivery_id":"d","recipient":"r"}}`)
	b, err := Transform(obj, testOptions).MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, `{"context":{"library":{"name":"unknown","version":"unknown"},`+
		`"integration":{"name":"Customer.io"},"traits":{"email":"r"}},"integrations":{"Customer.io":false},`+
		`"type":"track","event":"Unknown Event","properties":{"eventId":"e","deliveryId":"d",`+
		`"link":{"url":"h","id":2}},"originalTimestamp":"1970-01-01T00:00:01.000Z",`+
		`"sentAt":"1970-01-01T00:00:01.000Z","anonymousId":"r","messageId":"`+MessageID("stitch_customerio", "e")+`",`+
		`"receivedAt":"2024-03-03T04:48:29.000Z"}`, string(b))
}
