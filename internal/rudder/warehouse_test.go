package rudder

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func shapeOf(t *testing.T, body string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	require.NoError(t, dec.Decode(&obj))
	kind := func(v any) byte {
		switch v.(type) {
		case nil:
			return '0'
		case string:
			return 's'
		case json.Number:
			return 'n'
		}
		return '?'
	}
	return string(Transform(obj, testOptions).AppendShape(nil, kind))
}

// TestAppendShape: events with the same keys and kinds share a shape; another
// value kind or another key gives another one.
func TestAppendShape(t *testing.T) {
	t.Parallel()
	a := shapeOf(t, `{"event_id":"1","object_type":"email","metric":"opened","data":{"customer_id":"u1","action_id":1,"href":"https://a"}}`)
	b := shapeOf(t, `{"event_id":"2","object_type":"email","metric":"opened","data":{"customer_id":"u2","action_id":2,"href":"https://b"}}`)
	c := shapeOf(t, `{"event_id":"3","object_type":"email","metric":"opened","data":{"customer_id":"u3","action_id":"x","href":"https://c"}}`)
	d := shapeOf(t, `{"event_id":"4","object_type":"email","metric":"clicked","data":{"customer_id":"u4","action_id":4,"href":"https://d"}}`)
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
	require.NotEqual(t, a, d)
	require.Contains(t, a, "Email Opened")
}

// TestWarehouseInput: properties and context as decoded JSON, nested objects as maps.
func TestWarehouseInput(t *testing.T) {
	t.Parallel()
	dec := json.NewDecoder(strings.NewReader(`{"event_id":"1","object_type":"email","metric":"clicked","data":{"customer_id":42,"href":"https://a","link_id":3,"identifiers":{"email":"a@example.com"}}}`))
	dec.UseNumber()
	var obj map[string]any
	require.NoError(t, dec.Decode(&obj))
	props, ctx, userID, anonymousID := Transform(obj, testOptions).WarehouseInput()
	require.Equal(t, map[string]any{"url": "https://a", "id": json.Number("3")}, props["link"])
	require.Equal(t, map[string]any{"name": "unknown", "version": "unknown"}, ctx["library"])
	require.Equal(t, "a@example.com", ctx["traits"].(map[string]any)["email"])
	require.Equal(t, json.Number("42"), userID)
	require.Nil(t, anonymousID)
}
