package history_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cioloader/cioloader/internal/cioapi/cioapitest"
	"github.com/cioloader/cioloader/internal/history"
)

// FuzzMap: for any JSON object, Map does not panic; it refuses with an
// *InvalidError and no events, or every event body is valid JSON whose
// event_id EventID(OccurrenceOf(body)) reproduces, naming the event's own
// occurrence, marked imported, the same bytes on a second Map, and keeping
// every member of the delivery.
func FuzzMap(f *testing.F) {
	seeds := append(cioapitest.Generate(20, 1, time.Unix(1.7e9, 0), time.Unix(1.71e9, 0)), cioapitest.DocExample())
	for _, d := range seeds {
		b, err := json.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"id": "x", "type": "twilio", "failure_message": "no", "metrics": {"sent": -0, "opened": 2, "failed": 9223372036854775807}}`,
		`{"id": "x", "type": "in_app", "delivery_id": 1, "identifiers": null, "customer_identifiers": {"id": null}, "metrics": {"subscribed": 1}}`,
		`{"id": "\u00e9\ud800", "type": "email", "metrics": {"human_opened": 1, "created": 1}}`,
		`{"id": 1}`, `{}`, `{"id": "x", "type": "email", "metrics": []}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var d map[string]any
		if dec.Decode(&d) != nil || d == nil {
			return
		}
		m, err := history.Map(d)
		if err != nil {
			var invalid *history.InvalidError
			if !errors.As(err, &invalid) || len(m.Events) != 0 {
				t.Fatalf("Map: %v (%T), %d events", err, err, len(m.Events))
			}
			return
		}
		if m.DeliveryID != d["id"] {
			t.Fatalf("delivery id %q, want %v", m.DeliveryID, d["id"])
		}
		again, _ := history.Map(d)
		for i, e := range m.Events {
			checkEvent(t, e)
			if !bytes.Equal(e.Body, again.Events[i].Body) {
				t.Fatalf("not deterministic:\n%s\n%s", e.Body, again.Events[i].Body)
			}
			requireKept(t, d, decodeBytes(t, e.Body))
		}
	})
}

func checkEvent(t *testing.T, e history.Event) {
	t.Helper()
	if !json.Valid(e.Body) {
		t.Fatalf("invalid JSON: %s", e.Body)
	}
	body := decodeBytes(t, e.Body)
	o, ok := history.OccurrenceOf(body)
	if !ok || o != e.Occurrence {
		t.Fatalf("OccurrenceOf = %+v, %v; the event's is %+v", o, ok, e.Occurrence)
	}
	if body["event_id"] != history.EventID(o) || !history.Imported(body) {
		t.Fatalf("event_id %v, want %s; imported %v", body["event_id"], history.EventID(o), history.Imported(body))
	}
}
