package stitch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzFlatten feeds arbitrary JSON objects (decoded with UseNumber, as the
// webhook decoder does) and checks Flatten never panics and always returns
// names and rows the writer can use as they are.
func FuzzFlatten(f *testing.F) {
	for _, s := range []string{
		emailSent, pushSent, `{}`, `{"event_id":1}`,
		`{"a":[[1,[2,{"b":[3]}]],null,{}],"a!":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":1}}}}}}}}}}}`,
		`{"p":[{"q__r":[1]}],"p__q":[{"r":[2]}],"x__st":1,"_sdc":2,"é":3,"1e400":1e400,"big":123456789012345678901234567890}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := decodeEvent(body)
		if err != nil {
			return
		}
		for _, lim := range []Limits{Limits{MaxDepth: 10, MaxKeys: 1000}, {MaxDepth: 2, MaxKeys: 5}} {
			r := Flatten(ev, lim)
			checkInvariants(t, r)
			require.Equal(t, r, Flatten(ev, lim), "deterministic")
		}
	})
}
