package rudder

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// lookup reads a dotted source path the way the transformer's get-value 3.0.1 does, so
// that odd objects map as upstream maps them: a literal key holding the whole path
// ("data.customer_id" at the top level) wins, and at each level a segment that is not a
// key may be joined with the next ones ("identifiers.id"). An array or a primitive
// on the way ends the lookup: the mapping's names are never array indexes. It returns
// nil for a missing value and for JSON null alike; the mapping skips both.
func lookup(obj map[string]any, path string) any {
	if v, ok := obj[path]; ok {
		return v
	}
	segs := strings.Split(path, ".")
	var target any = obj
	for i := 0; i < len(segs); i++ {
		m, ok := target.(map[string]any)
		if !ok {
			return nil
		}
		key := segs[i]
		v, found := m[key]
		for n := i + 1; !found && n < len(segs); n++ {
			key += "." + segs[n]
			if v, found = m[key]; found {
				i = n
			}
		}
		if !found {
			return nil
		}
		target = v
	}
	return target
}

// clean copies a decoded JSON value so the event shares nothing with the caller's
// object and always encodes: json.Number keeps its exact literal, maps and slices are
// copied, and anything encoding/json could not encode (NaN, a malformed json.Number)
// becomes null. Other Go values are kept in their encoded form.
func clean(v any) any {
	switch t := v.(type) {
	case nil, bool, string:
		return t
	case json.Number:
		if !validNumber(string(t)) {
			return nil
		}
		return t
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = clean(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = clean(e)
		}
		return out
	}
	b, err := marshal(v)
	if err != nil {
		return nil
	}
	return json.RawMessage(b)
}

// validNumber reports whether s is a JSON number literal.
func validNumber(s string) bool {
	if s == "" || !json.Valid([]byte(s)) {
		return false
	}
	first, last := s[0], s[len(s)-1]
	return (first == '-' || isDigit(first)) && isDigit(last)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// truthy is JavaScript's truthiness for a decoded JSON value: the transformer copies
// the email into anonymousId only when it is truthy.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		return t != ""
	case json.Number:
		f := numberValue(string(t))
		return f != 0 && !math.IsNaN(f)
	case float64:
		return t != 0 && !math.IsNaN(t)
	}
	return true // objects and arrays, even empty ones
}

// numberValue is the float64 JavaScript would read from a JSON number literal:
// overflow gives ±Inf and underflow 0, as JSON.parse does; NaN when s is no number.
func numberValue(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return math.NaN()
	}
	return f
}

// text is the value for a text column: a string as is, anything else as its JSON text.
func text(v any) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "", false
	case string:
		return t, true
	}
	b, err := marshal(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// marshal encodes v without escaping <, > and & (the output is data, not HTML).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
