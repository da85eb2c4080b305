package httpapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// sigHMAC is Customer.io's reporting-webhook signature, computed here with
// crypto/hmac alone (not the signature package): lowercase hex HMAC-SHA256,
// keyed with the signing key's bytes, over "v0:" + timestamp + ":" + body.
func sigHMAC(key, ts string, body []byte) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte("v0:" + ts + ":"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func sigHeader(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set("X-CIO-Timestamp", ts)
	}
	if sig != "" {
		h.Set("X-CIO-Signature", sig)
	}
	return h
}

// sigEarlyInSecond waits until the wall clock is in the first half of a
// second, so a timestamp computed as now+N whole seconds is between N-0.5 and
// N seconds ahead of the server's clock for the next half second: the
// boundary cases below cannot flip with sub-second timing.
func sigEarlyInSecond() time.Time {
	now := time.Now()
	if ns := now.Nanosecond(); ns > 400_000_000 {
		time.Sleep(time.Duration(1_000_000_000-ns) + time.Millisecond)
	}
	return time.Now()
}

// Ensure the helper computes the published algorithm: this vector was
// computed independently (Python hmac/hashlib).
func TestSignatureHelperVector(t *testing.T) {
	t.Parallel()
	require.Equal(t, "7d06e4dcbb54167f0033658ac8c45abe35b1fa257ff38a448e290762b595f902",
		sigHMAC("secret", "1700000000", []byte(`{"a":1}`)))
}

