package rudder_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/rudder"
)

// TestContextStoredOnce: the constant members and the varying part, merged as
// rudder_events' view merges them (jsonb ||), are the whole context, and the
// varying part holds none of the constant members, for every spec body, every
// payload of testdata/events and an imported event.
func TestContextStoredOnce(t *testing.T) {
	t.Parallel()
	var files []string
	for _, g := range []string{"../../testdata/customerio/bodies/*.json", "../../testdata/events/*.json"} {
		f, err := filepath.Glob(g)
		require.NoError(t, err)
		files = append(files, f...)
	}
	require.NotEmpty(t, files)
	bodies := [][]byte{[]byte(`{"event_id":"h","object_type":"email","metric":"sent","cioloader_import":{"source":"customerio_app_api"},"data":{}}`),
		[]byte(`{"event_id":"n","object_type":"email","metric":"sent"}`)}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		bodies = append(bodies, b)
	}
	var constant map[string]any
	require.NoError(t, json.Unmarshal([]byte(rudder.ContextConstantJSON), &constant))
	for _, b := range bodies {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var obj map[string]any
		require.NoError(t, dec.Decode(&obj))
		e := rudder.Transform(obj, rudder.Options{Namespace: "s"})
		var whole, varying map[string]any
		require.NoError(t, json.Unmarshal(e.ContextJSON(), &whole), string(b))
		require.NoError(t, json.Unmarshal(e.ContextVaryingJSON(), &varying), string(e.ContextVaryingJSON()))
		for k := range constant {
			require.NotContains(t, varying, k)
		}
		merged := maps.Clone(constant)
		maps.Copy(merged, varying)
		require.Equal(t, whole, merged, string(b))
	}
}
