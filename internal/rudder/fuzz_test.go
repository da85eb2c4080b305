package rudder

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addVectorSeeds seeds f with every vector input, so fuzzing starts from real bodies.
func addVectorSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.input.*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no vector inputs in %s: %v", vectorDir, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzTransform: for any JSON object, Transform does not panic, the event encodes to
// valid JSON the same way twice, and its columns agree with that JSON.
func FuzzTransform(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		t.Parallel()
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var obj map[string]any
		if dec.Decode(&obj) != nil || obj == nil {
			return
		}
		e := Transform(obj, testOptions)
		b, err := e.MarshalJSON()
		if err != nil || !json.Valid(b) {
			t.Fatalf("event does not encode: %v: %s", err, b)
		}
		again, _ := Transform(obj, testOptions).MarshalJSON()
		if !bytes.Equal(b, again) {
			t.Fatalf("not deterministic:\n%s\n%s", b, again)
		}
		checkColumns(t, e, b)
	})
}

// checkColumns checks the accessors against the event's JSON b.
func checkColumns(t *testing.T, e *Event, b []byte) {
	var w struct {
		Event             string
		MessageID         string
		OriginalTimestamp string
		UserID            json.RawMessage
	}
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if w.Event != e.Name() || w.Event == "" || w.MessageID != e.MessageID() || !uuidV5.MatchString(w.MessageID) {
		t.Fatalf("name %q or messageId %q disagree with %s", e.Name(), e.MessageID(), b)
	}
	ts, ok := e.OriginalTimestamp()
	if ok != (w.OriginalTimestamp != "") || (ok && ts.Format(isoMillis) != w.OriginalTimestamp) {
		t.Fatalf("timestamp %v %v disagrees with %s", ts, ok, b)
	}
	userID, ok := e.UserID()
	if ok != (w.UserID != nil) {
		t.Fatalf("userId %q %v disagrees with %s", userID, ok, b)
	}
	if p := e.PropertiesJSON(); p != nil && !json.Valid(p) || !json.Valid(e.ContextJSON()) {
		t.Fatalf("properties or context do not encode: %s", b)
	}
}

// FuzzTransformStream: for any input, TransformStream either refuses it as a whole
// with nothing written, or writes only lines that are JSON objects, each an event or
// an error.
func FuzzTransformStream(f *testing.F) {
	addVectorSeeds(f)
	f.Add([]byte(opened + "\n" + clicked + "\n"))
	f.Add([]byte("[" + opened + ",null]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		t.Parallel()
		var out bytes.Buffer
		if err := TransformStream(bytes.NewReader(data), &out, testOptions); err != nil {
			if out.Len() != 0 {
				t.Fatalf("refused input %q but wrote %q", data, out.Bytes())
			}
			return
		}
		if out.Len() == 0 {
			return
		}
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			var v struct {
				Type  string
				Error string
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil || (v.Type != "track") == (v.Error == "") {
				t.Fatalf("bad output line %q for input %q", line, data)
			}
		}
	})
}
