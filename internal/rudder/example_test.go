package rudder_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cioloader/cioloader/internal/rudder"
)

func ExampleTransform() {
	body := `{"event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "object_type": "email", "metric": "opened",
		"timestamp": 1613063089, "data": {"customer_id": 42, "identifiers": {"email": "test@example.com"}}}`
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber() // numbers keep their exact literal
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		panic(err)
	}

	e := rudder.Transform(obj, rudder.Options{
		Namespace:  "stitch_customerio",
		ReceivedAt: time.Date(2024, 3, 3, 4, 48, 29, 0, time.UTC),
	})
	userID, _ := e.UserID()
	at, _ := e.OriginalTimestamp()
	fmt.Println(e.Name(), userID, at)

	b, _ := e.MarshalJSON()
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, b, "", "  ")
	fmt.Println(pretty.String())
	// Output:
	// Email Opened 42 2021-02-11 17:04:49 +0000 UTC
	// {
	//   "context": {
	//     "library": {
	//       "name": "unknown",
	//       "version": "unknown"
	//     },
	//     "integration": {
	//       "name": "Customer.io"
	//     },
	//     "traits": {
	//       "email": "test@example.com"
	//     }
	//   },
	//   "integrations": {
	//     "Customer.io": false
	//   },
	//   "type": "track",
	//   "event": "Email Opened",
	//   "properties": {
	//     "eventId": "01E4C4CT6YDC7Y5M7FE1GWWPQJ"
	//   },
	//   "userId": 42,
	//   "originalTimestamp": "2021-02-11T17:04:49.000Z",
	//   "sentAt": "2021-02-11T17:04:49.000Z",
	//   "messageId": "4775ffca-313b-510b-baf4-27695772ad9a",
	//   "receivedAt": "2024-03-03T04:48:29.000Z"
	// }
}

func ExampleTransformStream() {
	input := `{"event_id": "a", "object_type": "SMS", "metric": "clicked", "data": {"customer_id": "c1"}}
null
{"event_id": "b",
`
	err := rudder.TransformStream(strings.NewReader(input), os.Stdout, rudder.Options{Namespace: "s"})
	fmt.Println(err)
	// Output:
	// {"context":{"library":{"name":"unknown","version":"unknown"},"integration":{"name":"Customer.io"}},"integrations":{"Customer.io":false},"type":"track","event":"SMS Link Clicked","properties":{"eventId":"a"},"userId":"c1","messageId":"b1d0794d-77b1-5a24-a7b1-2ba5ed0c3d5c"}
	// {"error":"line 2: not a JSON object (got null)"}
	// {"error":"line 3, column 18: invalid JSON: unexpected end of JSON input"}
	// <nil>
}
