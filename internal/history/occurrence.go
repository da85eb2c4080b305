// Package history turns deliveries listed by Customer.io's App API (GET
// /v1/messages) into events of the reporting-webhook shape, and names the
// occurrence an event records, so that history and webhook events of one
// occurrence are stored once. It is pure: the App API client, the store and
// the import use case live elsewhere.
package history

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/cioloader/cioloader/internal/rudder"
)

// Source is the import mark's source for events imported from the App API.
const Source = "customerio_app_api"

// IDPrefix starts every imported event_id.
const IDPrefix = "cio_hist_"

// Occurrence is one thing that happened to a delivery: a delivery id, an object
// type, a metric and its time in Unix seconds. A second open at another time is
// another occurrence.
type Occurrence struct {
	DeliveryID string
	ObjectType string
	Metric     string
	Timestamp  int64
}

// EventID is the event_id an import gives o: deterministic, so an import run
// twice writes the same rows, and computable from a webhook event of the same
// occurrence, so the writer can find the imported copy by its primary key.
func EventID(o Occurrence) string {
	h := sha256.New()
	for _, part := range []string{o.DeliveryID, o.ObjectType, o.Metric, strconv.FormatInt(o.Timestamp, 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return IDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// Imported reports whether a decoded event carries the import mark.
func Imported(body map[string]any) bool {
	m, ok := body[rudder.ImportKey].(map[string]any)
	return ok && m["source"] != nil
}

// OccurrenceOf is the occurrence a webhook event records: its object_type and
// metric (split from a legacy event_type as the views split it), data.delivery_id
// (a legacy body's data.email_id) and an integer timestamp. ok is false when the
// event lacks any of them: it then has no imported twin.
func OccurrenceOf(body map[string]any) (Occurrence, bool) {
	ot, _ := body["object_type"].(string)
	metric, _ := body["metric"].(string)
	data, _ := body["data"].(map[string]any)
	delivery, _ := data["delivery_id"].(string)
	if lot, lm, legacy := rudder.LegacyPair(body["event_type"]); legacy && (ot == "" || metric == "") {
		if ot == "" {
			ot = lot
		}
		if metric == "" {
			metric = lm
		}
		if delivery == "" {
			delivery, _ = data["email_id"].(string)
		}
	}
	ts, ok := integer(body["timestamp"])
	if !ok || ot == "" || metric == "" || delivery == "" {
		return Occurrence{}, false
	}
	return Occurrence{DeliveryID: delivery, ObjectType: ot, Metric: metric, Timestamp: ts}, true
}

// integer is v as an int64 when it is a JSON integer literal.
func integer(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}
