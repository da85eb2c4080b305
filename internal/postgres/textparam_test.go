package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

// TextParamCases are arrays the encoder must get right.
var TextParamCases = map[string][]pgtype.Text{
	"nil":          nil,
	"empty":        {},
	"one":          {{String: "a", Valid: true}},
	"nulls":        {{}, {String: "x", Valid: true}, {}},
	"only nulls":   {{}, {}},
	"empty string": {{String: "", Valid: true}, {}},
	"multibyte":    {{String: "Grüße, 世界 🎉", Valid: true}, {String: `{"a": "\\u0000"}`, Valid: true}},
	"long":         {{String: strings.Repeat("x", 70000), Valid: true}, {String: "y", Valid: true}},
}

// textParamCodec writes the bytes pgx's own text[] plan writes, after what
// the buffer already holds.
func TestTextParamEncodesAsPgx(t *testing.T) {
	t.Parallel()
	plain := pgtype.NewMap()
	fast := pgtype.NewMap()
	registerTextParam(fast)
	for name, vals := range TextParamCases {
		prefix := []byte("earlier params")
		want, err := plain.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, pgtype.FlatArray[pgtype.Text](vals), append([]byte(nil), prefix...))
		require.NoError(t, err, name)
		got, err := fast.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, textParam(vals), append([]byte(nil), prefix...))
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
	}
	// Other values and the text format still go through pgx's codec.
	got, err := fast.Encode(pgtype.TextArrayOID, pgtype.TextFormatCode, textParam{{String: "a b", Valid: true}, {}}, nil)
	require.NoError(t, err)
	require.Equal(t, `{"a b",NULL}`, string(got))
	got, err = fast.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, []string{"s"}, nil)
	require.NoError(t, err)
	want, err := plain.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, []string{"s"}, nil)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// FuzzTextParam: any strings and NULLs encode as pgx encodes them.
func FuzzTextParam(f *testing.F) {
	f.Add("a", "", false, true)
	f.Add("Grüße", "\xff", true, false)
	plain, fast := pgtype.NewMap(), pgtype.NewMap()
	registerTextParam(fast)
	f.Fuzz(func(t *testing.T, a, b string, aNull, bNull bool) {
		vals := []pgtype.Text{{String: a, Valid: !aNull}, {String: b, Valid: !bNull}, {String: a + b, Valid: true}}
		want, err := plain.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, pgtype.FlatArray[pgtype.Text](vals), nil)
		require.NoError(t, err)
		got, err := fast.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, textParam(vals), nil)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}
