package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/pgcluster"
	"github.com/cioloader/cioloader/internal/token"
)

// loadConfig reads the configuration; flag mistakes are usage errors.
func loadConfig(fs *flag.FlagSet, args []string, e env) (*config.Config, error) {
	cfg, err := config.Load(fs, args, e.getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil && strings.Contains(err.Error(), "flag") {
		return nil, usagef("%v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// newLogger logs text on a terminal and JSON otherwise.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// database is the Postgres a command uses: DATABASE_URL, or the embedded one.
type database struct {
	url      string
	embedded bool
	close    func()
}

// openDatabase returns DATABASE_URL when set; otherwise it starts (or joins)
// the embedded cluster under DATA_DIR/pg and says so in the log.
func openDatabase(ctx context.Context, cfg *config.Config, log *slog.Logger) (*database, error) {
	if cfg.DatabaseURL != "" {
		return &database{url: cfg.DatabaseURL, close: func() {}}, nil
	}
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "pg"))
	if err != nil {
		return nil, err
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Fsync: true, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	log.Info("using the embedded postgres (set DATABASE_URL to use your own)", "dir", dir)
	return &database{url: cl.URL("cioloader"), embedded: true, close: func() {
		if err := cl.Stop(context.Background()); err != nil {
			log.Warn("stopping embedded postgres", "err", err)
		}
	}}, nil
}

// embeddedAdminToken returns the admin token kept in DATA_DIR/admin-token,
// creating it (and printing it once) on first run.
func embeddedAdminToken(cfg *config.Config, e env, log *slog.Logger) (string, error) {
	path := filepath.Join(cfg.DataDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		log.Info("admin token read from file (set CIOLOADER_ADMIN_TOKEN to choose your own)", "file", path)
		return strings.TrimSpace(string(b)), nil
	}
	tok, err := token.New()
	if err != nil {
		return "", err
	}
	tok = "adm_" + strings.TrimPrefix(tok, token.Prefix)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save admin token: %w", err)
	}
	fmt.Fprintf(e.stdout, "\nGenerated admin token (shown once; kept in %s):\n\n    %s\n\n", path, tok)
	return tok, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
