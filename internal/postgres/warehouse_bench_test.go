package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/rudder"
)

// BenchmarkWarehouseMissing is what the writer pays per group commit of 32 email
// events once their event names and columns are known: the check that nothing is
// new (no statement is sent).
func BenchmarkWarehouseMissing(b *testing.B) {
	evs := make([]*ingest.Event, 32)
	for i := range evs {
		var obj map[string]any
		body := strings.ReplaceAll(`{"event_id":"e%d","object_type":"email","metric":"opened","timestamp":1585250199,
			"data":{"action_id":42,"campaign_id":23,"customer_id":"user-123","delivery_id":"RAECAAFwnUSneIa0ZXkmq8EdkAM==",
			"identifiers":{"id":"user-123","email":"test@example.com","cio_id":"d9c106000001"},
			"recipient":"test@example.com","subject":"Thanks for signing up"}}`, "%d", fmt.Sprint(i))
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			b.Fatal(err)
		}
		evs[i] = &ingest.Event{ID: fmt.Sprint(i), Rudder: rudder.Transform(obj, rudder.Options{Namespace: "s"})}
	}
	s := &whSchema{events: map[string]string{}, known: map[whKey]bool{}}
	events, wants, _ := s.missing(evs)
	for name, table := range events {
		s.events[name] = table
	}
	for _, w := range wants {
		s.known[w.key] = true
	}
	b.ResetTimer()
	for b.Loop() {
		if events, wants, _ := s.missing(evs); len(events)+len(wants) > 0 {
			b.Fatal("not known")
		}
	}
}

// TestWarehouseColumnCap: an object with more keys than a view may have columns
// (here data.content, which the mapping copies whole) gives columns up to
// whMaxColumns per relation; the rest stays in rudder_events.
func TestWarehouseColumnCap(t *testing.T) {
	t.Parallel()
	content := map[string]any{}
	for i := range 2000 {
		content[fmt.Sprintf("k%d", i)] = "v"
	}
	obj := map[string]any{"event_id": "e", "object_type": "email", "metric": "sent", "data": map[string]any{"content": content}}
	s := &whSchema{events: map[string]string{}, known: map[whKey]bool{}}
	_, wants, _ := s.missing([]*ingest.Event{{ID: "e", Rudder: rudder.Transform(obj, rudder.Options{Namespace: "s"})}})
	perTable := map[string]int{}
	for _, w := range wants {
		perTable[w.key.table]++
	}
	if perTable["email_sent"] != whMaxColumns || perTable[tracksTable] > whMaxColumns {
		t.Fatalf("columns wanted per relation: %v", perTable)
	}
}
