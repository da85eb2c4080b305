package history_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/cioapi/cioapitest"
	"github.com/cioloader/cioloader/internal/history"
	"github.com/cioloader/cioloader/internal/rudder"
)

// decode is v as the App API client sees it: JSON decoded with UseNumber.
func decode(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return decodeBytes(t, b)
}

func decodeBytes(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	return m
}

// parse decodes a JSON text written in a test.
func parse(t testing.TB, s string) map[string]any { t.Helper(); return decodeBytes(t, []byte(s)) }

func mapOK(t *testing.T, d map[string]any) history.Mapped {
	t.Helper()
	m, err := history.Map(d)
	require.NoError(t, err)
	return m
}

const docID = "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek="

func TestMapDocExample(t *testing.T) {
	t.Parallel()
	m := mapOK(t, decode(t, cioapitest.DocExample()))
	require.Equal(t, docID, m.DeliveryID)
	require.Equal(t, history.SkipNone, m.Skip)
	require.Len(t, m.Events, 2)
	rest := `{"msg_template_id": 43, "newsletter_id": null, "broadcast_id": null, "customer_id": null,
		"metrics": {"delivered": 1619137768, "sent": 1619137768}, "created": 1619137767, "type": "email", "forgotten": false}`
	for i, metric := range []string{"delivered", "sent"} {
		o := history.Occurrence{DeliveryID: docID, ObjectType: "email", Metric: metric, Timestamp: 1619137768}
		require.Equal(t, o, m.Events[i].Occurrence)
		require.JSONEq(t, `{"event_id": "`+history.EventID(o)+`", "object_type": "email", "metric": "`+metric+`",
			"timestamp": 1619137768,
			"data": {"delivery_id": "`+docID+`", "recipient": "person@example.com", "campaign_id": 23, "action_id": 215},
			"cioloader_import": {"source": "customerio_app_api", "delivery": `+rest+`}}`, string(m.Events[i].Body))
	}
}

// events is each event's (object_type, metric, timestamp) and decoded body.
type event struct {
	objectType, metric string
	ts                 int64
}

func summary(m history.Mapped) []event {
	var out []event
	for _, e := range m.Events {
		out = append(out, event{e.Occurrence.ObjectType, e.Occurrence.Metric, e.Occurrence.Timestamp})
	}
	return out
}

