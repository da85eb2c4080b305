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
	}, Limits{MaxDepth: 10, MaxKeys: 1000})
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

// Ensure a subtable's Source names the array's full key path when its name
// does not spell it, and that two key paths cannot share a subtable in one event.
func TestTableSource(t *testing.T) {
	t.Parallel()
	res := Flatten(map[string]any{
		"tags":     []any{"a"},
		"my-list":  []any{map[string]any{"inner": []any{1}}},
		"data":     map[string]any{"recipients": []any{map[string]any{"device_id": "x"}}},
		"dup":      []any{1},
		"d!up":     []any{2},
		"a":        map[string]any{"b": []any{1}},
		"odd__arr": []any{3},
	}, Limits{MaxDepth: 10, MaxKeys: 1000})
	got := map[string]string{}
	for _, tbl := range res.Tables {
		got[tbl.Name] = tbl.Source
	}
	require.Equal(t, map[string]string{
		"data":                   "",
		"data__tags":             "",
		"data__mylist":           "my-list",
		"data__mylist__inner":    "my-list.inner",
		"data__data__recipients": "",
		"data__dup":              "d!up",
		"data__a__b":             "",
		"data__odd__arr":         "odd__arr",
	}, got)
	var reasons []string
	for _, p := range res.Problems {
		reasons = append(reasons, p.Reason)
	}
	require.Contains(t, reasons, "Field collision on dup", `"dup" loses to "d!up", which sorts first`)
}
