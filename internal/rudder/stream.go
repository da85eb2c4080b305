package rudder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// TransformStream reads one JSON object, a JSON array of objects, or NDJSON (one JSON
// value per line, blank lines ignored) from r and writes one JSON line per input
// element to w: the event, or {"error":"..."} for an element that is not an object
// (null: err04; a string: qk04) and for a line that is not JSON (err05), naming the
// line. It returns an error only when reading or writing fails, or when the input as
// a whole is unreadable: neither one JSON value nor NDJSON, such as a pretty-printed
// document with a syntax error (the error gives its line and column).
//
// The whole input is read into memory first: the input is one JSON value or lines,
// and which of the two is known only once the first value is complete.
func TransformStream(r io.Reader, w io.Writer, opt Options) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	out := &lineWriter{w: bufio.NewWriter(w), opt: opt}
	if err := transformInput(data, out); err != nil {
		return err
	}
	if out.err != nil {
		return fmt.Errorf("write output: %w", out.err)
	}
	if err := out.w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// transformInput tells the three input forms apart. Input that is one JSON value is
// one object or an array of elements. Otherwise it is NDJSON when it has only one
// non-blank line (so a lone broken line gets its error line, like any bad NDJSON
// line) or when some line is a JSON value by itself. Anything else, typically a
// pretty-printed document with a syntax error, is unreadable as a whole.
func transformInput(data []byte, out *lineWriter) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	v, err := decode(data)
	if err == nil {
		if elems, ok := v.([]any); ok {
			for i := 0; i < len(elems) && out.err == nil; i++ {
				out.element(elems[i], fmt.Sprintf("array index %d", i))
			}
			return nil
		}
		out.element(v, "input")
		return nil
	}
	lines := nonBlankLines(data)
	if len(lines) > 1 && !slices.ContainsFunc(lines, isJSON) {
		return fmt.Errorf("input is neither JSON nor NDJSON: %s", describe(err, data, 1))
	}
	for i := 0; i < len(lines) && out.err == nil; i++ {
		v, err := decode(lines[i].text)
		if err != nil {
			out.errorf("%s", describe(err, lines[i].text, lines[i].number))
			continue
		}
		out.element(v, fmt.Sprintf("line %d", lines[i].number))
	}
	return nil
}

func isJSON(l line) bool { return json.Valid(l.text) }

// decode parses data as exactly one JSON value, numbers as json.Number.
func decode(data []byte) (any, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil { // reports syntax errors with an offset
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// describe words a JSON error with its line and column; text starts at line firstLine.
func describe(err error, text []byte, firstLine int) string {
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return fmt.Sprintf("line %d: invalid JSON: %v", firstLine, err)
	}
	at := min(max(int(syn.Offset)-1, 0), len(text)) // the offending byte
	if strings.Contains(syn.Error(), "unexpected end") {
		at = len(bytes.TrimRight(text, " \t\r\n")) // just after the last character
	}
	before := text[:at]
	line := firstLine + bytes.Count(before, []byte("\n"))
	col := at - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("line %d, column %d: invalid JSON: %v", line, col, err)
}

// line is one non-blank input line and its 1-based number.
type line struct {
	number int
	text   []byte
}

func nonBlankLines(data []byte) []line {
	var lines []line
	for i, text := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(text)) > 0 {
			lines = append(lines, line{i + 1, text})
		}
	}
	return lines
}

// lineWriter writes one JSON line per element and keeps the first write error.
type lineWriter struct {
	w   *bufio.Writer
	opt Options
	err error
}

// element writes the event for an object, or an error line naming where the element
// was (where) and what it is instead.
func (lw *lineWriter) element(v any, where string) {
	obj, ok := v.(map[string]any)
	if !ok {
		lw.errorf("%s: not a JSON object (got %s)", where, kindOf(v))
		return
	}
	b, err := Transform(obj, lw.opt).MarshalJSON()
	if err != nil {
		lw.errorf("%s: %v", where, err)
		return
	}
	lw.write(b)
}

func (lw *lineWriter) errorf(format string, args ...any) {
	b, err := marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	if err != nil {
		lw.err = err
		return
	}
	lw.write(b)
}

func (lw *lineWriter) write(b []byte) {
	if lw.err != nil {
		return
	}
	if _, err := lw.w.Write(append(b, '\n')); err != nil {
		lw.err = err
	}
}

// kindOf names a decoded JSON value's type for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}
