package webhook

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Postgres numeric (and so jsonb) holds up to 131072 digits before the decimal
// point and 16383 after it; a JSON number beyond that cannot be stored at all.
const (
	maxIntDigits  = 131072
	maxFracDigits = 16383
)

// fitsNumeric reports whether the JSON number literal n fits Postgres numeric.
func fitsNumeric(n string) bool {
	mant, expText, hasExp := strings.Cut(strings.ReplaceAll(n, "E", "e"), "e")
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expText)
		if err != nil || e > 1<<20 || e < -(1<<20) {
			return false
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(strings.TrimLeft(mant, "-"), ".")
	intPart = strings.TrimLeft(intPart, "0")
	// The scale is checked even for zero: Postgres refuses 0e-16384.
	if len(frac)-exp > maxFracDigits {
		return false
	}
	if intPart == "" && strings.Trim(frac, "0") == "" {
		return true
	}
	return len(intPart)+exp <= maxIntDigits
}

// unstorableNumber returns the first number in v that Postgres cannot store.
func unstorableNumber(v any) (string, bool) {
	switch t := v.(type) {
	case json.Number:
		if !fitsNumeric(string(t)) {
			return string(t), true
		}
	case map[string]any:
		for _, e := range t {
			if n, bad := unstorableNumber(e); bad {
				return n, true
			}
		}
	case []any:
		for _, e := range t {
			if n, bad := unstorableNumber(e); bad {
				return n, true
			}
		}
	}
	return "", false
}
