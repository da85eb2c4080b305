package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
)

func runServe(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "serve", "", "Run the HTTP server. With no DATABASE_URL it starts an embedded Postgres under CIOLOADER_DATA_DIR/pg.")
	cfg, err := loadConfig(fs, args, e)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.close()
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
	a, err := app.New(ctx, cfg, dbURL, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return a.Run(ctx, ln)
}
