package rudder

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// streamLines runs TransformStream on input and returns its output lines, each
// checked to be one JSON object.
func streamLines(t *testing.T, input string) []string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, TransformStream(strings.NewReader(input), &out, testOptions))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if out.Len() == 0 {
		return nil
	}
	for _, l := range lines {
		var obj map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &obj), l)
	}
	return lines
}

// eventNameOf returns a stream line's event name, or its error.
func eventNameOf(t *testing.T, line string) string {
	t.Helper()
	var v struct{ Event, Error string }
	require.NoError(t, json.Unmarshal([]byte(line), &v))
	if v.Error != "" {
		return "error: " + v.Error
	}
	return v.Event
}

func namesOf(t *testing.T, lines []string) []string {
	t.Helper()
	if lines == nil {
		return nil
	}
	names := make([]string, len(lines))
	for i, l := range lines {
		names[i] = eventNameOf(t, l)
	}
	return names
}

const (
	opened  = `{"event_id":"a","object_type":"email","metric":"opened"}`
	clicked = `{"event_id":"b","object_type":"push","metric":"clicked"}`
)

func TestTransformStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"object", opened, []string{"Email Opened"}},
		{"pretty object", "{\n  \"object_type\": \"sms\",\n  \"metric\": \"sent\"\n}\n", []string{"SMS Sent"}},
		{"array", "[" + opened + ",\n" + clicked + "]", []string{"Email Opened", "Push Link Clicked"}},
		{"empty input", " \n\t", nil},
		{"ndjson", opened + "\n\n" + clicked + "\r\n", []string{"Email Opened", "Push Link Clicked"}},
		{"array non-object element", "[" + opened + ", null, 3, [], \"x\", true]", []string{
			"Email Opened",
			"error: array index 1: not a JSON object (got null)",
			"error: array index 2: not a JSON object (got a number)",
			"error: array index 3: not a JSON object (got an array)",
			"error: array index 4: not a JSON object (got a string)",
			"error: array index 5: not a JSON object (got a boolean)",
		}},
		{"ndjson non-object line", opened + "\n[1]\n" + clicked, []string{
			"Email Opened", "error: line 2: not a JSON object (got an array)", "Push Link Clicked",
		}},
		{"ndjson bad line", opened + "\n\n{\"event_id\": \n" + clicked, []string{
			"Email Opened",
			"error: line 3, column 13: invalid JSON: unexpected end of JSON input",
			"Push Link Clicked",
		}},
		{"ndjson bad first line", opened + " x\n" + clicked, []string{
			"error: line 1, column 58: invalid JSON: invalid character 'x' after top-level value",
			"Push Link Clicked",
		}},
		{"single bad line", `{"a":}`, []string{
			"error: line 1, column 6: invalid JSON: invalid character '}' looking for beginning of value",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, namesOf(t, streamLines(t, tt.input)))
		})
	}
}

// TestTransformStreamUnreadable: a multi-line input that is neither one JSON value nor
// NDJSON is refused as a whole, with the syntax error's line and column.
func TestTransformStreamUnreadable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	input := "{\n  \"event_id\": \"a\",\n  \"metric\": }\n"
	err := TransformStream(strings.NewReader(input), &out, testOptions)
	require.EqualError(t, err, "input is neither JSON nor NDJSON: line 3, column 13: "+
		"invalid JSON: invalid character '}' looking for beginning of value")
	require.Empty(t, out.String())
}

// TestTransformStreamEvent: the stream prints exactly what MarshalJSON gives.
func TestTransformStreamEvent(t *testing.T) {
	t.Parallel()
	lines := streamLines(t, readFile(t, "dv01_email_opened_cio_docs_example.input.json"))
	want, err := Transform(readObject(t, "dv01_email_opened_cio_docs_example.input.json"), testOptions).MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, []string{string(want)}, lines)
}

type failingIO struct{}

var errBroken = errors.New("broken")

func (failingIO) Read([]byte) (int, error)  { return 0, errBroken }
func (failingIO) Write([]byte) (int, error) { return 0, errBroken }

func TestTransformStreamIOErrors(t *testing.T) {
	t.Parallel()
	t.Run("read", func(t *testing.T) {
		t.Parallel()
		err := TransformStream(failingIO{}, &bytes.Buffer{}, testOptions)
		require.ErrorIs(t, err, errBroken)
	})
	t.Run("write", func(t *testing.T) {
		t.Parallel()
		input := strings.Repeat(opened+"\n", 10000) // more than bufio's buffer
		err := TransformStream(strings.NewReader(input), failingIO{}, testOptions)
		require.ErrorIs(t, err, errBroken)
	})
}