func TestMap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		delivery string
		skip     history.Skip
		events   []event
		check    func(t *testing.T, bodies []map[string]any)
	}{
		{"twilio is sms", `{"id": "d1", "type": "twilio", "recipient": "+15551234567",
			"metrics": {"sent": 10, "delivered": 12}}`, history.SkipNone,
			[]event{{"sms", "delivered", 12}, {"sms", "sent", 10}}, nil},
		{"live_notification has no reporting events", `{"id": "d2", "type": "live_notification", "metrics": {"sent": 10}}`,
			history.SkipType, nil, nil},
		{"an unknown type", `{"id": "d3", "type": "carrier_pigeon", "metrics": {"sent": 10}}`, history.SkipType, nil, nil},
		{"forgotten", `{"id": "d4", "type": "email", "forgotten": true, "metrics": {"sent": 10}}`, history.SkipForgotten, nil, nil},
		{"forgotten before the type is looked at", `{"id": "d5", "type": "live_notification", "forgotten": true}`,
			history.SkipForgotten, nil, nil},
		{"created and the human_/prefetch_ variants are not events but are kept",
			`{"id": "d6", "type": "email", "created": 5, "metrics": {"created": 5, "sent": 6, "opened": 9, "human_opened": 9,
			"prefetch_opened": 8, "clicked": 11, "human_clicked": 11, "prefetch_clicked": 10}}`, history.SkipNone,
			[]event{{"email", "clicked", 11}, {"email", "opened", 9}, {"email", "sent", 6}},
			func(t *testing.T, bodies []map[string]any) {
				for _, b := range bodies {
					kept := b[rudder.ImportKey].(map[string]any)["delivery"].(map[string]any)["metrics"].(map[string]any)
					require.Equal(t, json.Number("9"), kept["human_opened"])
					require.Equal(t, json.Number("8"), kept["prefetch_opened"])
					require.Equal(t, json.Number("11"), kept["human_clicked"])
					require.Equal(t, json.Number("10"), kept["prefetch_clicked"])
					require.Equal(t, json.Number("5"), kept["created"])
				}
			}},
		{"a metric the channel's webhooks lack (sms opened, slack delivered) is skipped",
			`{"id": "d7", "type": "twilio", "metrics": {"sent": 1, "opened": 2, "spammed": 3}}`, history.SkipNone,
			[]event{{"sms", "sent", 1}}, nil},
		{"slack", `{"id": "d8", "type": "slack", "metrics": {"sent": 1, "delivered": 2, "clicked": 3}}`, history.SkipNone,
			[]event{{"slack", "clicked", 3}, {"slack", "sent", 1}}, nil},
		{"only non-event metrics", `{"id": "d9", "type": "email", "metrics": {"created": 1, "human_opened": 2}}`,
			history.SkipNoMetric, nil, nil},
		{"no metrics at all", `{"id": "d10", "type": "push"}`, history.SkipNoMetric, nil, nil},
		{"a metric time that is not an integer is skipped",
			`{"id": "d11", "type": "email", "metrics": {"sent": "12", "delivered": 1.5, "opened": null, "clicked": 1e3, "bounced": 7}}`,
			history.SkipNone, []event{{"email", "bounced", 7}}, nil},
		{"failure_message only on failures",
			`{"id": "d12", "type": "email", "failure_message": "550 mailbox unavailable",
			"metrics": {"sent": 1, "bounced": 2, "dropped": 3, "failed": 4, "undeliverable": 5, "delivered": 6, "opened": 7}}`,
			history.SkipNone,
			[]event{{"email", "bounced", 2}, {"email", "delivered", 6}, {"email", "dropped", 3}, {"email", "failed", 4},
				{"email", "opened", 7}, {"email", "sent", 1}, {"email", "undeliverable", 5}},
			func(t *testing.T, bodies []map[string]any) {
				for _, b := range bodies {
					msg, has := b["data"].(map[string]any)["failure_message"]
					kept := b[rudder.ImportKey].(map[string]any)["delivery"].(map[string]any)
					switch b["metric"] {
					case "bounced", "dropped", "failed", "undeliverable":
						require.Equal(t, "550 mailbox unavailable", msg, b["metric"])
						require.NotContains(t, kept, "failure_message")
					default:
						require.False(t, has, b["metric"])
						require.Equal(t, "550 mailbox unavailable", kept["failure_message"], "kept, not lost")
					}
				}
			}},
		{"a null failure_message is not carried", `{"id": "d13", "type": "push", "failure_message": null, "metrics": {"failed": 4}}`,
			history.SkipNone, []event{{"push", "failed", 4}},
			func(t *testing.T, bodies []map[string]any) {
				require.NotContains(t, bodies[0]["data"], "failure_message")
			}},
		{"data carries what the webhook would, identifiers without nulls",
			`{"id": "d14", "type": "in_app", "customer_id": "42", "recipient": "42", "subject": null,
			"customer_identifiers": {"id": "42", "email": null, "cio_id": "a1b2"},
			"campaign_id": null, "newsletter_id": 5, "broadcast_id": null, "action_id": 7, "parent_action_id": 6,
			"content_id": 3, "trigger_event_id": "01HV", "deduplicate_id": "d14:1", "metrics": {"opened": 9}}`,
			history.SkipNone, []event{{"in_app", "opened", 9}},
			func(t *testing.T, bodies []map[string]any) {
				require.Equal(t, parse(t, `{"delivery_id": "d14", "customer_id": "42", "recipient": "42",
					"identifiers": {"id": "42", "cio_id": "a1b2"}, "newsletter_id": 5, "action_id": 7, "parent_action_id": 6,
					"content_id": 3, "trigger_event_id": "01HV"}`), bodies[0]["data"])
				require.Equal(t, parse(t, `{"type": "in_app", "subject": null, "campaign_id": null, "broadcast_id": null,
					"deduplicate_id": "d14:1", "metrics": {"opened": 9}}`),
					bodies[0][rudder.ImportKey].(map[string]any)["delivery"])
			}},
		{"identifiers all null are left out", `{"id": "d15", "type": "email",
			"customer_identifiers": {"id": null, "email": null}, "metrics": {"sent": 1}}`,
			history.SkipNone, []event{{"email", "sent", 1}},
			func(t *testing.T, bodies []map[string]any) {
				require.Equal(t, map[string]any{"delivery_id": "d15"}, bodies[0]["data"])
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := mapOK(t, parse(t, tc.delivery))
			require.Equal(t, tc.skip, m.Skip)
			require.Equal(t, tc.events, summary(m))
			var bodies []map[string]any
			for _, e := range m.Events {
				b := decodeBytes(t, e.Body)
				require.Equal(t, history.EventID(e.Occurrence), b["event_id"])
				require.Equal(t, map[string]any{"source": history.Source},
					withoutKey(b[rudder.ImportKey].(map[string]any), "delivery"))
				bodies = append(bodies, b)
			}
			if tc.check != nil {
				tc.check(t, bodies)
			}
		})
	}
}

