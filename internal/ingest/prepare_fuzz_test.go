package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/stitch"
	"github.com/cioloader/cioloader/internal/webhook"
)

// FuzzPrepare drives the HTTP decode path (webhook.Decode, then ingest.Prepare)
// with arbitrary bodies. Whatever comes in, it must not panic, and everything
// Prepare hands the writer must be something Postgres accepts as is: a
// non-empty event_id, _sdc_raw and the RudderStack payload as JSON that jsonb
// takes (valid UTF-8, no \u0000, no lone surrogate, every number within
// numeric's range), and strictly increasing sequences. A body Decode refuses
// must be refused as invalid (400), never with another error (which the
// server would turn into a 503 that Customer.io retries for 7 days).
//
// Run it with: go test ./internal/ingest/ -run '^$' -fuzz FuzzPrepare -fuzztime 60s
func FuzzPrepare(f *testing.F) {
	for _, pattern := range []string{
		"../../testdata/events/*.json",
		"../../testdata/rudder/*.input.json",
		"../../testdata/rudder/*.input.raw",
	} {
		files, err := filepath.Glob(pattern)
		require.NoError(f, err)
		require.NotEmpty(f, files, pattern)
		for _, name := range files {
			b, err := os.ReadFile(name)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	for _, s := range []string{
		`[]`, `{}`, `[{}]`, `null`, `"x"`, `[1]`, `{"event_id":""}`, `{"event_id":" "}`, `{"event_id":12.5e3}`,
		`{"event_id":"a","event_id":null}`, `[{"event_id":"a"},{"event_id":"a"}]`,
		`{"event_id":"n\u0000","k\u0000":"v\u0000","s":"\ud800","t":"x\udc00","p":"\ud83d\ude00","e":"\\u0000"}`,
		"{\"event_id\":\"raw\xff\",\"k\xfe\":\"v\xc3\x28\",\"a\":[\"\xed\xa0\x80\"]}",
		`{"event_id":"n","big":123456789012345678901234567890,"inf":1e400,"tiny":1e-400,"neg":-0.0,"x":1e200000}`,
		`{"event_id":"n","d":1e-16383,"e":1.5e-16382,"i":1e131071,"z":0e200000}`,
		`{"event_id":"deep","a":` + strings.Repeat(`{"a":`, 50) + `[` + strings.Repeat(`[`, 50) + `1` + strings.Repeat(`]`, 51) + strings.Repeat(`}`, 51),
		`{"event_id":"ts","timestamp":1e300,"object_type":{"x":1},"metric":"constructor","data":{"customer_id":1e400}}`,
		`{"event_id":"ts","timestamp":-1e300,"data":{"identifiers":{"id":["a"]},"recipient":{"email":1}}}`,
	} {
		f.Add([]byte(s))
	}
	// A zero with a long negative exponent: Postgres refuses it in jsonb
	// ("value overflows numeric format": the scale is over 16383) although
	// its value is 0. See the report: webhook.fitsNumeric treats every zero as
	// storable, so such an event poisons its whole request with a 503.
	f.Add([]byte(`{"event_id":"z","v":0e-16384}`))

	seq := ingest.NewSequencer(nil) // shared: sequences also increase across requests
	var last int64
	f.Fuzz(func(t *testing.T, body []byte) {
		batch, err := webhook.Decode(body, 100)
		if err != nil {
			var inv *webhook.InvalidError
			require.True(t, errors.As(err, &inv), "a refused body must be an InvalidError (400), got %T: %v", err, err)
			require.NotEmpty(t, inv.Msg)
			return
		}
		checkObjectCount(t, body, batch)
		for _, rj := range batch.Rejected {
			checkPGText(t, "rejection reason", rj.Reason)
			checkPGText(t, "rejection record", rj.Record)
		}
		r := ingest.Prepare("fuzz", time.Now(), batch, ingest.NewSequencer(nil), stitch.Limits{MaxDepth: 10, MaxKeys: 1000})
		checkRequest(t, batch, r)
		// And with the shared sequencer: later requests get later sequences.
		r2 := ingest.Prepare("fuzz", time.Now(), batch, seq, stitch.Limits{MaxDepth: 10, MaxKeys: 1000})
		if len(r2.Events) > 0 {
			require.Greater(t, r2.Events[0].Seq, last, "a later request must get a later sequence")
			last = r2.Events[len(r2.Events)-1].Seq
		}
	})
}

func checkObjectCount(t *testing.T, body []byte, b webhook.Batch) {
	t.Helper()
	trimmed := bytes.TrimSpace(body)
	want := 1
	if trimmed[0] == '[' {
		var elems []json.RawMessage
		require.NoError(t, json.Unmarshal(trimmed, &elems), "Decode accepted an array encoding/json refuses")
		want = len(elems)
	}
	require.Equal(t, want, len(b.Events)+len(b.Rejected), "every object is either an event or a rejection; nothing is dropped")
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func checkRequest(t *testing.T, b webhook.Batch, r *ingest.Request) {
	t.Helper()
	require.Len(t, r.Events, len(b.Events))
	require.Equal(t, b.Rejected, r.Rejected)
	require.Equal(t, b.Replaced, r.Replaced)
	require.GreaterOrEqual(t, r.Replaced, 0)
	for i, e := range r.Events {
		require.NotEmpty(t, strings.TrimSpace(e.ID), "event %d has an empty event_id", i)
		require.LessOrEqual(t, utf8.RuneCountInString(e.ID), webhook.MaxEventIDLen)
		checkPGText(t, "event_id", e.ID)
		if i > 0 {
			require.Greater(t, e.Seq, r.Events[i-1].Seq, "sequences must be strictly increasing in array order")
		}

		require.True(t, json.Valid(e.Raw), "event %d: _sdc_raw is not valid JSON: %q", i, clip(e.Raw))
		checkJSONB(t, "_sdc_raw", e.Raw)

		require.NotNil(t, e.Rudder, "event %d has no RudderStack copy", i)
		payload, err := e.Rudder.MarshalJSON()
		require.NoError(t, err)
		require.True(t, json.Valid(payload), "event %d: rudder payload is not valid JSON: %q", i, clip(payload))
		checkJSONB(t, "rudder payload", payload)
		require.Equal(t, string(payload), string(e.Rudder.AppendJSON(nil)), "MarshalJSON and AppendJSON (used by the writer) differ")
		require.Regexp(t, uuidRE, e.Rudder.MessageID(), "message_id is cast to uuid")
		checkPGText(t, "type", e.Rudder.Type())
		checkPGText(t, "event", e.Rudder.Name())
		for name, get := range map[string]func() (string, bool){
			"user_id": e.Rudder.UserID, "anonymous_id": e.Rudder.AnonymousID,
			"object_type": e.Rudder.ObjectType, "metric": e.Rudder.Metric,
		} {
			if v, ok := get(); ok {
				checkPGText(t, name, v)
			}
		}
		if ts, ok := e.Rudder.OriginalTimestamp(); ok {
			require.True(t, ts.Year() >= 1 && ts.Year() <= 9999, "original_timestamp %v is outside what timestamptz holds", ts)
		}

		require.NotEmpty(t, e.Flat.Tables, "the writer reads Flat.Tables[0]")
		require.Equal(t, "data", e.Flat.Tables[0].Name)
		require.Len(t, e.Flat.Tables[0].Rows, 1, "the writer reads Flat.Tables[0].Rows[0]")
		for _, tb := range e.Flat.Tables {
			for _, row := range tb.Rows {
				for _, fl := range row.Fields {
					switch fl.Type {
					case stitch.Text:
						s, ok := fl.Value.(string)
						require.True(t, ok, "text field %s holds %T", fl.Name, fl.Value)
						checkPGText(t, "column "+fl.Name, s)
					case stitch.Numeric:
						s, ok := fl.Value.(string)
						require.True(t, ok, "numeric field %s holds %T", fl.Name, fl.Value)
						require.True(t, pgNumericOK(s), "numeric column %s gets %q, which Postgres refuses", fl.Name, clip([]byte(s)))
					}
				}
			}
		}
	}
}

// checkPGText fails when s can't go into a Postgres text column.
func checkPGText(t *testing.T, what, s string) {
	t.Helper()
	require.True(t, utf8.ValidString(s), "%s is not valid UTF-8: %q", what, clip([]byte(s)))
	require.False(t, strings.ContainsRune(s, 0), "%s holds U+0000: %q", what, clip([]byte(s)))
}

// checkJSONB fails when valid JSON raw holds something Postgres's jsonb input
// refuses: invalid UTF-8, a \u0000 escape, a lone surrogate escape, or a
// number beyond numeric's range. It scans the bytes itself rather than
// decoding, because decoding hides escapes.
func checkJSONB(t *testing.T, what string, raw []byte) {
	t.Helper()
	require.True(t, utf8.Valid(raw), "%s is not valid UTF-8: %q", what, clip(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '"':
			i++
			for raw[i] != '"' {
				if raw[i] != '\\' {
					i++
					continue
				}
				if raw[i+1] != 'u' {
					i += 2
					continue
				}
				u := hex4(raw[i+2 : i+6])
				require.NotEqual(t, 0, u, "%s holds a \\u0000 escape: %q", what, clip(raw))
				switch {
				case u >= 0xDC00 && u <= 0xDFFF:
					require.Fail(t, "lone low surrogate", "%s holds a lone \\u%04x escape: %q", what, u, clip(raw))
				case u >= 0xD800 && u <= 0xDBFF:
					ok := i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u'
					if ok {
						lo := hex4(raw[i+8 : i+12])
						ok = lo >= 0xDC00 && lo <= 0xDFFF
					}
					require.True(t, ok, "%s holds a lone high surrogate escape \\u%04x: %q", what, u, clip(raw))
					i += 6
				}
				i += 6
			}
			i++
		case c == '-' || c >= '0' && c <= '9':
			j := i
			for j < len(raw) && strings.IndexByte("+-.eE0123456789", raw[j]) >= 0 {
				j++
			}
			require.True(t, pgNumericOK(string(raw[i:j])), "%s holds the number %q, which Postgres's jsonb refuses (value overflows numeric format)", what, clip(raw[i:j]))
			i = j
		default:
			i++
		}
	}
}

func hex4(b []byte) int {
	n, err := strconv.ParseUint(string(b), 16, 16)
	if err != nil {
		return -1
	}
	return int(n)
}

// pgNumericOK says whether Postgres's numeric input (which jsonb uses) accepts
// the JSON number literal s, following set_var_from_str and make_result:
// the exponent must be within ±(INT_MAX/2); the display scale (fraction
// digits minus the exponent, at least 0) at most 16383 — even for a zero; a
// non-zero value at most 131072 digits before the decimal point.
func pgNumericOK(s string) bool {
	s = strings.TrimPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	var exp int64
	if hasExp {
		e, err := strconv.ParseInt(strings.TrimPrefix(expText, "+"), 10, 64)
		if err != nil || e >= (1<<31-1)/2 || e <= -((1<<31-1)/2) {
			return false
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if max(0, int64(len(frac))-exp) > 16383 {
		return false
	}
	digits := intPart + frac
	lead := len(digits) - len(strings.TrimLeft(digits, "0"))
	if lead == len(digits) {
		return true // zero: no weight to overflow
	}
	return int64(len(intPart))+exp-int64(lead) <= 131072
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// Ensure the oracle above agrees with what Postgres 15 was seen to answer.
func TestPGNumericOracle(t *testing.T) {
	t.Parallel()
	for lit, ok := range map[string]bool{
		"0": true, "-0.0": true, "1e131071": true, "1e131072": false, "10e131071": false,
		"0.1e131073": false, "0.0000000001e131082": false, "1e-16383": true, "1e-16384": false,
		"15e-16384": false, "1.5e-16382": true, "0e-16383": true, "0e-16384": false, "-0.0e-16383": false,
		"0.0e-99999": false, "0e200000": true, "0e2000000000": false, "0.000e131073": true, "1e1001": true,
		"1e-1001": true, "1E+5": true, "123456789012345678901234567890": true,
	} {
		require.Equal(t, ok, pgNumericOK(lit), lit)
	}
}
