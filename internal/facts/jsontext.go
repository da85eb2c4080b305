package facts

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Text is what Postgres's #>> gives for a decoded JSON value v (decoded with
// UseNumber): the string itself for a string, NULL (ok false) for null or a
// missing value, and jsonb's text output for anything else: numbers as numeric
// prints them (1e2 is "100"), booleans as true/false, objects and arrays as
// jsonb prints them (keys shorter first, then in byte order; ", " and ": ").
func Text(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	}
	var b strings.Builder
	writeJSONB(&b, v)
	return b.String(), true
}

func writeJSONB(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(Numeric(string(x)))
	case float64:
		b.WriteString(Numeric(strconv.FormatFloat(x, 'g', -1, 64)))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSONB(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// jsonb's key order: shorter keys first, equal lengths in byte order.
		slices.SortFunc(keys, func(a, c string) int {
			if len(a) != len(c) {
				return len(a) - len(c)
			}
			return strings.Compare(a, c)
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeString(b, k)
			b.WriteString(": ")
			writeJSONB(b, x[k])
		}
		b.WriteByte('}')
	}
}

// writeString quotes s as Postgres's escape_json does: \" \\ \b \f \n \r \t,
// other control characters as \u00xx, everything else as is.
func writeString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// Numeric is a JSON number literal as Postgres's numeric prints it: in plain
// notation, with as many decimals as the literal's scale (digits after the point
// less the exponent, at least 0), no sign on zero. A literal that is not a JSON
// number is returned unchanged.
func Numeric(lit string) string {
	neg, s := false, lit
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil {
			return lit
		}
		mant, exp = s[:i], e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" || strings.Trim(intPart+frac, "0123456789") != "" {
		return lit
	}
	// value = digits × 10^(exp − len(frac)); printed with scale decimals.
	digits := intPart + frac
	pointAt := len(intPart) + exp // position of the decimal point in digits
	scale := max(0, len(frac)-exp)
	var whole, decimals string
	switch {
	case pointAt <= 0:
		whole, decimals = "0", strings.Repeat("0", -pointAt)+digits
	case pointAt >= len(digits):
		whole, decimals = digits+strings.Repeat("0", pointAt-len(digits)), ""
	default:
		whole, decimals = digits[:pointAt], digits[pointAt:]
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	if len(decimals) > scale {
		decimals = decimals[:scale] // only zeros are cut: scale covers every significant digit
	} else {
		decimals += strings.Repeat("0", scale-len(decimals))
	}
	out := whole
	if scale > 0 {
		out += "." + decimals
	}
	if neg && strings.Trim(whole+decimals, "0") != "" {
		out = "-" + out
	}
	return out
}