func withoutKey(m map[string]any, k string) map[string]any {
	c := maps.Clone(m)
	delete(c, k)
	return c
}

// TestMapKeepsEveryMember: each member of a delivery is, in every event, in
// data under its name (the id as delivery_id, customer_identifiers' non-null
// members as identifiers) or in the import mark's delivery: nothing is lost,
// not even a member named like a data key or the failure_message of an event
// that is not a failure.
func TestMapKeepsEveryMember(t *testing.T) {
	t.Parallel()
	ds := []map[string]any{
		parse(t, `{"id": "k1", "type": "email", "delivery_id": "other", "identifiers": {"x": 1},
			"customer_identifiers": {"email": "a@example.com"}, "extra": [1, 2], "metrics": {"sent": 1}}`),
		parse(t, `{"id": "k2", "type": "email", "failure_message": "soft bounce", "metrics": {"sent": 1, "delivered": 2}}`),
		parse(t, `{"id": "k3", "type": "push", "failure_message": "bad token", "metrics": {"sent": 1, "failed": 2}}`),
		decode(t, cioapitest.DocExample()),
	}
	for _, d := range append(ds, decodeAll(t, cioapitest.Generate(300, 9, time.Unix(1.7e9, 0), time.Unix(1.71e9, 0)))...) {
		m := mapOK(t, d)
		for _, e := range m.Events {
			requireKept(t, d, decodeBytes(t, e.Body))
		}
	}
}

func decodeAll(t *testing.T, ds []map[string]any) []map[string]any {
	out := make([]map[string]any, len(ds))
	for i, d := range ds {
		out[i] = decode(t, d)
	}
	return out
}

func requireKept(t *testing.T, d, body map[string]any) {
	t.Helper()
	data := body["data"].(map[string]any)
	kept := body[rudder.ImportKey].(map[string]any)["delivery"].(map[string]any)
	for k, v := range d {
		switch dv, inData := data[k]; {
		case k == "id":
			require.Equal(t, v, data["delivery_id"])
		case k == "customer_identifiers":
			present := maps.Clone(v.(map[string]any))
			maps.DeleteFunc(present, func(_ string, v any) bool { return v == nil })
			if len(present) > 0 {
				require.Equal(t, present, data["identifiers"])
			}
		case inData && k != "delivery_id" && k != "identifiers":
			require.Equal(t, v, dv, k)
		case k == "failure_message" && v == nil: // a null failure is nothing to keep
		default:
			require.Contains(t, kept, k, "%s of %s is lost", k, d["id"])
			require.Equal(t, v, kept[k], k)
		}
	}
}

