package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/pgcluster"
	"github.com/cioloader/cioloader/internal/token"
)

// loadConfig reads the configuration from the environment and the flags
// registered on fs plus the configuration flags; flags may follow positional
// arguments, which fs.Args() then holds. Flag mistakes are usage errors (exit
// 2), a bad setting is a configuration error (exit 1).
func loadConfig(fs *flag.FlagSet, args []string, e env) (*config.Config, error) {
	flags, positional := splitArgs(fs, args)
	var cfg *config.Config
	err := parseWith(fs, func() error {
		var err error
		cfg, err = config.Load(fs, flags, e.getenv)
		return err
	})
	if err != nil {
		if _, ok := err.(usageError); ok || err == flag.ErrHelp {
			return nil, err
		}
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return nil, err
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
	if n := otherClients(cl, appName); n != 0 {
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

// otherClients counts the client connections to the cluster other than the
// one asking and those named appName; -1 when it cannot tell (then the
// cluster is left running). Connections that are closing (a command that has
// just exited) get a second to go away.
func otherClients(cl *pgcluster.Cluster, appName string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cl.URL("postgres"))
	if err != nil {
		return -1
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(time.Second); ; time.Sleep(100 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> $1`, appName).Scan(&n); err != nil {
			return -1
		}
		if n == 0 || time.Now().After(deadline) {
			return n
		}
	}
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
