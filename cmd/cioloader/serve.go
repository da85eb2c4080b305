package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/postgres"
)

func serveCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the HTTP server (embedded Postgres when DATABASE_URL is unset)",
		Long:  "Run the HTTP server. With no DATABASE_URL it starts an embedded Postgres under CIOLOADER_DATA_DIR/pg.",
		Args:  noArgs("serve takes no arguments, only flags"),
	}
	return configured(cmd, e, func(ctx context.Context, cfg *config.Config, _ []string) error { return runServe(ctx, e, cfg) })
}

func runServe(ctx context.Context, e env, cfg *config.Config) error {
	var err error
	log := newLogger(cfg, e.stderr)
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.close()
	// Reach the database first, so that a bad DATABASE_URL fails with its one
	// line before anything else is logged (serve migrates again: no change).
	if err := postgres.MigrateUp(ctx, db.url); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if db.embedded && cfg.AdminToken == "" {
		if cfg.AdminToken, err = embeddedAdminToken(cfg, e, log); err != nil {
			return err
		}
	}
	if cfg.AdminToken == "" {
		log.Warn("CIOLOADER_ADMIN_TOKEN is not set: the admin API and page answer 401")
	}
	return serve(ctx, cfg, db.url, log)
}

// serve runs the app until ctx ends.
func serve(ctx context.Context, cfg *config.Config, dbURL string, log *slog.Logger) error {
	tuneGC()
	a, err := app.New(ctx, cfg, dbURL, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if cfg.DebugAddr != "" {
		go servePprof(cfg.DebugAddr, log)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return a.Run(ctx, ln)
}

// servePprof exposes Go's profiler on a separate, operator-chosen address.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("pprof listening", "addr", addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Warn("pprof server stopped", "err", err)
	}
}

// tuneGC trades a little memory for less collection work: ingest allocates
// short-lived request data at a high rate. GOGC and GOMEMLIMIT still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(110 << 20)
	}
}
