package bench

import (
	"bytes"
	"strconv"
)

// writeEvent appends a realistic ~1 KB Customer.io "email sent" event (with
// content, headers and identifiers, as Customer.io sends with Body Content on).
func writeEvent(b *bytes.Buffer, eventID string, n int) {
	cust := strconv.Itoa(100000 + n%5000)
	b.WriteString(`{"event_id":"`)
	b.WriteString(eventID)
	b.WriteString(`","object_type":"email","metric":"sent","timestamp":`)
	b.WriteString(strconv.Itoa(1700000000 + n))
	b.WriteString(`,"data":{"action_id":42,"campaign_id":23,"journey_id":"01GW2Z8H9JQ6ZPBV4PAF0RRT2S","parent_action_id":41,` +
		`"trigger_event_id":"01GW2Z8F2WFQ2KQX7Z2DXH2V9S","customer_id":"`)
	b.WriteString(cust)
	b.WriteString(`","delivery_id":"RAECAAFwnUSneIa0ZXkmq8EdkAM`)
	b.WriteString(strconv.Itoa(n))
	b.WriteString(`","identifiers":{"id":"`)
	b.WriteString(cust)
	b.WriteString(`","email":"customer`)
	b.WriteString(cust)
	b.WriteString(`@example.com","cio_id":"d9c10600`)
	b.WriteString(cust)
	b.WriteString(`"},"recipient":"customer`)
	b.WriteString(cust)
	b.WriteString(`@example.com","subject":"Your weekly summary is ready",` +
		`"content":"<html><body><h1>Hello!</h1><p>Here is what happened in your account this week: 3 new followers, ` +
		`12 comments and 1 mention. Thanks for being with us.</p><p><a href=\"https://example.com/summary\">See the summary</a> ` +
		`or <a href=\"https://example.com/unsubscribe\">unsubscribe</a>.</p></body></html>",` +
		`"headers":{"X-Mailgun-Tag":["weekly","summary"],"List-Unsubscribe":["<https://example.com/unsubscribe>"]}}}`)
}
