// Package webhook decodes a Customer.io reporting-webhook request body into
// events: one object or an array of objects, numbers kept exact, text made
// safe for Postgres, each object checked for a usable event_id.
package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxEventIDLen is the longest accepted event_id, in characters (Stitch's key limit is < 256).
const MaxEventIDLen = 255

// maxRecordBytes bounds the copy of a rejected object kept in _sdc_rejected.record.
const maxRecordBytes = 1 << 20

// Event is one accepted Customer.io object.
type Event struct {
	ID   string         // the event_id: a string as is, a number as its JSON literal
	Raw  []byte         // the object as JSON that Postgres jsonb accepts (sanitised when needed)
	Body map[string]any // decoded with UseNumber; strings sanitised
}

// Rejection is a well-formed object that is not a usable event.
type Rejection struct {
	Reason string
	Record string // the object's JSON, truncated
}

// Batch is what one request body holds.
type Batch struct {
	Events   []Event
	Rejected []Rejection
	Replaced int // characters replaced by U+FFFD (NUL, invalid UTF-8, lone surrogates)
}

// InvalidError says why a body was refused as a whole (HTTP 400).
type InvalidError struct {
	Msg           string
	TooManyEvents bool // the body is an array of more than maxEvents elements
}

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Decode parses body. It returns an *InvalidError when the body is not JSON,
// not an object or array, has a non-object element, or has more than
// maxEvents elements; nothing from such a body is to be written.
func Decode(body []byte, maxEvents int) (Batch, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return Batch{}, invalid("request body is empty: send a JSON object or an array of objects")
	}
	switch trimmed[0] {
	case '{':
		var b Batch
		if err := b.add(trimmed); err != nil {
			return Batch{}, err
		}
		return b, nil
	case '[':
		return decodeArray(trimmed, maxEvents)
	}
	if !json.Valid(trimmed) {
		return Batch{}, invalid("request body is not valid JSON")
	}
	return Batch{}, invalid("request body must be a JSON object or an array of objects")
}

// decodeArray decodes the elements one by one with a single decoder over
// the body; each element's JSON is the slice of body it spans (no copy).
func decodeArray(body []byte, maxEvents int) (Batch, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the '['
		return Batch{}, invalid("request body is not valid JSON: %s", jsonProblem(err))
	}
	var b Batch
	for i := 0; dec.More(); i++ {
		if i == maxEvents {
			return Batch{}, &InvalidError{Msg: fmt.Sprintf("request body has more than %d events; at most %d are accepted per request", maxEvents, maxEvents), TooManyEvents: true}
		}
		start := dec.InputOffset()
		var v any
		if err := dec.Decode(&v); err != nil {
			return Batch{}, invalid("request body is not valid JSON: %s", jsonProblem(err))
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return Batch{}, invalid("array element %d is not a JSON object", i)
		}
		// The element starts after the separator and white space that precede it.
		raw := bytes.TrimLeft(body[start:dec.InputOffset()], ", \t\r\n")
		if err := b.file(raw, obj); err != nil {
			return Batch{}, err
		}
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return Batch{}, invalid("request body is not valid JSON: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Batch{}, invalid("request body is not valid JSON: unexpected data after the top-level value")
	}
	return b, nil
}

// add decodes one object and files it as an event or a rejection.
func (b *Batch) add(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return invalid("request body is not valid JSON: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("request body is not valid JSON: unexpected data after the top-level value")
	}
	return b.file(raw, obj)
}

// file makes safe for Postgres and files a decoded object, raw being its JSON,
// as an event or a rejection.
func (b *Batch) file(raw []byte, obj map[string]any) error {
	dirty := needsSanitising(raw)
	if dirty {
		var n int
		obj, n = sanitiseMap(obj)
		b.Replaced += n + countInvalidUTF8(raw) + countLoneSurrogates(raw)
		var err error
		if raw, err = json.Marshal(obj); err != nil {
			return fmt.Errorf("webhook: re-encode sanitised event: %w", err)
		}
	}
	id, reason := eventID(obj)
	if n, bad := unstorableNumber(obj); bad && reason == "" {
		if len(n) > 40 {
			n = n[:40] + "…"
		}
		reason = fmt.Sprintf("number %s is outside the range Postgres can store", n)
	}
	if reason != "" {
		b.Rejected = append(b.Rejected, Rejection{Reason: reason, Record: truncate(raw)})
		return nil
	}
	b.Events = append(b.Events, Event{ID: id, Raw: raw, Body: obj})
	return nil
}

// eventID returns the usable id, or why there is none.
func eventID(obj map[string]any) (string, string) {
	v, ok := obj["event_id"]
	if !ok {
		return "", "Record is missing key property event_id"
	}
	var id string
	switch t := v.(type) {
	case nil:
		return "", "event_id is null"
	case string:
		id = t
	case json.Number:
		id = t.String()
	default:
		return "", fmt.Sprintf("event_id must be a string or a number, not %s", kind(v))
	}
	switch {
	case strings.TrimSpace(id) == "":
		return "", "event_id is empty"
	case utf8.RuneCountInString(id) > MaxEventIDLen:
		return "", fmt.Sprintf("event_id is longer than %d characters", MaxEventIDLen)
	}
	return id, ""
}

func kind(v any) string {
	switch v.(type) {
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func truncate(raw []byte) string {
	if len(raw) <= maxRecordBytes {
		return string(raw)
	}
	cut := maxRecordBytes
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	return string(raw[:cut])
}

// jsonProblem turns a decoder error into a short message without Go type names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("unexpected %s at byte %d", typ.Value, typ.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return err.Error()
}
