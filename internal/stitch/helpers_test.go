package stitch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// decode parses a test event the way the webhook decoder does (UseNumber).
func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	ev, err := decodeEvent([]byte(s))
	require.NoError(t, err)
	return ev
}

func decodeEvent(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// dump renders a Result one line per field, in output order:
// "table[levels] name type value", "table[levels] (empty)" for a row without
// fields, and "! table: reason" for each problem.
func dump(r Result) []string {
	var out []string
	for _, tb := range r.Tables {
		for _, row := range tb.Rows {
			at := tb.Name
			if row.Levels != nil {
				at += fmt.Sprint(row.Levels)
			}
			if len(row.Fields) == 0 {
				out = append(out, at+" (empty)")
			}
			for _, f := range row.Fields {
				out = append(out, fmt.Sprintf("%s %s %s %v", at, f.Name, f.Type, f.Value))
			}
		}
	}
	for _, p := range r.Problems {
		out = append(out, "! "+p.Table+": "+p.Reason)
	}
	return out
}

// emailSent is a realistic ~1 KB Customer.io email_sent reporting event, with
// the message body and headers ("Body Content" on).
const emailSent = `{
  "event_id": "01E2EMRMM6TZ12TF9WGZN0WJQT",
  "object_type": "email",
  "metric": "sent",
  "timestamp": 1644227937,
  "data": {
    "action_id": 42,
    "campaign_id": 23,
    "journey_id": "01GW2Z8H9JQ6ZPBV4PAF0RRT2S",
    "parent_action_id": 41,
    "trigger_event_id": "01GW2Z8F2WFQ2KQX7Z2DXH2V9S",
    "content": "<html><body><h1>Welcome aboard</h1><p>Thanks for signing up, we are glad to have you with us. Here is what happens next: confirm your address, set up your profile and invite your team.</p></body></html>",
    "customer_id": "user-123",
    "delivery_id": "RAECAAFwnUSneIa0ZXkmq8EdkAM==",
    "headers": {
      "Custom-Header": ["custom-value"],
      "X-Mailgun-Tag": ["welcome", "onboarding"]
    },
    "identifiers": {
      "id": "user-123",
      "email": "test@example.com",
      "cio_id": "d9c106000001"
    },
    "recipient": "test@example.com",
    "subject": "Thanks for signing up",
    "sent_at": 1644227937.25,
    "test": false
  }
}`

// pushSent is Customer.io's push_sent example, with data.recipients.
const pushSent = `{
  "event_id": "01E4C4HDQ7P1X9KTKF0ZX7PWHE",
  "object_type": "push",
  "metric": "sent",
  "timestamp": 1585250350,
  "data": {
    "action_id": 37,
    "broadcast_id": 9,
    "customer_id": "0200102",
    "identifiers": {"id": "0200102"},
    "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
    "recipients": [
      {"device_id": "eeC2XC_NVPo", "device_platform": "android"},
      {"device_id": "740f4707beb", "device_platform": "ios"}
    ]
  }
}`