func TestMapIsDeterministic(t *testing.T) {
	t.Parallel()
	ds := cioapitest.Generate(200, 7, time.Unix(1.7e9, 0), time.Unix(1.71e9, 0))
	for _, d := range ds {
		a, b := mapOK(t, decode(t, d)), mapOK(t, decode(t, d))
		require.Equal(t, a, b)
		for i := range a.Events {
			require.True(t, bytes.Equal(a.Events[i].Body, b.Events[i].Body))
		}
	}
}

func TestMapRefusesInvalidDeliveries(t *testing.T) {
	t.Parallel()
	for _, d := range []string{
		`{"type": "email", "metrics": {"sent": 1}}`,
		`{"id": "", "type": "email"}`,
		`{"id": "  ", "type": "email"}`,
		`{"id": 12, "type": "email"}`,
		`{"id": null, "type": "email"}`,
		`{"id": "x"}`,
		`{"id": "x", "type": 3}`,
		`{"id": "x", "type": null, "forgotten": true}`,
		`{"id": "x", "type": ["email"]}`,
	} {
		m, err := history.Map(parse(t, d))
		var invalid *history.InvalidError
		require.True(t, errors.As(err, &invalid), "%s: %v", d, err)
		require.NotEmpty(t, invalid.Error())
		require.Empty(t, m.Events, d)
	}
	_, err := history.Map(nil)
	require.ErrorAs(t, err, new(*history.InvalidError))
}

