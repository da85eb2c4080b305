package stitch_test

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/cioloader/cioloader/internal/stitch"
)

func ExampleFlatten() {
	body := `{"event_id":"01E4C4HDQ7P1X9KTKF0ZX7PWHE","object_type":"push","metric":"sent","timestamp":1585250350,
	  "data":{"customer_id":"0200102","identifiers":{"id":"0200102"},
	          "recipients":[{"device_id":"eeC2","device_platform":"android"},{"device_id":"740f","device_platform":"ios"}]}}`
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.UseNumber() // keeps integers exact: timestamp becomes a bigint column
	var event map[string]any
	if err := dec.Decode(&event); err != nil {
		panic(err)
	}
	res := stitch.Flatten(event, stitch.Limits{MaxDepth: 10, MaxKeys: 1000})
	for _, t := range res.Tables {
		for _, row := range t.Rows {
			for _, f := range row.Fields {
				fmt.Printf("%s %v %s (%s) = %v\n", t.Name, row.Levels, f.Name, f.Type.SQL(), f.Value)
			}
		}
	}
	fmt.Println("problems:", len(res.Problems))
	// Output:
	// data [] data__customer_id (text) = 0200102
	// data [] data__identifiers__id (text) = 0200102
	// data [] metric (text) = sent
	// data [] object_type (text) = push
	// data [] timestamp (bigint) = 1585250350
	// data__data__recipients [0] device_id (text) = eeC2
	// data__data__recipients [0] device_platform (text) = android
	// data__data__recipients [1] device_id (text) = 740f
	// data__data__recipients [1] device_platform (text) = ios
	// problems: 0
}
