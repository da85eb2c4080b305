package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/httpapi"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/signature"
	"github.com/cioloader/cioloader/internal/stitch"
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

// serve runs until ctx ends, then shuts down in reverse order: stop accepting
// and finish in-flight requests, flush the batcher, close the pool.
func serve(ctx context.Context, cfg *config.Config, dbURL string, log *slog.Logger) error {
	if err := postgres.MigrateUp(ctx, dbURL); err != nil {
		return err
	}
	m := metrics.New()
	lim := stitch.Limits{MaxDepth: cfg.MaxDepth, MaxKeys: cfg.MaxKeys}
	store, err := postgres.Open(ctx, dbURL, postgres.Config{
		MaxConns: int32(cfg.DBMaxConns), Limits: lim, MaxColumns: cfg.MaxColumns, MaxSubtables: cfg.MaxSubtables,
	}, log, m)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.EnsureIntegrationObjects(ctx); err != nil {
		return err
	}
	batcher := ingest.NewBatcher(store, ingest.BatcherConfig{
		Workers: cfg.BatchWorkers, MaxEvents: cfg.BatchMaxEvents, QueueLen: cfg.QueueLen, Deadline: cfg.CommitDeadline,
	}, log, m)
	srv := httpapi.New(httpapi.Options{
		AdminToken: cfg.AdminToken, MaxBodyBytes: cfg.MaxBodyBytes, MaxEvents: cfg.MaxEvents, InflightBytes: cfg.InflightBytes,
		SigWindow: signature.Window{MaxFuture: cfg.SigMaxFuture, MaxAge: cfg.SigMaxAge}, Limits: lim,
	}, store, store, batcher, &admin.Service{Store: store, BaseURL: cfg.BaseURL()}, log, m)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	hs := srv.HTTPServer(cfg.Addr)
	bctx, stopBatcher := context.WithCancel(context.Background())
	sctx, stopStore := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = batcher.Run(bctx) })
	wg.Go(func() { _ = store.Run(sctx) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("cioloader listening", "addr", ln.Addr().String(), "public_url", cfg.BaseURL())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}
	log.Info("shutting down: no new requests; finishing in-flight batches")
	sdCtx, cancel := context.WithTimeout(context.Background(), 2*cfg.CommitDeadline+5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sdCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopBatcher()
	stopStore()
	wg.Wait()
	log.Info("stopped")
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	return nil
}
