// Package app assembles cioloader's parts — store, batcher, HTTP server — from
// a Config, and runs them with an orderly shutdown. cmd/cioloader and the
// end-to-end tests use the same assembly.
package app

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

// App is a running-ready cioloader.
type App struct {
	Config  *config.Config
	Store   *postgres.Store
	Batcher *ingest.Batcher
	Server  *httpapi.Server
	Metrics *metrics.Metrics
	log     *slog.Logger
}

// New migrates the database, opens the store, upgrades existing integrations'
// objects and builds the server. Close releases what New opened.
func New(ctx context.Context, cfg *config.Config, dbURL string, log *slog.Logger) (*App, error) {
	notes, err := postgres.CheckPrivileges(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		log.Info(n)
	}
	if err := postgres.MigrateUp(ctx, dbURL); err != nil {
		return nil, err
	}
	m := metrics.New()
	store, err := postgres.Open(ctx, dbURL, StoreConfig(cfg), log, m)
	if err != nil {
		return nil, err
	}
	if err := store.EnsureIntegrationObjects(ctx); err != nil {
		store.Close()
		return nil, err
	}
	m.WatchImports(store.ImportedEvents)
	batcher, err := ingest.NewBatcher(store, ingest.BatcherConfig{
		Workers: cfg.BatchWorkers, Stall: cfg.BatchStall, GrowTo: cfg.BatchGrowTo, Linger: cfg.BatchLinger, MaxEvents: cfg.BatchMaxEvents, QueueLen: cfg.QueueLen, Deadline: cfg.CommitDeadline,
	}, log, m)
	if err != nil {
		store.Close()
		return nil, err
	}
	ing := ingest.NewService(ingest.ServiceConfig{
		MaxEvents: cfg.MaxEvents, Limits: FlattenLimits(cfg), SigWindow: SignatureWindow(cfg),
	}, store, batcher, store, m, nil)
	srv := httpapi.New(httpapi.Options{
		AdminToken: cfg.AdminToken, MaxBodyBytes: cfg.MaxBodyBytes, InflightBytes: cfg.InflightBytes,
		MemoryFactor: cfg.MemoryFactor, ShareBytes: cfg.IntegrationShare(), BodyTimeout: cfg.BodyTimeout,
	}, ing, store, &admin.Service{Store: store, BaseURL: cfg.BaseURL(), TombstoneTTL: cfg.TombstoneTTL}, log, m)
	return &App{Config: cfg, Store: store, Batcher: batcher, Server: srv, Metrics: m, log: log}, nil
}

// StoreConfig is cfg's share for the Postgres store.
func StoreConfig(cfg *config.Config) postgres.Config {
	return postgres.Config{
		MaxConns: int32(cfg.DBMaxConns), MaxColumns: cfg.MaxColumns, MaxSubtables: cfg.MaxSubtables, TokenTTL: cfg.TokenCacheTTL,
	}
}

// FlattenLimits is cfg's share for stitch.Flatten.
func FlattenLimits(cfg *config.Config) stitch.Limits {
	return stitch.Limits{MaxDepth: cfg.MaxDepth, MaxKeys: cfg.MaxKeys}
}

// SignatureWindow is cfg's share for signature.Verify.
func SignatureWindow(cfg *config.Config) signature.Window {
	return signature.Window{MaxFuture: cfg.SigMaxFuture, MaxAge: cfg.SigMaxAge}
}

// Close releases the database pool.
func (a *App) Close() { a.Store.Close() }

// Run serves on ln until ctx ends, then shuts down in reverse order: stop
// accepting and let in-flight requests finish (their batches commit and are
// answered), stop the batcher once drained, stop the listener/flusher.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	hs := a.Server.HTTPServer(ln.Addr().String())
	bctx, stopBatcher := context.WithCancel(context.Background())
	sctx, stopStore := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Batcher.Run(bctx) })
	wg.Go(func() { _ = a.Store.Run(sctx) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	a.log.Info("cioloader listening", "addr", ln.Addr().String(), "public_url", a.Config.BaseURL())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}
	a.log.Info("shutting down: no new requests; finishing in-flight batches")
	sd, cancel := context.WithTimeout(context.Background(), 2*a.Config.CommitDeadline+5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sd); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	stopBatcher()
	stopStore()
	wg.Wait()
	a.log.Info("stopped")
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", runErr)
	}
	return nil
}
