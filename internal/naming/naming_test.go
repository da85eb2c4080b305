package naming

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestSchemaName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"stitch_example", "Stitch Customer.io", "stitch_customerio"},
		{"two_words", "Recurly Stitch", "recurly_stitch"},
		{"parens_removed", "My (Test) App", "my_test_app"},
		{"dots_transparent_in_runs", "a . b", "a_b"},
		{"run_becomes_one", "a -- b", "a_b"},
		{"underscore_not_other", "a_ b", "a__b"},
		{"trimmed", "__Hello__", "hello"},
		{"trimmed_other", "  Sp@ces  ", "sp_ces"},
		{"unicode_is_other", "Ünïcödé name", "n_c_d_name"},
		{"digits_inside", "app 2 prod", "app_2_prod"},
		{"pg_alone_ok", "pg", "pg"},
		{"cut_63", strings.Repeat("ab ", 30), strings.TrimRight(strings.Repeat("ab_", 21), "_")},
		{"cut_multibyte", strings.Repeat("aé", 40), strings.Repeat("a_", 31) + "a"},
		{"cut_then_trim", strings.Repeat("ab", 31) + "é" + "cd", strings.Repeat("ab", 31)},
		{"leading_underscores_then_digit_ok", "_x2", "x2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := SchemaName(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, len(got), 63)
		})
	}
}

func TestSchemaNameRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "gives an empty schema name"},
		{"only_removed", "...()", "gives an empty schema name"},
		{"only_other", "!!! ---", "gives an empty schema name"},
		{"only_unicode", "日本語", "gives an empty schema name"},
		{"digit_start", "2FA", `gives schema "2fa" which starts with a digit`},
		{"digit_after_trim", "  9 lives", `gives schema "9_lives" which starts with a digit`},
		{"public", "Public", `schema name "public" is reserved`},
		{"information_schema", "Information Schema", `schema name "information_schema" is reserved`},
		{"control", "CIOLoader", `schema name "cioloader" is reserved`},
		{"pg_prefix", "PG Stuff", `schema name "pg_stuff" is reserved`},
		{"pg_catalog", "pg_catalog", `schema name "pg_catalog" is reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := SchemaName(tc.in)
			require.Error(t, err)
			require.Empty(t, got)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSegment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"clean", "customer_id", "customer_id"},
		{"case_kept", "CuStOmErId", "CuStOmErId"},
		{"bang_removed", "customer!id", "customerid"},
		{"hash_removed", "customer#id", "customerid"},
		{"space_removed", "customer id", "customerid"},
		{"hyphen_removed", "X-Mailgun-Tag", "XMailgunTag"},
		{"leading_digits", "123customerid", "customerid"},
		{"leading_underscore_kept", "_987CUSTOMERID", "_987CUSTOMERID"},
		{"digit_then_underscore", "1_a", "_a"},
		{"removed_then_digit", "-1a", "a"},
		{"multibyte_removed", "émail", "mail"},
		{"sql_looking", `a"; DROP TABLE x; --`, "aDROPTABLEx"},
		{"empty", "", ""},
		{"only_digits", "123", ""},
		{"only_other", "日本", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Segment(tc.in))
			require.Equal(t, "p__"+tc.want, string(AppendSegment([]byte("p__"), tc.in)))
		})
	}
}

func TestIsReservedColumn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"_sdc", true}, {"_sdc_sequence", true}, {"_rjm_x", true},
		{"x__bi", true}, {"x__bo", true}, {"x__de", true}, {"x__do", true},
		{"x__fl", true}, {"x__it", true}, {"x__st", true}, {"x__ti", true}, {"__st", true},
		{"_SDC_x", false}, {"x__ST", false}, {"x__xx", false}, {"x_st", false}, {"st", false},
		{"", false}, {"_sd", false}, {"data___sdc", false}, {"x__st_", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, IsReservedColumn(tc.in))
		})
	}
}

var (
	schemaPattern  = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	segmentPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func FuzzSchemaName(f *testing.F) {
	for _, s := range []string{"Stitch Customer.io", "", "2fa", "public", "a.(b)", "Ünï", strings.Repeat("é", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := SchemaName(name)
		if err != nil {
			require.Empty(t, got)
			return
		}
		require.Regexp(t, schemaPattern, got)
		require.LessOrEqual(t, len(got), 63)
		require.False(t, isReservedSchema(got))
		again, err := SchemaName(got)
		require.NoError(t, err, "a schema name must map to itself")
		require.Equal(t, got, again)
	})
}

func FuzzSegment(f *testing.F) {
	for _, s := range []string{"customer_id", "123abc", "é", `a"; DROP`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		got := Segment(key)
		require.True(t, utf8.ValidString(got))
		if got != "" {
			require.Regexp(t, segmentPattern, got)
		}
		require.Equal(t, got, Segment(got), "Segment is idempotent")
		require.Equal(t, "x__"+got, string(AppendSegment([]byte("x__"), key)))
	})
}

// isReservedSchema mirrors the refusal rules, so the fuzz target can
// check that no reserved name gets through.
func isReservedSchema(s string) bool {
	return reservedSchemas[s] || strings.HasPrefix(s, "pg_")
}
