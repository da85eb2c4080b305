package stitch

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Postgres numeric's documented range: up to 131,072 digits before the
// decimal point and up to 16,383 after. A literal outside it makes the whole
// INSERT fail ("value overflows numeric format"), so it must never reach one.
const (
	numericMaxWeight = 131072
	numericMaxScale  = 16383
)

// ClassifyNumber returns the column type and Field.Value for a JSON number
// decoded with UseNumber (SPEC 5, types follow the JSON value):
//
//   - a literal without '.', 'e' or 'E' that fits int64 → BigInt, int64;
//   - an integral literal outside int64 → Numeric, the literal (exact);
//   - any other number → Double, float64. Values below the smallest double
//     round to 0 or a subnormal, as any double rounds;
//   - a number that overflows a double to ±Inf (1e400) → Numeric, the
//     literal: Postgres numeric holds it exactly where double precision can't
//     hold it at all, and Stitch's alternative is to reject it.
//
// It returns the zero ColType (and nil) when no Postgres type can hold the
// value: a literal beyond numeric's range (over 131,072 integer digits or
// 16,383 fraction digits), or text that is not a number. Flatten reports
// those as a Problem.
func ClassifyNumber(n json.Number) (ColType, any) {
	s := string(n)
	integral := !strings.ContainsAny(s, ".eE")
	if integral {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return BigInt, v
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err == nil && !integral:
		return Double, f
	case (integral || math.IsInf(f, 0)) && isNumberLiteral(s) && numericFits(s):
		return Numeric, s
	}
	return 0, nil
}

// numericFits reports whether Postgres numeric accepts the JSON number
// literal s: its integer digits (after applying the exponent) and its
// fraction digits must be within numeric's range.
func numericFits(s string) bool {
	s = strings.TrimPrefix(s, "-")
	mant, exp := s, int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		var err error
		if exp, err = strconv.ParseInt(strings.TrimPrefix(s[i+1:], "+"), 10, 32); err != nil {
			return false
		}
		mant = s[:i]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := int64(len(intPart)) + exp // position of the decimal point in digits
	first := int64(len(digits) - len(strings.TrimLeft(digits, "0")))
	weight := point - first // significant digits before the point
	scale := int64(len(digits)) - point
	return weight <= numericMaxWeight && scale <= numericMaxScale
}

// isNumberLiteral reports whether s has JSON number syntax, so that text which
// reached a json.Number some other way is never sent to a numeric column.
func isNumberLiteral(s string) bool {
	return json.Valid([]byte(s)) && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9')
}
