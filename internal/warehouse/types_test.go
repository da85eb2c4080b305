package warehouse

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTypeOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    any
		want Type
	}{
		{json.Number("96"), Int}, {json.Number("1.0"), Int}, {json.Number("1e3"), Int}, {json.Number("-7"), Int},
		{json.Number("1.5"), Float}, {float64(2), Int}, {2.25, Float},
		{true, Boolean}, {false, Boolean},
		{"string", String}, {"", String}, {"96", String},
		{"2021-02-11T17:04:49.000Z", Datetime}, {"2021-02-11", Datetime}, {"2021-02-11 17:04:49+05:30", Datetime},
		{"2021-13-01", String}, {"2021-02-11T25:00", String}, {"17:04", String},
		{[]any{"a"}, String}, {nil, String},
	} {
		require.Equal(t, c.want, TypeOf(c.v), "%#v", c.v)
	}
}

func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Time{
		"2021-02-11T17:04:49.000Z":  time.Date(2021, 2, 11, 17, 4, 49, 0, time.UTC),
		"2021-02-11T17:04:49.25Z":   time.Date(2021, 2, 11, 17, 4, 49, 250_000_000, time.UTC),
		"2021-02-11 17:04:49+05:30": time.Date(2021, 2, 11, 11, 34, 49, 0, time.UTC),
		"2021-02-11T17:04-0100":     time.Date(2021, 2, 11, 18, 4, 0, 0, time.UTC),
		"2021-02-11":                time.Date(2021, 2, 11, 0, 0, 0, 0, time.UTC),
		"1988-04-31":                time.Date(1988, 5, 1, 0, 0, 0, 0, time.UTC), // rolls over, as JavaScript
	} {
		got, ok := ParseTimestamp(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
}

func TestTypeSQL(t *testing.T) {
	t.Parallel()
	for typ, want := range map[Type]string{String: "text", Int: "bigint", Float: "numeric", Boolean: "boolean", Datetime: "timestamptz", JSON: "jsonb"} {
		require.Equal(t, want, typ.SQL())
		back, ok := ParseType(string(typ))
		require.True(t, ok)
		require.Equal(t, typ, back)
	}
	_, ok := ParseType("varchar")
	require.False(t, ok)
}

func TestColumnsFlatten(t *testing.T) {
	t.Parallel()
	ctx, props := Columns(map[string]any{
		"link":       map[string]any{"url": "https://x", "id": json.Number("3")},
		"recipients": []any{map[string]any{"device_id": "d"}},
		"empty":      "", "none": nil, "blank": []any{""},
		"id":     "dropped: RudderStack fills id itself",
		"cio_id": "b", "cioId": "a",
	}, map[string]any{"traits": map[string]any{"email": "x@example.com"}, "ip": "1.2.3.4"})
	require.Equal(t, []Column{{Name: "context_traits_email", Source: FromContext, Path: []string{"traits", "email"}, Type: String}}, ctx)
	require.Equal(t, []Column{
		{Name: "cio_id", Source: FromProperties, Path: []string{"cioId"}, Type: String},
		{Name: "cio_id", Source: FromProperties, Path: []string{"cio_id"}, Type: String}, // later in byte order: kept
		{Name: "link_id", Source: FromProperties, Path: []string{"link", "id"}, Type: Int},
		{Name: "link_url", Source: FromProperties, Path: []string{"link", "url"}, Type: String},
		{Name: "recipients", Source: FromProperties, Path: []string{"recipients"}, Type: String},
	}, props)
}
