// Package signature verifies Customer.io reporting-webhook signatures:
// lowercase hex HMAC-SHA256, keyed with the signing key's bytes, over
// "v0:" + X-CIO-Timestamp + ":" + the raw body.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Window bounds how far a signed timestamp may sit from the receiver's clock.
// The values come from the caller (internal/config holds the defaults: 300 s
// and 8 days, since Customer.io retries for 7 days). A zero bound accepts no
// timestamp on its side of the clock.
type Window struct {
	MaxFuture time.Duration
	MaxAge    time.Duration
}

// The reasons a signature is refused. Each is safe to show to the client.
var (
	ErrMissing   = errors.New("missing X-CIO-Signature or X-CIO-Timestamp header")
	ErrTimestamp = errors.New("X-CIO-Timestamp is not a Unix time in seconds")
	ErrTooNew    = errors.New("X-CIO-Timestamp is too far in the future")
	ErrTooOld    = errors.New("X-CIO-Timestamp is older than the replay window")
	ErrMismatch  = errors.New("X-CIO-Signature does not match the body")
)

// Sign returns the lowercase hex signature of body at timestamp ts.
func Sign(key []byte, ts string, body []byte) string {
	return hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("v0:"))
	h.Write([]byte(ts))
	h.Write([]byte(":"))
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks sig (optional "v0=" prefix, hex in either case) over the raw
// body, then the timestamp window. It returns the signature's age, for the
// age histogram, together with any error.
func Verify(key []byte, ts, sig string, body []byte, now time.Time, w Window) (time.Duration, error) {
	ts, sig = strings.TrimSpace(ts), strings.TrimSpace(sig)
	if ts == "" || sig == "" {
		return 0, ErrMissing
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, ErrTimestamp
	}
	got, err := hex.DecodeString(strings.TrimPrefix(sig, "v0="))
	if err != nil || !hmac.Equal(got, mac(key, ts, body)) {
		return 0, ErrMismatch
	}
	// Clamped to just past the window first: an absurd timestamp such as
	// 2^63-1 would overflow time.Time and come out in the past.
	lo := now.Unix() - int64(w.MaxAge/time.Second) - 2
	hi := now.Unix() + int64(w.MaxFuture/time.Second) + 2
	age := now.Sub(time.Unix(min(max(secs, lo), hi), 0))
	switch {
	case age < -w.MaxFuture:
		return age, ErrTooNew
	case age > w.MaxAge:
		return age, ErrTooOld
	}
	return age, nil
}
