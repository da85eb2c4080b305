package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/pgcluster"
	"github.com/cioloader/cioloader/internal/token"
)

// cliConfigFlags are the configuration flags shown in the help of commands
// other than serve (which shows them all); the others are accepted too.
var cliConfigFlags = map[string]bool{
	"database-url": true, "data-dir": true, "public-url": true, "addr": true, "log-level": true, "log-format": true,
}

// configured gives c the configuration flags, generated from config.Config's
// tags, over the defaults and the environment, and makes c run fn with the
// configuration once the flags are parsed; a bad setting is a configuration
// error (exit 1). Commands other than serve list only cliConfigFlags in
// their help.
func configured(c *cobra.Command, e env, fn func(ctx context.Context, cfg *config.Config, args []string) error) *cobra.Command {
	cfg := &config.Config{}
	err := cfg.Bind(c.Flags(), e.getenv)
	if c.Name() != "serve" {
		for _, f := range cfg.Fields() {
			c.Flags().Lookup(f.Flag).Hidden = !cliConfigFlags[f.Flag]
		}
		c.Long += "\n\nThe other configuration flags (see cioloader serve --help) are accepted too."
	}
	c.RunE = func(c *cobra.Command, args []string) error {
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		return fn(c.Context(), cfg, args)
	}
	return c
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

// cliLogger is the logger of the commands other than serve: silent, so that
// a failure is exactly one line on stderr, unless CIOLOADER_LOG_LEVEL=debug
// asks to see what happens (embedded Postgres start, ...).
func cliLogger(cfg *config.Config, e env, command string) *slog.Logger {
	if cfg.LogLevel != "debug" {
		return slog.New(slog.DiscardHandler)
	}
	return newLogger(cfg, e.stderr).With("command", command)
}

// database is the Postgres a command uses: DATABASE_URL, or the embedded one.
type database struct {
	url      string
	embedded bool
	cluster  *pgcluster.Cluster // nil with DATABASE_URL
	adopted  bool               // the embedded server was already running (e.g. under serve)
	close    func()
}

// openDatabase is serve's database: DATABASE_URL when set; otherwise it
// starts (or joins) the embedded cluster under DATA_DIR/pg, says so in the
// log, and supervises it until closed (see pgcluster.Cluster.Run: a server
// it owns is restarted if it dies, one whose owner has exited is taken over).
// Close stops the server only if this process owns it (it started it, or took
// it over) and nobody else uses it; see closeEmbedded.
func openDatabase(ctx context.Context, cfg *config.Config, log *slog.Logger) (*database, error) {
	if cfg.DatabaseURL != "" {
		return &database{url: cfg.DatabaseURL, close: func() {}}, nil
	}
	db, err := startEmbedded(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	appName := fmt.Sprintf("cioloader-serve-%d", os.Getpid())
	db.url += "&application_name=" + appName
	log.Info("using the embedded postgres (set DATABASE_URL to use your own)", "dir", db.cluster.Dir(), "owner", db.cluster.Owned())
	stopSupervisor := supervise(ctx, db.cluster)
	db.close = func() {
		stopSupervisor()
		closeEmbedded(db.cluster, appName, log)
	}
	return db, nil
}

// supervise runs cl's supervisor until the returned stop is called (not when
// ctx ends: the server is still needed while serve drains), and stop waits
// for it, so that it cannot restart a server being stopped.
func supervise(ctx context.Context, cl *pgcluster.Cluster) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cl.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

// openCLIDatabase is the database of a one-shot command (integrations, urls,
// migrate, replay). With the embedded cluster it joins a running server
// (typically the one `cioloader serve` uses) and leaves it running; a
// server it had to start itself is stopped at close, unless other clients
// (a serve started meanwhile, psql) are connected to it by then.
func openCLIDatabase(ctx context.Context, cfg *config.Config, log *slog.Logger) (*database, error) {
	if cfg.DatabaseURL != "" {
		return &database{url: cfg.DatabaseURL, close: func() {}}, nil
	}
	db, err := startEmbedded(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	// Our connections carry this name, so that the check of other clients
	// does not count those still closing on the server side.
	appName := fmt.Sprintf("cioloader-cli-%d", os.Getpid())
	db.url += "&application_name=" + appName
	db.close = func() {
		if db.adopted {
			db.cluster.Release()
			log.Debug("embedded postgres left running: it was running before this command")
			return
		}
		closeEmbedded(db.cluster, appName, log)
	}
	return db, nil
}

// closeEmbedded is what a process does with the embedded server when it is
// done with it. A server another live process owns is never stopped: that
// process started it and still relies on it (issue 12: a second serve used to
// stop the first one's database). The owner stops it, unless other clients
// are connected (another serve, a CLI command, psql): then it leaves it
// running and gives up ownership, and the next serve supervising it takes it
// over within a second and stops it when it exits in turn. So stopping one of
// two servers never interrupts the other, and the last one out stops
// Postgres.
func closeEmbedded(cl *pgcluster.Cluster, appName string, log *slog.Logger) {
	if !cl.Owned() {
		log.Info("embedded postgres left running: another process started it and stops it")
		return
	}
	if n := cl.OtherClients(appName); n != 0 {
		cl.Release()
		log.Info("embedded postgres left running for the other clients connected to it; the next cioloader serve takes it over", "clients", n)
		return
	}
	if err := cl.Stop(context.Background()); err != nil {
		log.Warn("stopping embedded postgres", "err", err)
	}
}

// startEmbedded starts the embedded cluster under DATA_DIR/pg, or joins it
// when it is already running; close is left to the caller.
func startEmbedded(ctx context.Context, cfg *config.Config, log *slog.Logger) (*database, error) {
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "pg"))
	if err != nil {
		return nil, err
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Fsync: true, Logger: log})
	if err != nil {
		if strings.HasPrefix(err.Error(), "embedded postgres") {
			return nil, err
		}
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	return &database{url: cl.URL(pgcluster.DefaultDatabase), embedded: true, cluster: cl, adopted: cl.Adopted()}, nil
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