func TestOccurrenceOf(t *testing.T) {
	t.Parallel()
	occ := func(id, ot, m string, ts int64) history.Occurrence {
		return history.Occurrence{DeliveryID: id, ObjectType: ot, Metric: m, Timestamp: ts}
	}
	for _, tc := range []struct {
		name string
		body string
		want history.Occurrence
		ok   bool
	}{
		{"current", `{"event_id": "01E4", "object_type": "email", "metric": "opened", "timestamp": 1613063089,
			"data": {"delivery_id": "RPILAgABcRhIBqSp7kiPekGBIeVh", "identifiers": {"id": "42"}}}`,
			occ("RPILAgABcRhIBqSp7kiPekGBIeVh", "email", "opened", 1613063089), true},
		{"legacy event_type with data.email_id", `{"event_id": "01E5", "event_type": "email_delivered", "timestamp": 1500000000,
			"data": {"email_id": "legacy-1", "email_address": "a@example.com"}}`,
			occ("legacy-1", "email", "delivered", 1500000000), true},
		{"legacy in_app", `{"event_type": "in_app_clicked", "timestamp": 1500000001, "data": {"delivery_id": "ia-1"}}`,
			occ("ia-1", "in_app", "clicked", 1500000001), true},
		{"legacy prefers data.delivery_id", `{"event_type": "sms_sent", "timestamp": 5,
			"data": {"delivery_id": "new", "email_id": "old"}}`, occ("new", "sms", "sent", 5), true},
		{"a missing metric from event_type", `{"object_type": "push", "event_type": "push_opened", "timestamp": 5,
			"data": {"delivery_id": "p"}}`, occ("p", "push", "opened", 5), true},
		{"a current body's email_id is not its delivery", `{"object_type": "email", "metric": "sent", "timestamp": 5,
			"data": {"email_id": "e"}}`, history.Occurrence{}, false},
		{"a customer event has no delivery", `{"object_type": "customer", "metric": "subscribed", "timestamp": 5,
			"data": {"customer_id": "42"}}`, history.Occurrence{}, false},
		{"a fractional timestamp", `{"object_type": "email", "metric": "sent", "timestamp": 5.5,
			"data": {"delivery_id": "d"}}`, history.Occurrence{}, false},
		{"a string timestamp", `{"object_type": "email", "metric": "sent", "timestamp": "5",
			"data": {"delivery_id": "d"}}`, history.Occurrence{}, false},
		{"no data", `{"object_type": "email", "metric": "sent", "timestamp": 5}`, history.Occurrence{}, false},
		{"a non-string metric", `{"object_type": "email", "metric": 3, "timestamp": 5, "data": {"delivery_id": "d"}}`,
			history.Occurrence{}, false},
		{"a malformed event_type", `{"event_type": "delivered", "timestamp": 5, "data": {"email_id": "d"}}`,
			history.Occurrence{}, false},
	} {
		got, ok := history.OccurrenceOf(parse(t, tc.body))
		require.Equal(t, tc.ok, ok, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}

	// Decoded without UseNumber, an integral timestamp is a float64 and still counts.
	var plain map[string]any
	require.NoError(t, json.Unmarshal([]byte(`{"object_type": "sms", "metric": "sent", "timestamp": 1613063089,
		"data": {"delivery_id": "s"}}`), &plain))
	got, ok := history.OccurrenceOf(plain)
	require.True(t, ok)
	require.Equal(t, occ("s", "sms", "sent", 1613063089), got)
}

// TestRoundTrip: an imported body names its own occurrence, its event_id is
// that occurrence's, it carries the import mark, and a webhook body of the
// same occurrence, current or legacy, has the same EventID: the imported
// copy's primary key is computable from the webhook copy.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ds := append(cioapitest.Generate(500, 8, time.Unix(1.7e9, 0), time.Unix(1.72e9, 0)), cioapitest.DocExample())
	events := 0
	for _, d := range ds {
		m := mapOK(t, decode(t, d))
		for _, e := range m.Events {
			events++
			body := decodeBytes(t, e.Body)
			got, ok := history.OccurrenceOf(body)
			require.True(t, ok)
			require.Equal(t, e.Occurrence, got)
			require.Equal(t, history.EventID(got), body["event_id"])
			require.True(t, history.Imported(body))

			o := e.Occurrence
			webhook := decode(t, map[string]any{"event_id": "01HWEBHOOK", "object_type": o.ObjectType, "metric": o.Metric,
				"timestamp": o.Timestamp, "data": map[string]any{"delivery_id": o.DeliveryID}})
			require.False(t, history.Imported(webhook))
			twin, ok := history.OccurrenceOf(webhook)
			require.True(t, ok)
			require.Equal(t, body["event_id"], history.EventID(twin))
		}
	}
	require.Greater(t, events, len(ds), "most deliveries give more than one event")
}

func TestEventID(t *testing.T) {
	t.Parallel()
	base := history.Occurrence{DeliveryID: "d", ObjectType: "email", Metric: "opened", Timestamp: 100}
	id := history.EventID(base)
	require.Regexp(t, `^cio_hist_[0-9a-f]{32}$`, id)
	require.Equal(t, id, history.EventID(base))
	seen := map[string]bool{id: true}
	for _, o := range []history.Occurrence{
		{DeliveryID: "e", ObjectType: "email", Metric: "opened", Timestamp: 100},
		{DeliveryID: "d", ObjectType: "push", Metric: "opened", Timestamp: 100},
		{DeliveryID: "d", ObjectType: "email", Metric: "clicked", Timestamp: 100},
		{DeliveryID: "d", ObjectType: "email", Metric: "opened", Timestamp: 101}, // a second open is another occurrence
		{DeliveryID: "de", ObjectType: "mail", Metric: "opened", Timestamp: 100}, // parts do not run together
		{DeliveryID: "d", ObjectType: "emailopened", Metric: "", Timestamp: 100},
	} {
		other := history.EventID(o)
		require.False(t, seen[other], "%+v collides", o)
		seen[other] = true
	}
}
