package stitch

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestColType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		t           ColType
		sql, suffix string
	}{
		{Text, "text", "st"},
		{BigInt, "bigint", "bi"},
		{Numeric, "numeric", "de"},
		{Double, "double precision", "do"},
		{Boolean, "boolean", "bo"},
		{0, "", ""},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.sql, tc.t.SQL())
			require.Equal(t, tc.suffix, tc.t.Suffix())
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	existing := map[string]ColType{"age": BigInt, "age__do": Double, "name": Text, "flag": Boolean}
	for _, tc := range []struct {
		name   string
		base   string
		typ    ColType
		column string
		isNew  bool
	}{
		{"absent_is_new_bare", "city", Text, "city", true},
		{"same_type_bare", "age", BigInt, "age", false},
		{"split_exists", "age", Double, "age__do", false},
		{"split_new", "age", Text, "age__st", true},
		{"split_numeric", "age", Numeric, "age__de", true},
		{"split_boolean", "name", Boolean, "name__bo", true},
		{"split_bigint", "flag", BigInt, "flag__bi", true},
		{"absent_other_type", "zip", Numeric, "zip", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col, isNew := Resolve(existing, tc.base, tc.typ)
			require.Equal(t, tc.column, col)
			require.Equal(t, tc.isNew, isNew)
		})
	}
	t.Run("nil_map", func(t *testing.T) {
		t.Parallel()
		col, isNew := Resolve(nil, "x", Text)
		require.Equal(t, "x", col)
		require.True(t, isNew)
	})
}

func TestClassifyNumber(t *testing.T) {
	t.Parallel()
	huge := "1" + strings.Repeat("0", 131072)
	for _, tc := range []struct {
		name string
		in   string
		typ  ColType
		val  any
	}{
		{"int", "1644227937", BigInt, int64(1644227937)},
		{"zero", "0", BigInt, int64(0)},
		{"neg_zero", "-0", BigInt, int64(0)},
		{"min_int64", "-9223372036854775808", BigInt, int64(-9223372036854775808)},
		{"max_int64", "9223372036854775807", BigInt, int64(9223372036854775807)},
		{"over_int64", "9223372036854775808", Numeric, "9223372036854775808"},
		{"under_int64", "-9223372036854775809", Numeric, "-9223372036854775809"},
		{"big_exact", "123456789012345678901234567890", Numeric, "123456789012345678901234567890"},
		{"fraction", "0.5", Double, 0.5},
		{"integral_with_point", "1.0", Double, 1.0},
		{"exponent", "1e2", Double, 100.0},
		{"upper_exponent", "2E-3", Double, 0.002},
		{"overflow", "1e400", Numeric, "1e400"},
		{"overflow_negative", "-1.5E+400", Numeric, "-1.5E+400"},
		{"underflow_rounds", "1e-400", Double, 0.0},
		{"subnormal", "5e-324", Double, 5e-324},
		{"numeric_max_weight", "9e131071", Numeric, "9e131071"},
		{"beyond_numeric_weight", "1e131072", 0, nil},
		{"beyond_numeric_exponent", "1e99999999999", 0, nil},
		{"beyond_numeric_digits", huge, 0, nil},
		{"not_a_number", "abc", 0, nil},
		{"infinity_word", "Infinity", 0, nil},
		{"hex_float", "0x1p4", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			typ, val := ClassifyNumber(json.Number(tc.in))
			require.Equal(t, tc.typ, typ)
			require.Equal(t, tc.val, val)
		})
	}
}

func TestNumericFits(t *testing.T) {
	t.Parallel()
	// Bounds checked against PostgreSQL 15: '1e131071'::numeric and
	// '1e-16383'::numeric are accepted, one more digit either way is not.
	for _, tc := range []struct {
		in   string
		fits bool
	}{
		{"1e131071", true}, {"1e131072", false},
		{"1e-16383", true}, {"1e-16384", false},
		{"1.5e-16382", true}, {"1.5e-16383", false},
		{"0.000001e131077", true}, {"-12.5e400", true},
		{"1e+400", true}, {"1e", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.fits, numericFits(tc.in))
		})
	}
}
