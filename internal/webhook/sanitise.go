package webhook

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
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
// turned into U+FFFD by encoding/json. Keys are visited in order so that when
// two keys become one ("a\u0000" and "a\ufffd"), the same one wins every time.
func sanitiseMap(m map[string]any) (map[string]any, int) {
	n := 0
	out := make(map[string]any, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		k2, kn := sanitiseString(k)
		v2, vn := sanitiseValue(m[k])
		if _, taken := out[k2]; !taken {
			out[k2] = v2
		}
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

// countLoneSurrogates counts \uD800–\uDFFF escapes that are not part of a
// valid pair (encoding/json turns each into U+FFFD). Escaped backslashes are
// skipped, so the text \\uD800 is not counted.
func countLoneSurrogates(raw []byte) int {
	n := 0
	pendingHigh := false
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			if pendingHigh { // a high surrogate must be followed at once by a low one
				n++
				pendingHigh = false
			}
			continue
		}
		if raw[i+1] != 'u' || i+6 > len(raw) {
			if pendingHigh {
				n++
				pendingHigh = false
			}
			i++ // an escaped character, such as \\ or \"
			continue
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		i += 5
		switch {
		case err != nil:
		case v >= 0xD800 && v < 0xDC00:
			if pendingHigh {
				n++
			}
			pendingHigh = true
			continue
		case v >= 0xDC00 && v < 0xE000:
			if !pendingHigh {
				n++
			}
			pendingHigh = false
			continue
		}
		if pendingHigh {
			n++
			pendingHigh = false
		}
	}
	if pendingHigh {
		n++
	}
	return n
}
