package history_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cioloader/cioloader/internal/history"
)

// ExampleMap turns the App API document's example delivery into its events,
// then names the imported twin of a webhook event of the same occurrence.
func ExampleMap() {
	delivery := `{"id": "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=", "msg_template_id": 43, "action_id": 215,
		"campaign_id": 23, "newsletter_id": null, "broadcast_id": null, "customer_id": null,
		"recipient": "person@example.com", "metrics": {"delivered": 1619137768, "sent": 1619137768},
		"created": 1619137767, "type": "email", "forgotten": false}`
	dec := json.NewDecoder(strings.NewReader(delivery))
	dec.UseNumber() // as the App API client decodes
	var d map[string]any
	if err := dec.Decode(&d); err != nil {
		panic(err)
	}

	m, err := history.Map(d)
	if err != nil {
		panic(err)
	}
	for _, e := range m.Events {
		fmt.Println(e.Occurrence.ObjectType, e.Occurrence.Metric, e.Occurrence.Timestamp, history.EventID(e.Occurrence))
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, m.Events[1].Body, "", "  ")
	fmt.Println(pretty.String())

	webhook := map[string]any{"event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": "email", "metric": "sent",
		"timestamp": json.Number("1619137768"), "data": map[string]any{"delivery_id": m.DeliveryID}}
	o, _ := history.OccurrenceOf(webhook)
	fmt.Println(history.EventID(o) == history.EventID(m.Events[1].Occurrence))
	// Output:
	// email delivered 1619137768 cio_hist_eb6a6180b18eb6a8a88ed5a41b305a39
	// email sent 1619137768 cio_hist_cb7b43e4a39886d0ce85fa4b62564d6a
	// {
	//   "cioloader_import": {
	//     "delivery": {
	//       "broadcast_id": null,
	//       "created": 1619137767,
	//       "customer_id": null,
	//       "forgotten": false,
	//       "metrics": {
	//         "delivered": 1619137768,
	//         "sent": 1619137768
	//       },
	//       "msg_template_id": 43,
	//       "newsletter_id": null,
	//       "type": "email"
	//     },
	//     "source": "customerio_app_api"
	//   },
	//   "data": {
	//     "action_id": 215,
	//     "campaign_id": 23,
	//     "delivery_id": "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=",
	//     "recipient": "person@example.com"
	//   },
	//   "event_id": "cio_hist_cb7b43e4a39886d0ce85fa4b62564d6a",
	//   "metric": "sent",
	//   "object_type": "email",
	//   "timestamp": 1619137768
	// }
	// true
}
