// Package httpapi is the HTTP face of cioloader and the only package that
// imports echo: ingest, the admin API and page, health and metrics. Handlers
// return errors; HTTPErrorHandler maps them to status codes in one place.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/budget"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/metrics"
)

// Readiness reports whether the database is usable.
type Readiness interface {
	Ready(ctx context.Context) error
}

// Options configures the server.
type Options struct {
	AdminToken    string
	MaxBodyBytes  int64
	InflightBytes int64         // the in-flight memory budget
	MemoryFactor  int64         // budget charged per body byte read
	ShareBytes    int64         // most of the budget one integration may hold
	BodyTimeout   time.Duration // to receive a body once its headers are in
}

// Server is cioloader's HTTP server.
type Server struct {
	e        *echo.Echo
	opt      Options
	ingester *ingest.Service
	ready    Readiness
	admin    *admin.Service
	log      *slog.Logger
	m        *metrics.Metrics
	now      func() time.Time
	inflight *budget.Budget
}

// New builds the server and its routes.
func New(opt Options, ing *ingest.Service, ready Readiness, adm *admin.Service, log *slog.Logger, m *metrics.Metrics) *Server {
	s := &Server{opt: opt, ingester: ing, ready: ready, admin: adm, log: log, m: m,
		now: time.Now, inflight: budget.New(opt.InflightBytes, opt.ShareBytes)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(nosniff, s.requestID, s.linger, s.observe)
	s.e = e
	s.routes()
	return s
}

// Handler is the server as an http.Handler (for tests and custom listeners).
func (s *Server) Handler() http.Handler { return s.e }

// HTTPServer returns a net/http server with timeouts, so a slow client cannot
// pin a connection: headers within 5 s, the whole request within 30 s (an
// ingest body within Options.BodyTimeout: see readBody).
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      35 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(s.m.Handler()))

	for _, p := range []string{"/v1/webhooks/:token", "/v1/webhook"} {
		e.POST(p, s.ingest)
		e.Match([]string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions}, p, methodNotAllowed)
	}

	a := e.Group("/v1/integrations", s.requireAdmin)
	a.POST("", s.createIntegration)
	a.GET("", s.listIntegrations)
	a.GET("/:id", s.getIntegration)
	a.DELETE("/:id", s.deleteIntegration)
	a.PATCH("/:id", s.patchIntegration)
	a.POST("/:id/webhook-urls", s.generateURL)
	a.GET("/:id/webhook-urls", s.listURLs)
	a.DELETE("/:id/webhook-urls/:url_id", s.revokeURL)
	a.PUT("/:id/signing-key", s.setSigningKey)
	a.DELETE("/:id/signing-key", s.clearSigningKey)
	a.POST("/:id/erasures", s.createErasure)
	a.GET("/:id/erasures", s.listErasures)
	a.GET("/:id/rejections", s.listRejections)
	a.GET("/:id/activity", s.integrationActivity)
	a.GET("/:id/imports", s.listImports)
	a.GET("/:id/readers", s.listReaders)
	a.PUT("/:id/readers/:role", s.grantReader)
	a.DELETE("/:id/readers/:role", s.revokeReader)

	s.adminPage()
}

func methodNotAllowed(c echo.Context) error {
	c.Response().Header().Set("Allow", http.MethodPost)
	return echo.NewHTTPError(http.StatusMethodNotAllowed, "only POST is accepted on an ingest URL")
}

const requestIDKey = "request_id"

// nosniff marks every response, errors and 404s included, as being of the
// type it declares, so no browser runs an error body as a script or page.
func nosniff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}

func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		c.Set(requestIDKey, id)
		c.Response().Header().Set("X-Request-Id", id)
		return next(c)
	}
}

// observe counts and times requests by route template (never by token) and
// logs one line per request at debug.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		s.m.Requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		s.m.RequestDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		if s.log.Enabled(c.Request().Context(), slog.LevelDebug) { // no argument boxing on the hot path otherwise
			s.log.Debug("request", "method", c.Request().Method, "route", route, "status", status,
				"duration", time.Since(start), "request_id", c.Get(requestIDKey))
		}
		return nil
	}
}

// handleError is the one place errors become status codes. Ingest never
// answers 500 (Customer.io delays a 500 by an hour): anything unknown there is
// a 503 with Retry-After.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := s.classify(err, c)
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, map[string]string{"error": msg})
}

func (s *Server) classify(err error, c echo.Context) (int, string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg, ok := he.Message.(string)
		if !ok {
			msg = http.StatusText(he.Code)
		}
		if he.Code == http.StatusNotFound && msg == "Not Found" {
			msg = "no such route: " + c.Request().Method + " " + c.Request().URL.Path
		}
		return he.Code, msg
	}
	var de *domain.Error
	msg := "internal error (request id " + requestIDOf(c) + ")"
	if errors.As(err, &de) {
		msg = de.Message
	}
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return http.StatusNotFound, msgOr(msg, de, "not found")
	case errors.Is(err, domain.ErrInvalid):
		return http.StatusBadRequest, msgOr(msg, de, "bad request")
	case errors.Is(err, domain.ErrConflict):
		return http.StatusConflict, msgOr(msg, de, "conflict")
	case errors.Is(err, domain.ErrUnauthorized):
		return http.StatusUnauthorized, msgOr(msg, de, "unauthorized")
	case errors.Is(err, domain.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, msgOr(msg, de, "request body too large")
	case errors.Is(err, domain.ErrUnavailable):
		s.log.Warn("unavailable", "route", c.Path(), "err", err, "request_id", requestIDOf(c))
		return http.StatusServiceUnavailable, msgOr(msg, de, "temporarily unavailable; retry shortly")
	}
	s.log.Error("unexpected error", "route", c.Path(), "err", err, "request_id", requestIDOf(c))
	if isIngest(c) {
		return http.StatusServiceUnavailable, "temporarily unable to store events; retry shortly (request id " + requestIDOf(c) + ")"
	}
	return http.StatusInternalServerError, msg
}

func msgOr(msg string, de *domain.Error, fallback string) string {
	if de == nil {
		return fallback
	}
	return msg
}

func requestIDOf(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

func isIngest(c echo.Context) bool {
	p := c.Path()
	return p == "/v1/webhooks/:token" || p == "/v1/webhook"
}
