package warehouse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// warehouseCase is one line of testdata/rudder-warehouse/vectors.jsonl: a RudderStack
// event and the rows RudderStack's warehouse transformer made of it.
type warehouseCase struct {
	Name  string         `json:"name"`
	Event map[string]any `json:"event"`
	Rows  []struct {
		Table   string          `json:"table"`
		Columns map[string]Type `json:"columns"`
	} `json:"rows"`
}

func readCases(t *testing.T) []warehouseCase {
	t.Helper()
	f, err := os.Open("../../testdata/rudder-warehouse/vectors.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var cases []warehouseCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var c warehouseCase
		require.NoError(t, dec.Decode(&c))
		cases = append(cases, c)
	}
	require.NoError(t, sc.Err())
	return cases
}

// fixedTrackColumns are the columns of a raw-mode row that do not come from
// properties, context or the ids: RudderStack's own (and its source/destination
// info, which it adds to the context).
var fixedTrackColumns = map[string]bool{
	"id": true, "event": true, "event_text": true, "received_at": true, "uuid_ts": true,
	"sent_at": true, "original_timestamp": true, "timestamp": true,
	"context_source_id": true, "context_source_type": true, "context_destination_id": true, "context_destination_type": true,
}

// TestColumnsMatchRudderStack: for every vector, the columns Columns and IDColumn
// give (with their types) are exactly the non-fixed columns of the tracks row and of
// the event's row that RudderStack's transformer made, and TableName is its table.
func TestColumnsMatchRudderStack(t *testing.T) {
	t.Parallel()
	cases := readCases(t)
	require.Len(t, cases, 71)
	for _, c := range cases {
		props, _ := c.Event["properties"].(map[string]any)
		ctx, _ := c.Event["context"].(map[string]any)
		ctxCols, propCols := Columns(props, ctx)
		common := map[string]Type{}
		for _, col := range ctxCols {
			common[col.Name] = col.Type
		}
		for _, src := range []Source{FromUserID, FromAnonymousID} {
			if col, ok := IDColumn(src, c.Event[string(src)]); ok {
				common[col.Name] = col.Type
			}
		}
		event := map[string]Type{}
		for _, col := range propCols {
			event[col.Name] = col.Type
		}
		for k, v := range common {
			event[k] = v
		}
		require.Equal(t, "tracks", c.Rows[0].Table, c.Name)
		require.Equal(t, common, withoutFixed(c.Rows[0].Columns), "%s: tracks", c.Name)
		name, _ := c.Event["event"].(string)
		if TableName(name) == "" { // qk03: upstream lost the event name; no table of its own
			require.Len(t, c.Rows, 1, c.Name)
			continue
		}
		require.Len(t, c.Rows, 2, c.Name)
		require.Equal(t, c.Rows[1].Table, TableName(name), c.Name)
		require.Equal(t, event, withoutFixed(c.Rows[1].Columns), "%s: %s", c.Name, c.Rows[1].Table)
	}
}

func withoutFixed(cols map[string]Type) map[string]Type {
	out := map[string]Type{}
	for k, v := range cols {
		if !fixedTrackColumns[k] {
			out[k] = v
		}
	}
	return out
}
