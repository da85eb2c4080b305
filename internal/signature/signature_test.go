package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// independent computes the expected signature without the package's helpers.
func independent(key, ts, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("v0:" + ts + ":" + body))
	return fmt.Sprintf("%x", m.Sum(nil))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	key := "cio-signing-key"
	body := `{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","metric":"sent"}`
	ts := "1700000000"
	good := independent(key, ts, body)
	require.Equal(t, good, Sign([]byte(key), ts, []byte(body)))

	for _, tc := range []struct {
		name    string
		ts, sig string
		body    string
		wantErr error
	}{
		{"ok", ts, good, body, nil},
		{"upper_hex", ts, strings.ToUpper(good), body, nil},
		{"v0_prefix", ts, "v0=" + good, body, nil},
		{"missing_sig", ts, "", body, ErrMissing},
		{"missing_ts", "", good, body, ErrMissing},
		{"bad_ts", "abc", good, body, ErrTimestamp},
		{"wrong_sig", ts, independent("other", ts, body), body, ErrMismatch},
		{"not_hex", ts, "zz", body, ErrMismatch},
		{"body_changed", ts, good, body + " ", ErrMismatch},
		{"too_new", "1700000301", independent(key, "1700000301", body), body, ErrTooNew},
		{"future_within", "1700000300", independent(key, "1700000300", body), body, nil},
		{"too_old", "1699308799", independent(key, "1699308799", body), body, ErrTooOld},
		{"old_within", "1699308800", independent(key, "1699308800", body), body, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Verify([]byte(key), tc.ts, tc.sig, []byte(tc.body), now, testWindow)
			require.ErrorIs(t, err, tc.wantErr)
			if tc.wantErr == nil {
				require.NoError(t, err)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("k", "1700000000", "00", []byte("{}"))
	f.Fuzz(func(t *testing.T, key, ts, sig string, body []byte) {
		now := time.Unix(1_700_000_000, 0)
		_, _ = Verify([]byte(key), ts, sig, body, now, testWindow)
		good := Sign([]byte(key), "1700000000", body)
		_, err := Verify([]byte(key), "1700000000", good, body, now, testWindow)
		require.NoError(t, err)
	})
}

// Ensure a timestamp too large for time.Time is "in the future", not "too
// old" (time.Unix(2^63-1, 0) overflows into the past), and the smallest one
// is "too old".
func TestVerifyExtremeTimestamps(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	key, body := []byte("k"), []byte("{}")
	for ts, want := range map[string]error{
		"9223372036854775807":  ErrTooNew,
		"9223372036":           ErrTooNew, // year 2262, the last second time.Duration can span
		"-9223372036854775808": ErrTooOld,
		"0":                    ErrTooOld,
	} {
		age, err := Verify(key, ts, Sign(key, ts, body), body, now, testWindow)
		require.ErrorIs(t, err, want, ts)
		if want == ErrTooNew {
			require.Negative(t, age, ts)
		} else {
			require.Positive(t, age, ts)
		}
	}
}

// testWindow is SPEC 3.1's window (the service's default, from internal/config).
var testWindow = Window{MaxFuture: 300 * time.Second, MaxAge: 8 * 24 * time.Hour}
