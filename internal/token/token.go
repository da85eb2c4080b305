// Package token makes webhook tokens and the hashes they are looked up by.
// A token is shown once; only its SHA-256 is stored.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// Prefix starts every token so a leaked one is recognisable in logs and scanners.
const Prefix = "whk_"

// displayLen is how many characters of a token are kept for display (prefix included).
const displayLen = len(Prefix) + 6

// New returns a fresh token: Prefix + 32 random bytes in URL-safe base64 without padding.
func New() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: read random bytes: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Hash is the SHA-256 of the token, the only form stored.
func Hash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// Display is the short, non-secret beginning of a token shown in listings.
func Display(tok string) string {
	if len(tok) <= displayLen {
		return tok
	}
	return tok[:displayLen]
}

// Plausible reports whether s could be a token; a cheap check before hashing
// and a database look-up.
func Plausible(s string) bool {
	return strings.HasPrefix(s, Prefix) && len(s) == len(Prefix)+43 &&
		strings.IndexFunc(s[len(Prefix):], func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) < 0
}
