package webhook

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// needsSanitising reports whether raw may hold text Postgres refuses: invalid
// UTF-8, an escaped NUL or an escaped surrogate (lone ones are invalid). Clean
// bodies, the common case, are stored byte for byte without re-encoding.
func needsSanitising(raw []byte) bool {
	if !utf8.Valid(raw) {
		return true
	}
	for i := bytes.Index(raw, []byte(`\u`)); i >= 0; {
		esc := raw[i:]
		if len(esc) >= 6 {
			h := strings.ToLower(string(esc[2:6]))
			if h == "0000" || (h[0] == 'd' && h[1] >= '8') {
				return true
			}
		}
		next := bytes.Index(raw[i+2:], []byte(`\u`))
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}

// sanitiseMap replaces NUL with U+FFFD in every key and string value, returning
// the number of replacements. Invalid UTF-8 and lone surrogates were already
// turned into U+FFFD by encoding/json.
func sanitiseMap(m map[string]any) (map[string]any, int) {
	n := 0
	out := make(map[string]any, len(m))
	for k, v := range m {
		k2, kn := sanitiseString(k)
		v2, vn := sanitiseValue(v)
		out[k2] = v2
		n += kn + vn
	}
	return out, n
}

func sanitiseValue(v any) (any, int) {
	switch t := v.(type) {
	case string:
		return sanitiseString(t)
	case map[string]any:
		return sanitiseMap(t)
	case []any:
		n := 0
		for i, e := range t {
			var en int
			t[i], en = sanitiseValue(e)
			n += en
		}
		return t, n
	}
	return v, 0
}

func sanitiseString(s string) (string, int) {
	n := strings.Count(s, "\x00")
	if n == 0 {
		return s, 0
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD"), n
}

// countInvalidUTF8 counts the invalid byte sequences encoding/json replaced.
func countInvalidUTF8(raw []byte) int {
	n := 0
	for len(raw) > 0 {
		r, size := utf8.DecodeRune(raw)
		if r == utf8.RuneError && size == 1 {
			n++
		}
		raw = raw[size:]
	}
	return n
}
