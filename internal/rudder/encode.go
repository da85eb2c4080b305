package rudder

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends v as JSON, byte for byte what encoding/json writes with
// SetEscapeHTML(false) (map keys sorted, U+2028/U+2029 and invalid UTF-8
// escaped), without reflection: the event is encoded for every stored row.
// It handles what Transform builds; anything else falls back to encoding/json.
func appendJSON(b []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, t)
	case string:
		return appendString(b, t)
	case json.Number:
		if t == "" {
			return append(b, '0')
		}
		return append(b, t...)
	case json.RawMessage:
		return append(b, t...)
	case object:
		return t.appendTo(b)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, t[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	}
	enc, err := marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, enc...)
}

func (o object) appendTo(b []byte) []byte {
	b = append(b, '{')
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.key)
		b = append(b, ':')
		b = appendJSON(b, m.value)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does without HTML escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendWire encodes the event in the transformer's key order, then the keys
// rudder-server's gateway adds.
func (w *wire) appendTo(b []byte) []byte {
	b = append(b, `{"context":`...)
	b = w.Context.appendTo(b)
	b = append(b, `,"integrations":{"Customer.io":false},"type":`...)
	b = appendString(b, w.Type)
	b = append(b, `,"event":`...)
	b = appendString(b, w.Event)
	if len(w.Properties) > 0 {
		b = append(b, `,"properties":`...)
		b = w.Properties.appendTo(b)
	}
	if w.UserID != nil {
		b = append(b, `,"userId":`...)
		b = appendJSON(b, w.UserID)
	}
	if w.OriginalTimestamp != "" {
		b = append(b, `,"originalTimestamp":`...)
		b = appendString(b, w.OriginalTimestamp)
	}
	if w.SentAt != "" {
		b = append(b, `,"sentAt":`...)
		b = appendString(b, w.SentAt)
	}
	if w.AnonymousID != nil {
		b = append(b, `,"anonymousId":`...)
		b = appendJSON(b, w.AnonymousID)
	}
	b = append(b, `,"messageId":`...)
	b = appendString(b, w.MessageID)
	if w.ReceivedAt != "" {
		b = append(b, `,"receivedAt":`...)
		b = appendString(b, w.ReceivedAt)
	}
	return append(b, '}')
}

func (c *eventContext) appendTo(b []byte) []byte {
	b = append(b, `{"library":{"name":`...)
	b = appendString(b, c.Library.Name)
	b = append(b, `,"version":`...)
	b = appendString(b, c.Library.Version)
	b = append(b, `},"integration":{"name":`...)
	b = appendString(b, c.Integration.Name)
	b = append(b, '}')
	return c.appendVarying(b, true)
}

// appendVarying appends the members after library and integration (traits, the
// import mark) and closes the object; more says members came before them.
func (c *eventContext) appendVarying(b []byte, more bool) []byte {
	sep := func() {
		if more {
			b = append(b, ',')
		}
		more = true
	}
	if len(c.Traits) > 0 {
		sep()
		b = append(b, `"traits":`...)
		b = c.Traits.appendTo(b)
	}
	if c.Import != nil {
		sep()
		b = append(b, `"cioloader_import":{"source":`...)
		b = appendString(b, c.Import.Source)
		b = append(b, '}')
	}
	return append(b, '}')
}
