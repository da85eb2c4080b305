package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// Ensure the admin page and its assets are served from the binary with the
// right types, no caching and a CSP that allows only the page's own files.
func TestAdminPageAssets(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(app.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}

	resp, _ := get("/admin")
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/admin/", resp.Header.Get("Location"))

	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/admin/", "text/html; charset=utf-8", `<script src="/admin/app.js"`},
		{"/admin/app.js", "text/javascript; charset=utf-8", "textContent"},
		{"/admin/app.css", "text/css; charset=utf-8", ".new-url"},
		{"/admin/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, body := get(tc.path)
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.path)
		require.Equal(t, tc.contentType, resp.Header.Get("Content-Type"), tc.path)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), tc.path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), tc.path)
		csp := resp.Header.Get("Content-Security-Policy")
		require.True(t, strings.HasPrefix(csp, "default-src 'self'"), "%s: CSP %q", tc.path, csp)
		require.Contains(t, csp, "frame-ancestors 'none'", tc.path)
		require.NotContains(t, csp, "unsafe-inline", tc.path)
		require.NotContains(t, csp, "unsafe-eval", tc.path)
		require.Contains(t, body, tc.contains, tc.path)
	}

	// The page has no inline script or style (the CSP would block them) and
	// loads nothing from elsewhere.
	_, html := get("/admin/")
	require.NotRegexp(t, `<script>|<style|style="|\son[a-z]+=`, html)
	require.NotContains(t, html, "http://")
	require.NotContains(t, html, "https://")
	require.Contains(t, html, `<link rel="icon" href="/admin/favicon.svg" type="image/svg+xml">`)

	// The JS never turns API text into HTML.
	_, js := get("/admin/app.js")
	require.NotContains(t, js, "innerHTML")
	require.NotContains(t, js, "insertAdjacentHTML")
	require.NotContains(t, js, "document.write")

	// The page holds no data: serving it needs no token, but everything it
	// calls does.
	status, _ := app.Do(t, http.MethodGet, "/v1/integrations", nil, nil)
	require.Equal(t, http.StatusUnauthorized, status)

	// Anything else under /admin/ is a 404, not the page.
	resp, _ = get("/admin/nope.js")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
