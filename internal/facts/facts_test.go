package facts

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Postgres's numeric output for JSON number literals (checked with
// SELECT 'lit'::jsonb #>> '{}' on PostgreSQL 15).
func TestNumeric(t *testing.T) {
	t.Parallel()
	for lit, want := range map[string]string{
		"0": "0", "-0": "0", "-0.0": "0.0", "42": "42", "1e2": "100", "1E+2": "100", "1.50": "1.50",
		"1.50e1": "15.0", "1e-2": "0.01", "-1.5e-3": "-0.0015", "0.000100": "0.000100", "007": "7",
		"12345678901234567890123": "12345678901234567890123",
	} {
		require.Equal(t, want, Numeric(lit), lit)
	}
}

func TestOf(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body string
		want func(Facts) bool
	}{
		"legacy in_app": {`{"event_type":"in_app_clicked","data":{"customer_id":"c"}}`, func(f Facts) bool {
			return f.ObjectType.S == "in_app" && f.Metric.S == "clicked" && f.EventName.S == "in_app_clicked" && f.CustomerID.S == "c" &&
				!f.StoredEventName().Valid
		}},
		"an event_type that does not split is stored": {`{"event_type":"customer","data":{}}`, func(f Facts) bool {
			return !f.ObjectType.Valid && f.StoredEventName() == Opt{"customer", true}
		}},
		"object_type without metric": {`{"object_type":"email"}`, func(f Facts) bool {
			return !f.EventName.Valid && !f.StoredEventName().Valid
		}},
		"identifiers win": {`{"object_type":"email","metric":"sent","data":{"identifiers":{"id":7},"customer_id":"x","recipient":"r@x.io"}}`, func(f Facts) bool {
			return f.CustomerID.S == "7" && f.Email.S == "r@x.io" && f.EventName.S == "email_sent"
		}},
		"year 1 is a time": {`{"timestamp":-62135596800}`, func(f Facts) bool {
			return f.Occurred && f.OccurredAt.Equal(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))
		}},
		"past 9999 is not":        {`{"timestamp":253402300800}`, func(f Facts) bool { return !f.Occurred }},
		"string timestamp is not": {`{"timestamp":"1700000000"}`, func(f Facts) bool { return !f.Occurred }},
		"push recipients":         {`{"data":{"recipients":[{"failure_message":"gone"}]}}`, func(f Facts) bool { return f.FailureMessage.S == "gone" }},
		"legacy email_id":         {`{"event_type":"email_opened","data":{"email_id":"e1"}}`, func(f Facts) bool { return f.DeliveryID.S == "e1" }},
		"no legacy, no email_id":  {`{"object_type":"email","data":{"email_id":"e1"}}`, func(f Facts) bool { return !f.DeliveryID.Valid }},
		// Erasure identifiers: an id equal to customer_id is left out (the
		// customer_id index finds it), a different one is kept, repeats once.
		"ids but customer_id": {`{"data":{"identifiers":{"id":"a","email":"A@x.io","cio_id":"c1"},"customer_id":"b","variables":{"customer":{"id":"a","email":"A@x.io"}}}}`, func(f Facts) bool {
			return f.Identifiers == [len(ErasureKinds)]Opt{{"A@x.io", true}, {}, {}, {}, {}, {"b", true}, {}, {"c1", true}}
		}},
	} {
		require.True(t, tc.want(Of(decode(t, tc.body))), name)
	}
}

func decode(t testing.TB, s string) map[string]any {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		t.Skip("not an object")
	}
	return obj
}

// FuzzOf: any decoded object gives facts without a panic, and a non-string
// value's text is valid JSON (jsonb's output is).
func FuzzOf(f *testing.F) {
	for _, s := range []string{`{"event_type":"in_app_","data":{"recipients":{"failure_message":[1,{"b":2,"a":"\u0001"}]}}}`,
		`{"timestamp":1e400,"data":{"identifiers":{"id":-0.0e-5}}}`, `{"data":[1,2]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		obj := decode(t, string(in))
		fs := Of(obj)
		if data, ok := obj["data"].(map[string]any); ok {
			if v, isStr := data["campaign_id"].(string); !isStr && data["campaign_id"] != nil {
				require.True(t, json.Valid([]byte(fs.CampaignID.S)), "%q", fs.CampaignID.S)
			} else if isStr {
				require.Equal(t, v, fs.CampaignID.S)
			}
		}
	})
}
