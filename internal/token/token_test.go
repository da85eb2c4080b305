package token

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	t.Parallel()
	a, err := New()
	require.NoError(t, err)
	b, err := New()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.True(t, Plausible(a), a)
	require.Len(t, a, len(Prefix)+43)
	require.Equal(t, a[:10], Display(a))
}

func TestHash(t *testing.T) {
	t.Parallel()
	want := sha256.Sum256([]byte("whk_x"))
	require.Equal(t, want[:], Hash("whk_x"))
}

func TestPlausible(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"whk_", false},
		{"whk_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true},
		{"whk_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", false},
		{"xxx_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},
	} {
		require.Equal(t, tc.want, Plausible(tc.in), tc.in)
	}
}