// Ensure SPEC 3.1's signature rule over HTTP: with a signing key set, only a
// correct HMAC of the untouched body with a timestamp inside the window is
// accepted; everything else is 401 with a JSON error and writes nothing.
func TestSignatureOverHTTP(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Signed Hooks")
	conn := app.DB(t)
	const key = "cio-signing-key: Zx9+/=ä"
	keyPath := fmt.Sprintf("/v1/integrations/%d/signing-key", in.ID)

	// Before a key is set, unsigned requests are accepted.
	status, body := app.Post(t, u.URL, `{"event_id":"before-key"}`)
	require.Equal(t, http.StatusOK, status, string(body))

	status, body = app.Admin(t, http.MethodPut, keyPath, map[string]string{"key": key})
	require.Equal(t, http.StatusNoContent, status, string(body))

	post := func(body []byte, h http.Header) (int, []byte) {
		t.Helper()
		return app.Do(t, http.MethodPost, u.URL, body, h)
	}
	ev := func(id string) []byte {
		return []byte(`{"event_id":"` + id + `","object_type":"email","metric":"sent"}`)
	}

	now := sigEarlyInSecond()
	ts := strconv.FormatInt(now.Unix(), 10)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }

	var accepted []string
	type tc struct {
		name   string
		body   []byte
		header http.Header
	}
	ok := func(id string, h func(b []byte) http.Header) tc {
		b := ev(id)
		return tc{id, b, h(b)}
	}
	for _, c := range []tc{
		ok("valid", func(b []byte) http.Header { return sigHeader(ts, sigHMAC(key, ts, b)) }),
		ok("upper-hex", func(b []byte) http.Header { return sigHeader(ts, strings.ToUpper(sigHMAC(key, ts, b))) }),
		ok("v0-prefix", func(b []byte) http.Header { return sigHeader(ts, "v0="+sigHMAC(key, ts, b)) }),
		ok("v0-prefix-upper-hex", func(b []byte) http.Header { return sigHeader(ts, "v0="+strings.ToUpper(sigHMAC(key, ts, b))) }),
		ok("seven-days-old", func(b []byte) http.Header {
			old := at(-7 * 24 * time.Hour)
			return sigHeader(old, sigHMAC(key, old, b))
		}),
		ok("299s-in-future", func(b []byte) http.Header {
			soon := at(299 * time.Second)
			return sigHeader(soon, sigHMAC(key, soon, b))
		}),
	} {
		status, body := post(c.body, c.header)
		require.Equal(t, http.StatusOK, status, "%s: %s", c.name, body)
		require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(body), c.name)
		accepted = append(accepted, c.name)
	}
	// Checked on the raw bytes, before any parsing or sanitising: a body with
	// invalid UTF-8 and a \u0000 escape is signed and verified as sent.
	rawBody := []byte("{\"event_id\":\"raw-bytes\",\"v\":\"a\xffb\\u0000c\",\"k\xfe\":1}")
	status, body = post(rawBody, sigHeader(ts, sigHMAC(key, ts, rawBody)))
	require.Equal(t, http.StatusOK, status, "the signature must be checked on the untouched bytes: %s", body)
	accepted = append(accepted, "raw-bytes")
	var v string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT v FROM signed_hooks.data WHERE event_id = 'raw-bytes'`).Scan(&v))
	require.Equal(t, "a\uFFFDb\uFFFDc", v)

	refused := []struct {
		name   string
		body   []byte
		header http.Header
		want   string
	}{
		{"no-headers", ev("no-headers"), nil, "missing"},
		{"no-signature", ev("no-signature"), sigHeader(ts, ""), "missing"},
		{"no-timestamp", ev("no-timestamp"), sigHeader("", sigHMAC(key, ts, ev("no-timestamp"))), "missing"},
		{"wrong-signature", ev("wrong-signature"), sigHeader(ts, strings.Repeat("ab", 32)), "does not match"},
		{"wrong-key", ev("wrong-key"), sigHeader(ts, sigHMAC(key+"x", ts, ev("wrong-key"))), "does not match"},
		{"not-hex", ev("not-hex"), sigHeader(ts, "zz"+sigHMAC(key, ts, ev("not-hex"))[2:]), "does not match"},
		{"truncated-signature", ev("truncated-signature"), sigHeader(ts, sigHMAC(key, ts, ev("truncated-signature"))[:62]), "does not match"},
		{"body-changed-one-byte", ev("body-changed-one-byte"), sigHeader(ts, sigHMAC(key, ts, ev("body-changed-one-bytf"))), "does not match"},
		{"other-timestamp-same-signature", ev("other-timestamp-same-signature"),
			sigHeader(at(time.Second), sigHMAC(key, ts, ev("other-timestamp-same-signature"))), "does not match"},
		{"timestamp-not-a-number", ev("timestamp-not-a-number"), sigHeader("soon", sigHMAC(key, "soon", ev("timestamp-not-a-number"))), "Unix time"},
		{"301s-in-future", ev("301s-in-future"),
			sigHeader(at(301*time.Second), sigHMAC(key, at(301*time.Second), ev("301s-in-future"))), "future"},
		{"older-than-window", ev("older-than-window"),
			sigHeader(at(-(192*time.Hour + time.Second)), sigHMAC(key, at(-(192*time.Hour+time.Second)), ev("older-than-window"))), "replay window"},
		// Refused before parsing: an unsigned body that isn't JSON is a 401, not a 400.
		{"unsigned-garbage", []byte("not json at all"), nil, "missing"},
	}
	for _, c := range refused {
		status, body := post(c.body, c.header)
		require.Equal(t, http.StatusUnauthorized, status, "%s: %s", c.name, body)
		var e map[string]any
		require.NoError(t, json.Unmarshal(body, &e), "%s: 401 body must be JSON: %s", c.name, body)
		require.Len(t, e, 1, "%s: %s", c.name, body)
		msg, _ := e["error"].(string)
		require.Contains(t, msg, c.want, c.name)
		require.NotContains(t, string(body), key, "the signing key must never be echoed")
	}
	// The RudderStack-compatible path is checked the same way.
	status, body = app.Post(t, app.URL+"/v1/webhook?writeKey="+u.Token, ev("rudder-unsigned"))
	require.Equal(t, http.StatusUnauthorized, status, string(body))
	b := ev("rudder-signed")
	status, body = app.Do(t, http.MethodPost, app.URL+"/v1/webhook?writeKey="+u.Token, b, sigHeader(ts, sigHMAC(key, ts, b)))
	require.Equal(t, http.StatusOK, status, string(body))
	accepted = append(accepted, "rudder-signed")

	// Nothing from a refused request was written, in any table.
	for _, table := range []string{"signed_hooks.data", "signed_hooks.rudder_events"} {
		require.EqualValues(t, len(accepted)+1, apptest.Count(t, conn, table), table) // +1: before-key
	}
	require.EqualValues(t, 0, apptest.Count(t, conn, "signed_hooks._sdc_rejected"))
	for _, c := range refused {
		var n int
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM signed_hooks.data WHERE event_id = $1`, c.name).Scan(&n))
		require.Zero(t, n, c.name)
	}

	// The key is never shown: not by the admin API, not in /metrics.
	status, body = app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d", in.ID), nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"has_signing_key":true`)
	for _, p := range []string{"/v1/integrations", fmt.Sprintf("/v1/integrations/%d", in.ID), fmt.Sprintf("/v1/integrations/%d/webhook-urls", in.ID), "/metrics"} {
		status, body := app.Admin(t, http.MethodGet, p, nil)
		require.Equal(t, http.StatusOK, status, p)
		require.NotContains(t, string(body), key, p)
		require.NotContains(t, string(body), "cio-signing-key", p)
	}
	status, metrics := app.Do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(metrics), `cioloader_signature_failures_total{reason="mismatch"}`)
	require.Contains(t, string(metrics), `cioloader_signature_failures_total{reason="too_new"}`)
	require.Contains(t, string(metrics), `cioloader_signature_failures_total{reason="too_old"}`)

	// Clearing the key: unsigned requests are accepted again, at once.
	status, body = app.Admin(t, http.MethodDelete, keyPath, nil)
	require.Equal(t, http.StatusNoContent, status, string(body))
	status, body = app.Post(t, u.URL, `{"event_id":"after-clear"}`)
	require.Equal(t, http.StatusOK, status, "after DELETE signing-key: %s", body)
	status, body = app.Admin(t, http.MethodGet, fmt.Sprintf("/v1/integrations/%d", in.ID), nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"has_signing_key":false`)

	// Setting a new key takes effect at once too (the token cache is cleared).
	status, _ = app.Admin(t, http.MethodPut, keyPath, map[string]string{"key": "second key"})
	require.Equal(t, http.StatusNoContent, status)
	status, body = app.Post(t, u.URL, `{"event_id":"after-rekey"}`)
	require.Equal(t, http.StatusUnauthorized, status, string(body))
	b = ev("after-rekey-signed")
	status, body = post(b, sigHeader(ts, sigHMAC(key, ts, b)))
	require.Equal(t, http.StatusUnauthorized, status, "the old key no longer verifies: %s", body)
	status, body = post(b, sigHeader(ts, sigHMAC("second key", ts, b)))
	require.Equal(t, http.StatusOK, status, string(body))
}
