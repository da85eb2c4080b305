package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/httpapi"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/postgres"
)

// Ensure NUL characters in admin JSON are a 400 that says so, never a 500
// (SPEC 10.11): Postgres cannot store U+0000 in text.
func TestAdminRefusesNUL(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	status, body := app.Admin(t, http.MethodPost, "/v1/integrations", `{"name":"Shop\u0000One"}`)
	require.Equal(t, http.StatusBadRequest, status, string(body))
	require.Contains(t, string(body), "NUL")

	in := app.CreateIntegration(t, "Shop One")
	status, body = app.Admin(t, http.MethodPut, fmt.Sprintf("/v1/integrations/%d/signing-key", in.ID), `{"key":"abc\u0000def"}`)
	require.Equal(t, http.StatusBadRequest, status, string(body))
	require.Contains(t, string(body), "NUL")
}

// Ensure the bearer scheme is matched in any case (RFC 9110; SPEC 10.12).
func TestAdminBearerSchemeAnyCase(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		status, body := app.Do(t, http.MethodGet, "/v1/integrations", nil, http.Header{"Authorization": {scheme + " " + app.AdminToken}})
		require.Equal(t, http.StatusOK, status, "%s: %s", scheme, body)
	}
	for _, h := range []string{"Basic " + app.AdminToken, "Bearer", "Bearer" + app.AdminToken, app.AdminToken} {
		status, body := app.Do(t, http.MethodGet, "/v1/integrations", nil, http.Header{"Authorization": {h}})
		require.Equal(t, http.StatusUnauthorized, status, "%q: %s", h, body)
	}
}

// Ensure a deleted integration's signing key cannot be set or cleared: 409,
// not a 204 that changed nothing anyone can use; an unknown id is a 404.
func TestSigningKeyOnDeletedIntegration(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in := app.CreateIntegration(t, "Gone")
	status, body := app.Admin(t, http.MethodDelete, fmt.Sprintf("/v1/integrations/%d", in.ID), nil)
	require.Equal(t, http.StatusNoContent, status, string(body))
	path := fmt.Sprintf("/v1/integrations/%d/signing-key", in.ID)
	status, body = app.Admin(t, http.MethodPut, path, `{"key":"secret"}`)
	require.Equal(t, http.StatusConflict, status, string(body))
	require.Contains(t, string(body), "deleted")
	status, body = app.Admin(t, http.MethodDelete, path, nil)
	require.Equal(t, http.StatusConflict, status, string(body))
	status, body = app.Admin(t, http.MethodPut, "/v1/integrations/999999/signing-key", `{"key":"secret"}`)
	require.Equal(t, http.StatusNotFound, status, string(body))
}

// Ensure every response carries X-Content-Type-Options: nosniff: success,
// errors, unmatched routes, the admin page and metrics.
func TestEveryResponseIsNosniff(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Sniff")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path, body, auth string
		status                   int
	}{
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/metrics", "", "", 200},
		{"GET", "/admin", "", "", 301},
		{"GET", "/admin/", "", "", 200},
		{"GET", "/admin/nope.js", "", "", 404},
		{"GET", "/no/such/route", "", "", 404},
		{"GET", "/v1/integrations", "", "", 401},
		{"GET", "/v1/integrations", "", "Bearer " + app.AdminToken, 200},
		{"GET", "/v1/integrations/999", "", "Bearer " + app.AdminToken, 404},
		{"POST", "/v1/integrations", "not json", "Bearer " + app.AdminToken, 400},
		{"GET", u.URL, "", "", 405},
		{"POST", u.URL, `{"event_id":"a"}`, "", 200},
		{"POST", u.URL, `not json`, "", 400},
		{"POST", app.URL + "/v1/webhooks/whk_unknown", `{"event_id":"a"}`, "", 404},
	} {
		target := tc.path
		if strings.HasPrefix(target, "/") {
			target = app.URL + target
		}
		req, err := http.NewRequest(tc.method, target, strings.NewReader(tc.body))
		require.NoError(t, err)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, "%s %s", tc.method, tc.path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), "%s %s (%d)", tc.method, tc.path, tc.status)
	}
}

// Ensure a body of exactly the default limit (20 MiB, SPEC 3.1) is read and one
// byte more is a 413, with the configuration every deployment starts from.
func TestDefaultBodyLimitIs20MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("posts 40 MiB")
	}
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Big Bodies")
	// A small event padded with whitespace (valid JSON): the size is what is
	// tested, not how long Postgres takes to store 20 MB.
	body := func(size int) string {
		event := `{"event_id":"big-` + strconv.Itoa(size) + `"}`
		return event + strings.Repeat(" ", size-len(event))
	}
	status, resp := app.Post(t, u.URL, body(20<<20+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "a body one byte over 20 MiB: %s", resp)
	status, resp = app.Post(t, u.URL, body(20<<20))
	require.Equal(t, http.StatusOK, status, "a body of exactly 20 MiB: %s", resp)
}

// Ensure that with the database unreachable, readiness, admin and ingest
// answers (and the log) name no host, port, user or database (SPEC 10.11).
func TestUnreachableDatabaseNamesNothing(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	dbURL := "postgres://secretuser:secretpw@127.0.0.1:" + port + "/secretdb?connect_timeout=2"

	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	m := metrics.New()
	cfg := config.Defaults()
	store, err := postgres.Open(context.Background(), dbURL, app.StoreConfig(cfg), log, m)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	batcher, err := ingest.NewBatcher(store, ingest.BatcherConfig{Workers: 1, Stall: 50 * time.Millisecond, MaxEvents: 100, QueueLen: 10, Deadline: 3 * time.Second}, log, m)
	require.NoError(t, err)
	ing := ingest.NewService(ingest.ServiceConfig{MaxEvents: 100, SigWindow: app.SignatureWindow(cfg), Limits: app.FlattenLimits(cfg)},
		store, batcher, store, m, nil)
	token := strings.Repeat("t", 32)
	srv := httpapi.New(httpapi.Options{AdminToken: token, MaxBodyBytes: 1 << 20, InflightBytes: 1 << 24},
		ing, store, &admin.Service{Store: store, BaseURL: "http://x"}, log, m)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"GET", "/v1/integrations", ""},
		{"POST", "/v1/integrations", `{"name":"x"}`},
		{"POST", "/v1/webhooks/whk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", `{"event_id":"a"}`},
	} {
		req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s %s: %s", tc.method, tc.path, b)
		for _, secret := range []string{"127.0.0.1", port, "secretuser", "secretdb", "secretpw"} {
			require.NotContains(t, string(b), secret, "%s %s answered %s", tc.method, tc.path, b)
		}
	}
	for _, secret := range []string{"127.0.0.1", ":" + port, "secretuser", "secretdb", "secretpw"} {
		require.NotContains(t, logs.String(), secret, "a log line names the database")
	}
}

// syncWriter serialises writes to w (the server logs from many goroutines).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
