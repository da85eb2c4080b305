package warehouse

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"time"
)

// Type is a warehouse column type as RudderStack names it.
type Type string

// The types RudderStack gives a track's values for Postgres (json only through
// jsonPaths, which the default settings do not use).
const (
	String   Type = "string"
	Int      Type = "int"
	Float    Type = "float"
	Boolean  Type = "boolean"
	Datetime Type = "datetime"
	JSON     Type = "json"
)

// SQL is the Postgres type RudderStack's loader creates for t.
func (t Type) SQL() string {
	switch t {
	case Int:
		return "bigint"
	case Float:
		return "numeric"
	case Boolean:
		return "boolean"
	case Datetime:
		return "timestamptz"
	case JSON:
		return "jsonb"
	}
	return "text"
}

// ParseType is the Type named s; false for an unknown name.
func ParseType(s string) (Type, bool) {
	switch t := Type(s); t {
	case String, Int, Float, Boolean, Datetime, JSON:
		return t, true
	}
	return "", false
}

// TypeOf is the type RudderStack gives a decoded JSON value (json.Number or
// float64 for numbers): a whole number is int (RudderStack decodes numbers as
// float64, so 1.0 and 1e3 are int too), another number float, a string that is a
// valid timestamp datetime, anything else (strings, arrays) string.
func TypeOf(v any) Type {
	switch t := v.(type) {
	case bool:
		return Boolean
	case float64:
		return floatType(t)
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return Float // beyond float64: RudderStack would not read it either
		}
		return floatType(f)
	case string:
		if ValidTimestamp(t) {
			return Datetime
		}
	}
	return String
}

func floatType(f float64) Type {
	if !math.IsInf(f, 0) && f == math.Trunc(f) {
		return Int
	}
	return Float
}

// timestampRE is the shape RudderStack accepts as a timestamp before parsing it.
var timestampRE = regexp.MustCompile(`^([+-]?\d{4})((-)((0[1-9]|1[0-2])(-([12]\d|0[1-9]|3[01])))([T\s]((([01]\d|2[0-3])((:)[0-5]\d))(:\d+)?)?(:[0-5]\d([.]\d+)?)?([zZ]|([+-])([01]\d|2[0-3]):?([0-5]\d)?)?)?)$`)

// maxTimestampLen is the length of the longest timestamp RudderStack accepts
// ("2012-08-03 18:31:59.257000000 +00:00 UTC").
const maxTimestampLen = 40

// ValidTimestamp reports whether RudderStack types the string s as datetime: it
// has the shape of an ISO-8601 date or date-time, parses, and lies in the years
// 0001–9999.
func ValidTimestamp(s string) bool {
	if len(s) > maxTimestampLen || !maybeTimestamp(s) || !timestampRE.MatchString(s) {
		return false
	}
	t, ok := ParseTimestamp(s)
	return ok && t.Year() >= 1 && t.Year() <= 9999
}

// ParseTimestamp reads a string of ValidTimestamp's shape as an instant (UTC when
// it names no zone; a day past the month's end rolls over, as JavaScript does).
func ParseTimestamp(s string) (time.Time, bool) {
	m := timestampRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	year, _ := strconv.Atoi(m[1])
	month, _ := strconv.Atoi(m[5])
	day, _ := strconv.Atoi(m[7])
	var hour, minute, sec, nsec int
	if m[11] != "" {
		hour, _ = strconv.Atoi(m[11])
		minute, _ = strconv.Atoi(m[12][1:])
	}
	if m[14] != "" {
		if sec, _ = strconv.Atoi(m[14][1:]); sec > 59 {
			return time.Time{}, false
		}
	}
	if m[15] != "" {
		sec, _ = strconv.Atoi(m[15][1:3])
		if m[16] != "" {
			frac := (m[16][1:] + "000000000")[:9]
			nsec, _ = strconv.Atoi(frac)
		}
	}
	loc := time.UTC
	if z := m[17]; z != "" && z != "z" && z != "Z" {
		h, _ := strconv.Atoi(m[19])
		mm := 0
		if m[20] != "" {
			mm, _ = strconv.Atoi(m[20])
		}
		off := h*3600 + mm*60
		if m[18] == "-" {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc).UTC(), true
}

// maybeTimestamp is a cheap first look: a timestamp starts with four digits (after
// an optional sign) and a "-". Most strings fail it without the regular expression.
func maybeTimestamp(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return len(s) >= 5 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) && s[4] == '-'
}
