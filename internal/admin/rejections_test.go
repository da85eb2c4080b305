package admin

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Ensure records are cut to a byte bound without splitting a character.
func TestCutUTF8(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		n        int
		cut      bool
	}{
		{"abc", "abc", 3, false},
		{"abcd", "abc", 3, true},
		{"aé", "a", 2, true},   // é is two bytes: not split
		{"aéb", "aé", 3, true}, // ends on the boundary
		{"€uro", "", 2, true},  // a three-byte character longer than the bound
		{"", "", 0, false},
	} {
		got, cut := cutUTF8(tc.in, tc.n)
		require.Equal(t, tc.want, got, tc.in)
		require.Equal(t, tc.cut, cut, tc.in)
		require.True(t, utf8.ValidString(got))
	}
}
