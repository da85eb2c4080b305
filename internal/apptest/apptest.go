// Package apptest starts the real cioloader on a fresh real Postgres database
// for end-to-end tests: the same assembly as `cioloader serve`, behind an
// httptest server.
package apptest

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/testdb"
)

// AdminToken is the admin token every test app uses.
const AdminToken = "test-admin-token-0123456789abcdef"

// App is a running server.
type App struct {
	*app.App
	URL         string // http://127.0.0.1:PORT
	AdminToken  string
	DatabaseURL string
	stop        func()
}

// Option adjusts the configuration before the app starts.
type Option func(*config.Config)

// Start runs the app on a new database and stops it at t.Cleanup.
func Start(t testing.TB, opts ...Option) *App {
	t.Helper()
	return StartOn(t, testdb.New(t), opts...)
}

// StartOn runs the app on an existing database (a second replica, a restart).
func StartOn(t testing.TB, dbURL string, opts ...Option) *App {
	t.Helper()
	cfg, err := config.Load(flag.NewFlagSet("test", flag.ContinueOnError), nil, func(string) string { return "" })
	require.NoError(t, err)
	cfg.AdminToken = AdminToken
	cfg.Addr = "127.0.0.1:0"
	cfg.DBMaxConns = 8
	for _, o := range opts {
		o(cfg)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	if cfg.PublicURL == "" {
		cfg.PublicURL = url
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), cfg, dbURL, log)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx, ln)
	}()
	res := &App{App: a, URL: url, AdminToken: cfg.AdminToken, DatabaseURL: dbURL}
	var stopped bool
	res.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		a.Close()
	}
	t.Cleanup(res.stop)
	return res
}

// Stop shuts the app down (as SIGTERM would) and waits for it.
func (a *App) Stop() { a.stop() }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
