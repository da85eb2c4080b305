package domain

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Ensure an activity key is always storable: valid UTF-8, no NUL, bounded.
func TestNewActivityKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", MaxActivityKeyBytes) // two bytes each
	for _, tc := range []struct{ in, want string }{
		{"email", "email"},
		{"", ""},
		{"a\x00b", "a\uFFFDb"},
		{"a\xffb", "a\uFFFDb"},
		{long, long[:MaxActivityKeyBytes]},
		{"x" + long, "x" + long[:MaxActivityKeyBytes-2]}, // never half a character
	} {
		got := NewActivityKey(tc.in, tc.in)
		require.Equal(t, ActivityKey{ObjectType: tc.want, Metric: tc.want}, got, tc.in)
		require.True(t, utf8.ValidString(got.ObjectType))
		require.LessOrEqual(t, len(got.ObjectType), MaxActivityKeyBytes)
	}
}
