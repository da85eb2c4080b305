package rudder

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// vectorDir holds the RudderStack vectors (see its README.md for provenance).
const vectorDir = "../../testdata/rudder"

var testOptions = Options{
	Namespace:  "stitch_customerio",
	ReceivedAt: time.Date(2024, 3, 3, 4, 48, 29, 0, time.UTC),
}

// decodeJSON decodes b with UseNumber, so numbers compare by their exact literal.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

func readVector(t *testing.T, file string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, file))
	require.NoError(t, err)
	return decodeJSON(t, b)
}

func readObject(t *testing.T, file string) map[string]any {
	t.Helper()
	obj, ok := readVector(t, file).(map[string]any)
	require.True(t, ok, "%s is not a JSON object", file)
	return obj
}

// upstreamView is the event as JSON without the keys rudder-server's gateway adds.
func upstreamView(t *testing.T, e *Event) map[string]any {
	t.Helper()
	b, err := e.MarshalJSON()
	require.NoError(t, err)
	got := decodeJSON(t, b).(map[string]any)
	delete(got, "messageId")
	delete(got, "receivedAt")
	return got
}

// vectorNames lists the vectors whose names start with one of prefixes.
func vectorNames(t *testing.T, prefixes ...string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.input.*"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		name, _, _ := strings.Cut(filepath.Base(f), ".")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				names = append(names, name)
			}
		}
	}
	return names
}

// TestVectors checks every upstream (up*) and derived (dv*) vector: our event minus
// messageId and receivedAt is the transformer's output.
func TestVectors(t *testing.T) {
	t.Parallel()
	names := vectorNames(t, "up", "dv")
	require.Len(t, names, 24+41)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := readVector(t, name+".expected.json")
			input := readVector(t, name+".input.json")
			obj, ok := input.(map[string]any)
			if !ok {
				// dv40: an array body maps nothing upstream, exactly like {}; we read an
				// array as a list of events instead (TestDifferenceArrayBody).
				require.Equal(t, "dv40_body_json_array", name)
				obj = map[string]any{}
			}
			got := upstreamView(t, Transform(obj, testOptions))
			if named := specNamedVectors[name]; named != "" {
				// TestDifferenceSpecPairsNamed: upstream says "Unknown Event".
				require.Equal(t, UnknownEvent, want.(map[string]any)["event"])
				want.(map[string]any)["event"] = named
			}
			require.Equal(t, want, got)
		})
	}
}

// specNamedVectors are the derived vectors of spec pairs that upstream leaves unnamed;
// everything but the name is upstream's output.
var specNamedVectors = map[string]string{
	"dv12_unknown_pair_in_app_clicked":               "In-App Message Link Clicked",
	"dv13_unknown_pair_customer_preferences_changed": "Customer Subscription Preferences Changed",
	"dv14_unknown_metric_email_undeliverable":        "Email Undeliverable",
}

// TestDifferenceArrayBody: a JSON array body is a list of events, so [] gives none.
func TestDifferenceArrayBody(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, TransformStream(strings.NewReader("[]"), &out, testOptions))
	require.Empty(t, out.String())
}

// quirkCase is a quirk vector's upstream output with the keys we deliberately
// leave out removed, and the input transformed.
func quirkCase(t *testing.T, name string, drop ...string) (want, got map[string]any) {
	t.Helper()
	want = readObject(t, name+".expected.json")
	for _, k := range drop {
		delete(want, k)
	}
	return want, upstreamView(t, Transform(readObject(t, name+".input.json"), testOptions))
}

// TestDifferenceQk01TimestampMilliseconds: a millisecond timestamp is left out, not
// read as seconds into the year 52204.
func TestDifferenceQk01TimestampMilliseconds(t *testing.T) {
	t.Parallel()
	want, got := quirkCase(t, "qk01_timestamp_milliseconds", "originalTimestamp", "sentAt")
	require.Equal(t, want, got)
}

// TestDifferenceQk02TimestampNumericString: "2020" is a string, so it is left out,
// not read as 2020 seconds.
func TestDifferenceQk02TimestampNumericString(t *testing.T) {
	t.Parallel()
	want, got := quirkCase(t, "qk02_timestamp_short_numeric_string", "originalTimestamp", "sentAt")
	require.Equal(t, want, got)
}

// TestDifferenceQk03MetricPrototypeName: metric "constructor" is "Unknown Event"
// (upstream finds a JavaScript function and drops the event key).
func TestDifferenceQk03MetricPrototypeName(t *testing.T) {
	t.Parallel()
	want, got := quirkCase(t, "qk03_metric_prototype_name")
	want["event"] = UnknownEvent
	require.Equal(t, want, got)
	for _, metric := range []string{"constructor", "toString", "__proto__", "hasOwnProperty", "opened.length"} {
		require.Equal(t, UnknownEvent, eventName("email", metric), metric)
	}
}

