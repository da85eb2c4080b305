package rudder

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzAppendJSON checks the reflection-free encoder writes exactly what
// encoding/json (without HTML escaping) writes for any decoded JSON value.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{`{"a":"x\u2028y","b":[1,2.5e10,-0,true,null],"c":{"z":1,"a":"<&>"}}`, "\"\x01\x7f\\\"\"", `"\ud800"`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		t.Parallel()
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		want, err := marshal(v)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendJSON(nil, v)))
	})
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\n\r\t\b\f\x00\x1f", "é😀", "\u2028\u2029", "bad\xffutf8", "<&>"} {
		want, err := marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString(nil, s)), "%q", s)
	}
}
