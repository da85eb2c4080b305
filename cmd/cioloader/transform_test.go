package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/rudder"
)

const (
	vectorDir  = "../../testdata/rudder"
	receivedAt = "2024-03-03T04:48:29Z"
)

// uuidV5 is the canonical form of an RFC 9562 version-5 UUID.
const uuidV5 = `^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`

// decodeLine parses one output line, numbers kept exact.
func decodeLine(t *testing.T, line string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var v map[string]any
	require.NoError(t, dec.Decode(&v), line)
	return v
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

func outputLines(t *testing.T, r result) []string {
	t.Helper()
	requireOK(t, r)
	require.Empty(t, r.stderr)
	require.True(t, strings.HasSuffix(r.stdout, "\n"), r.stdout)
	return strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
}

// TestTransformVectors runs every upstream and derived vector file (one JSON
// object each) through `cioloader transform FILE`: the event is upstream's
// plus a deterministic messageId and the given receivedAt.
func TestTransformVectors(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.input.json"))
	require.NoError(t, err)
	var n int
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".input.json")
		if !strings.HasPrefix(name, "up") && !strings.HasPrefix(name, "dv") || name == "dv40_body_json_array" {
			continue // dv40's [] is a list of no events (TestTransformArrayAndNDJSON)
		}
		n++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lines := outputLines(t, cli(t, nil, "", "transform", "--schema", "stitch_customerio", "--received-at", receivedAt, file))
			require.Len(t, lines, 1)
			got := decodeLine(t, lines[0])
			require.Equal(t, "2024-03-03T04:48:29.000Z", got["receivedAt"])
			id, _ := got["messageId"].(string)
			require.Regexp(t, uuidV5, id)
			if ev, ok := readJSON(t, file).(map[string]any)["event_id"]; ok {
				require.Equal(t, rudder.MessageID("stitch_customerio", eventIDText(ev)), id, "messageId = UUIDv5(schema/event_id)")
			}
			delete(got, "messageId")
			delete(got, "receivedAt")
			want := readJSON(t, filepath.Join(vectorDir, name+".expected.json")).(map[string]any)
			if named, ok := specNamedVectors[name]; ok {
				want["event"] = named // upstream says "Unknown Event" (README, deliberate differences)
			}
			require.Equal(t, want, got)

			// Deterministic: the same input gives the same bytes; the schema
			// changes the messageId only.
			again := outputLines(t, cli(t, nil, "", "transform", file, "--received-at", receivedAt, "--schema", "stitch_customerio"))
			require.Equal(t, lines, again)
			other := decodeLine(t, outputLines(t, cli(t, nil, "", "transform", "--schema", "other", "--received-at", receivedAt, file))[0])
			require.NotEqual(t, id, other["messageId"])
			delete(other, "messageId")
			delete(other, "receivedAt")
			require.Equal(t, any(got), any(other))
		})
	}
	require.Equal(t, 24+40, n)
}

// specNamedVectors are the vectors of pairs in Customer.io's spec that upstream leaves
// unnamed; everything but the name is upstream's output.
var specNamedVectors = map[string]string{
	"dv12_unknown_pair_in_app_clicked":               "In-App Message Link Clicked",
	"dv13_unknown_pair_customer_preferences_changed": "Customer Subscription Preferences Changed",
	"dv14_unknown_metric_email_undeliverable":        "Email Undeliverable",
}

func eventIDText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTransformMessageIDAndReceivedAt(t *testing.T) {
	t.Parallel()
	in := `{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"email","metric":"opened","timestamp":1613063089,"data":{"customer_id":"42"}}`
	got := decodeLine(t, outputLines(t, cli(t, nil, in, "transform", "--schema", "shop", "--received-at", "2026-01-02T15:04:05.123456Z"))[0])
	require.Equal(t, rudder.MessageID("shop", "01E4C4CT6YDC7Y5M7FE1GWWPQJ"), got["messageId"])
	require.Equal(t, "2026-01-02T15:04:05.123Z", got["receivedAt"])
	require.Equal(t, "Email Opened", got["event"])
	require.Equal(t, "42", got["userId"])

	// The default schema is "customerio"; without --received-at it is now.
	before := time.Now().UTC().Truncate(time.Millisecond)
	got = decodeLine(t, outputLines(t, cli(t, nil, in, "transform"))[0])
	after := time.Now().UTC()
	require.Equal(t, rudder.MessageID("customerio", "01E4C4CT6YDC7Y5M7FE1GWWPQJ"), got["messageId"])
	at, err := time.Parse(time.RFC3339Nano, got["receivedAt"].(string))
	require.NoError(t, err)
	require.False(t, at.Before(before) || at.After(after), "receivedAt %s is now", at)

	// An offset is normalised to UTC.
	got = decodeLine(t, outputLines(t, cli(t, nil, in, "transform", "--received-at", "2026-01-02T17:04:05+02:00"))[0])
	require.Equal(t, "2026-01-02T15:04:05.000Z", got["receivedAt"])
}

func TestTransformArrayAndNDJSON(t *testing.T) {
	t.Parallel()
	a := mustRead(t, filepath.Join(vectorDir, "dv01_email_opened_cio_docs_example.input.json"))
	b := mustRead(t, filepath.Join(vectorDir, "up06_email_clicked.input.json"))
	c := mustRead(t, filepath.Join(vectorDir, "up14_slack_sent.input.json"))
	single := func(in []byte) string {
		return outputLines(t, cli(t, nil, string(in), "transform", "--received-at", receivedAt))[0]
	}
	wantA, wantB, wantC := single(a), single(b), single(c)

	// An array file: one line per element, in order; a non-object element
	// gives an error line in its place and the rest still comes out (exit 0).
	arr := filepath.Join(t.TempDir(), "events.json")
	require.NoError(t, os.WriteFile(arr, []byte("[\n"+string(a)+",\n42,\n"+string(b)+",\nnull,\n"+string(c)+"\n]\n"), 0o600))
	lines := outputLines(t, cli(t, nil, "", "transform", arr, "--received-at", receivedAt))
	require.Equal(t, []string{
		wantA,
		`{"error":"array index 1: not a JSON object (got a number)"}`,
		wantB,
		`{"error":"array index 3: not a JSON object (got null)"}`,
		wantC,
	}, lines)
	for _, l := range lines {
		require.True(t, json.Valid([]byte(l)), l)
	}

	// NDJSON on stdin (compact objects, blank lines ignored), also as "-".
	compact := func(b []byte) string {
		var buf bytes.Buffer
		require.NoError(t, json.Compact(&buf, b))
		return buf.String()
	}
	nd := compact(a) + "\n\n" + compact(b) + "\n\"just a string\"\n[1]\n{broken\n" + compact(c) + "\n"
	want := []string{
		wantA, wantB,
		`{"error":"line 4: not a JSON object (got a string)"}`,
		`{"error":"line 5: not a JSON object (got an array)"}`,
		`{"error":"line 6, column 2: invalid JSON: invalid character 'b' looking for beginning of object key string"}`,
		wantC,
	}
	require.Equal(t, want, outputLines(t, cli(t, nil, nd, "transform", "--received-at", receivedAt)))
	require.Equal(t, want, outputLines(t, cli(t, nil, nd, "transform", "-", "--received-at", receivedAt)))

	// Empty input and [] give no lines.
	for _, in := range []string{"", "  \n", "[]"} {
		r := cli(t, nil, in, "transform")
		requireOK(t, r)
		require.Empty(t, r.stdout)
		require.Empty(t, r.stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