// TestDifferenceQk04BodyString: a string body is not an object: an error line, where
// upstream copies the string into every mapped field.
func TestDifferenceQk04BodyString(t *testing.T) {
	t.Parallel()
	out := streamLines(t, readFile(t, "qk04_body_json_string.input.json"))
	require.Equal(t, []string{`{"error":"input: not a JSON object (got a string)"}`}, out)
}

// TestCompatQk05RecipientNotString: kept as upstream: a non-string recipient is
// copied as is into traits.email and anonymousId (values keep their JSON type).
func TestCompatQk05RecipientNotString(t *testing.T) {
	t.Parallel()
	want, got := quirkCase(t, "qk05_recipient_not_a_string")
	require.Equal(t, want, got)
	e := Transform(readObject(t, "qk05_recipient_not_a_string.input.json"), testOptions)
	anon, ok := e.AnonymousID()
	require.True(t, ok)
	require.JSONEq(t, `{"address":"x@example.com"}`, anon)
}

// TestCompatQk06CustomerIDWhitespace: kept as upstream: a customer_id of spaces is
// the userId verbatim, so no anonymousId; we store the event although rudder-server
// would trim the id and reject it.
func TestCompatQk06CustomerIDWhitespace(t *testing.T) {
	t.Parallel()
	want, got := quirkCase(t, "qk06_customer_id_whitespace")
	require.Equal(t, want, got)
}

// upstreamFailure transforms an err* vector's input and checks that upstream failed.
func upstreamFailure(t *testing.T, name string) map[string]any {
	t.Helper()
	failure := readObject(t, name+".expected-error.json")
	require.Equal(t, json.Number("500"), failure["statusCode"])
	return upstreamView(t, Transform(readObject(t, name+".input.json"), testOptions))
}

// wantEvent is the event every err* vector would give with no failure.
func wantEvent(id, userID, event string) map[string]any {
	return map[string]any{
		"context": map[string]any{
			"library":     map[string]any{"name": "unknown", "version": "unknown"},
			"integration": map[string]any{"name": "Customer.io"},
		},
		"integrations": map[string]any{"Customer.io": false},
		"type":         "track",
		"event":        event,
		"properties":   map[string]any{"eventId": id},
		"userId":       userID,
	}
}

// TestDifferenceErr01TimestampDateString: an ISO date string timestamp is left out;
// upstream fails with "Invalid time value".
func TestDifferenceErr01TimestampDateString(t *testing.T) {
	t.Parallel()
	got := upstreamFailure(t, "err01_timestamp_iso_string")
	require.Equal(t, wantEvent("01H0000000000000000000C001", "e1", "Email Opened"), got)
}

// TestDifferenceErr02TimestampOutOfRange: a timestamp beyond JavaScript's Date range
// is left out; upstream fails with "Invalid time value".
func TestDifferenceErr02TimestampOutOfRange(t *testing.T) {
	t.Parallel()
	got := upstreamFailure(t, "err02_timestamp_out_of_range")
	require.Equal(t, wantEvent("01H0000000000000000000C002", "e2", "Email Opened"), got)
}

// TestDifferenceErr03ObjectTypeNotString: a non-string object_type gives "Unknown
// Event"; upstream fails calling toLowerCase on it.
func TestDifferenceErr03ObjectTypeNotString(t *testing.T) {
	t.Parallel()
	got := upstreamFailure(t, "err03_object_type_not_string")
	require.Equal(t, wantEvent("01H0000000000000000000C003", "e3", UnknownEvent), got)
	e := Transform(readObject(t, "err03_object_type_not_string.input.json"), testOptions)
	_, ok := e.ObjectType()
	require.False(t, ok)
}

// TestDifferenceErr04BodyNull: a null body is an error line (upstream: HTTP 500).
func TestDifferenceErr04BodyNull(t *testing.T) {
	t.Parallel()
	out := streamLines(t, readFile(t, "err04_body_null.input.json"))
	require.Equal(t, []string{`{"error":"input: not a JSON object (got null)"}`}, out)
}

// TestDifferenceErr05MalformedJSON: a malformed body is an error line naming the line
// (upstream: HTTP 400).
func TestDifferenceErr05MalformedJSON(t *testing.T) {
	t.Parallel()
	out := streamLines(t, readFile(t, "err05_body_malformed_json.input.raw"))
	require.Len(t, out, 1)
	require.Contains(t, out[0], `"error":"line 1, column `)
	require.Contains(t, out[0], "invalid JSON")
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, file))
	require.NoError(t, err)
	return string(b)
}
