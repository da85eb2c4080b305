package stitch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Ensure Source names the key path exactly when the column name does not
// spell it unambiguously, so the writer can tell two keys apart that clean to
// one column in different events.
func TestFieldSource(t *testing.T) {
	t.Parallel()
	res := Flatten(map[string]any{
		"clean":        "a",
		"customer-id":  "b",
		"data":         map[string]any{"identifiers": map[string]any{"e-mail": "c", "email": "d"}},
		"data__direct": "e",
		"list":         []any{map[string]any{"device id": "f", "platform": "g"}},
	}, DefaultLimits())
	got := map[string]string{}
	for _, tbl := range res.Tables {
		for _, row := range tbl.Rows {
			for _, f := range row.Fields {
				got[tbl.Name+"."+f.Name] = f.Source
			}
		}
	}
	require.Equal(t, map[string]string{
		"data.clean":                    "",
		"data.customerid":               "customer-id",
		"data.data__identifiers__email": "data.identifiers.e-mail",
		"data.data__direct":             "data__direct",
		"data__list.deviceid":           "device id",
		"data__list.platform":           "",
	}, got, "data.identifiers.email loses to e-mail (sorted first) within the event")
}
