package httpapi

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// web holds the admin page: plain HTML, one script, one stylesheet and its
// icon. No build step, nothing fetched from elsewhere at run time.
//
//go:embed web/index.html web/app.js web/app.css web/favicon.svg
var web embed.FS

// pageCSP lets the page load only its own files and talk only to this
// server: no inline script or style, no framing, no plugins.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// pageAsset is one embedded file of the admin page.
type pageAsset struct {
	file        string
	contentType string
}

var pageAssets = map[string]pageAsset{
	"/admin/":        {"web/index.html", "text/html; charset=utf-8"},
	"/admin/app.js":  {"web/app.js", "text/javascript; charset=utf-8"},
	"/admin/app.css": {"web/app.css", "text/css; charset=utf-8"},
	// Named by the page's <link rel="icon">, so no browser asks for /favicon.ico.
	"/admin/favicon.svg": {"web/favicon.svg", "image/svg+xml"},
}

// adminPage mounts the admin web page (issue 6) at /admin/. The page itself
// is public (it holds no data); everything it shows comes from the admin JSON
// API, which requires the bearer token the user types in.
func (s *Server) adminPage() {
	redirect := func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, "/admin/")
	}
	s.e.GET("/admin", redirect)
	s.e.HEAD("/admin", redirect)
	for path, a := range pageAssets {
		body, err := web.ReadFile(a.file)
		if err != nil {
			panic("httpapi: admin page asset missing from the binary: " + a.file)
		}
		h := servePageAsset(a.contentType, body)
		s.e.GET(path, h)
		s.e.HEAD(path, h)
	}
}

func servePageAsset(contentType string, body []byte) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		return c.Blob(http.StatusOK, contentType, body)
	}
}
