// Package testdb gives tests a real PostgreSQL database: fresh, migrated to
// the latest control schema, and private to the test.
//
// The server is chosen once per test binary (package), in this order:
//
//  1. TEST_DATABASE_URL, a server URL (its role must be allowed to create
//     databases); every test binary on it gets its own template and databases.
//  2. A Docker engine, if one answers within 3s: testcontainers-go's postgres
//     module (image postgres:15-alpine, or TESTDB_IMAGE).
//  3. A local throwaway cluster (internal/pgcluster) in a temp directory,
//     fsync off, started as a child of the test binary so the kernel stops it
//     if the binary is killed; temp directories of dead test binaries are
//     removed at the next start.
//
// TESTDB_BACKEND=local or =docker skips the detection (a TEST_DATABASE_URL
// still wins). Migrations run once into a template database; each New is a
// CREATE DATABASE ... TEMPLATE of it (~10-50ms), dropped when the test ends.
//
// Use it with
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
//
// so the server (or the template, on a shared server) is removed afterwards.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/cioloader/cioloader/internal/pgcluster"
	"github.com/cioloader/cioloader/internal/postgres"
)

const (
	envURL     = "TEST_DATABASE_URL"
	envBackend = "TESTDB_BACKEND"
	envImage   = "TESTDB_IMAGE"

	defaultImage  = "postgres:15-alpine"
	dockerTimeout = 3 * time.Second
	startTimeout  = 3 * time.Minute
	tempPrefix    = "cioloader-testdb-"
)

// server is the database server of this test binary.
type server struct {
	kind      string // "url", "docker" or "local"
	adminURL  string
	cluster   *pgcluster.Cluster
	container *tcpostgres.PostgresContainer
	dir       string // local cluster's temp directory

	tmplMu   sync.Mutex
	template string
	tmplErr  error

	cloneMu sync.Mutex
}

// The one server of this test binary; tests run in one process, so this
// state is per package by construction.
var (
	mu        sync.Mutex
	current   *server
	startErr  error
	shutDown  bool
	nameRE    = regexp.MustCompile(`[^a-z0-9]+`)
	errClosed = errors.New("testdb: used after Main shut the server down")
)

// New returns the URL of a fresh, migrated, empty database for this test,
// dropped (WITH (FORCE)) when the test and its cleanups end.
func New(t testing.TB) string {
	t.Helper()
	s := get(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tmpl, err := s.ensureTemplate(ctx, t)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	name := dbName(t.Name())
	if err := s.clone(ctx, name, tmpl); err != nil {
		t.Fatalf("testdb: create database %s from template: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.drop(ctx, name); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return DatabaseURL(s.adminURL, name)
}

// Server returns the admin URL of the server in use (a superuser on the
// "postgres" database, or TEST_DATABASE_URL as given) and, when it is the
// local cluster, the cluster, so outage tests can Stop and Start it (its
// URLs stay valid across a restart). The server is shared by all tests of the
// package: a test that stops it must not be parallel (t.Parallel tests run
// after the sequential ones) and must start it again.
func Server(t testing.TB) (adminURL string, cluster *pgcluster.Cluster) {
	t.Helper()
	s := get(t)
	return s.adminURL, s.cluster
}

// DatabaseURL is serverURL with its database replaced by database
// (URL or keyword/value form).
func DatabaseURL(serverURL, database string) string {
	if strings.HasPrefix(serverURL, "postgres://") || strings.HasPrefix(serverURL, "postgresql://") {
		if u, err := url.Parse(serverURL); err == nil {
			u.Path, u.RawPath = "/"+database, ""
			return u.String()
		}
	}
	return serverURL + " dbname='" + strings.ReplaceAll(database, "'", `\'`) + "'"
}

// Main runs the tests, then removes what this binary created: the local
// cluster and its directory, the container, or the template database on a
// TEST_DATABASE_URL server. It exits with the tests' status.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func get(t testing.TB) *server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shutDown {
		t.Fatal(errClosed)
	}
	if current == nil && startErr == nil {
		began := time.Now()
		current, startErr = start()
		if startErr == nil {
			t.Logf("testdb: %s server ready in %s", current.kind, time.Since(began).Round(time.Millisecond))
		}
	}
	if startErr != nil {
		t.Fatalf("testdb: no PostgreSQL server for tests: %v", startErr)
	}
	return current
}

func start() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if u := os.Getenv(envURL); u != "" {
		s := &server{kind: "url", adminURL: u}
		if err := s.exec(ctx, "SELECT 1"); err != nil {
			return nil, fmt.Errorf("%s: %w", envURL, err)
		}
		return s, nil
	}
	backend := os.Getenv(envBackend)
	switch backend {
	case "", "local", "docker":
	default:
		return nil, fmt.Errorf("%s=%q: want local or docker", envBackend, backend)
	}
	if backend != "local" {
		err := dockerHealthy(dockerTimeout)
		if err == nil {
			return startContainer(ctx)
		}
		if backend == "docker" {
			return nil, fmt.Errorf("%s=docker, but: %w", envBackend, err)
		}
	}
	s, err := startLocal(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (or set %s to a server URL, or run a Docker engine)", err, envURL)
	}
	return s, nil
}

// dockerHealthy asks the Docker engine for its info, giving up after
// timeout (testcontainers' host discovery has no deadline of its own, and
// panics in some setups, so it runs aside and may be abandoned).
func dockerHealthy(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("docker: %v", r)
			}
		}()
		p, err := testcontainers.NewDockerProvider()
		if err != nil {
			done <- err
			return
		}
		done <- p.Health(ctx) // closes p
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("docker engine did not answer within %s", timeout)
	}
}

func startContainer(ctx context.Context) (*server, error) {
	image := os.Getenv(envImage)
	if image == "" {
		image = defaultImage
	}
	ctr, err := tcpostgres.Run(ctx, image,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithCmd("postgres", "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "max_connections=200"),
	)
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("docker postgres container: %w", err)
	}
	u, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("docker postgres container: %w", err)
	}
	return &server{kind: "docker", adminURL: u, container: ctr}, nil
}

func startLocal(ctx context.Context) (*server, error) {
	sweepStale()
	dir, err := os.MkdirTemp("", tempPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	// Traversable, so a server running as the "postgres" user (when tests
	// run as root) can reach its data inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{
		Dir:             dir,
		Fsync:           false,
		StopWithProcess: true,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &server{kind: "local", adminURL: c.URL("postgres"), cluster: c, dir: dir}, nil
}

// sweepStale removes local cluster directories whose test binary is gone
// (killed or timed out before Main could clean up). Their servers were
// stopped by the kernel along with the binary.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, d := range dirs {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(d), tempPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || !gone(pid) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if p, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && !gone(p) {
				continue
			}
		}
		_ = os.RemoveAll(d)
	}
}

func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// ensureTemplate creates and migrates this binary's template database once.
// Nothing stays connected to it, and it refuses connections afterwards,
// because CREATE DATABASE ... TEMPLATE fails while anyone is connected.
func (s *server) ensureTemplate(ctx context.Context, t testing.TB) (string, error) {
	s.tmplMu.Lock()
	defer s.tmplMu.Unlock()
	if s.template != "" || s.tmplErr != nil {
		return s.template, s.tmplErr
	}
	began := time.Now()
	name := "cioloader_tmpl_" + randHex(6)
	s.tmplErr = func() error {
		if err := s.exec(ctx, "CREATE DATABASE "+ident(name)); err != nil {
			return fmt.Errorf("create template database: %w", err)
		}
		if err := postgres.MigrateUp(ctx, DatabaseURL(s.adminURL, name)); err != nil {
			_ = s.dropTemplate(ctx, name)
			return fmt.Errorf("migrate template database: %w", err)
		}
		if err := s.exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
			return err
		}
		return s.exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
	}()
	if s.tmplErr == nil {
		s.template = name
		t.Logf("testdb: template %s migrated in %s", name, time.Since(began).Round(time.Millisecond))
	}
	return s.template, s.tmplErr
}

// clone creates database name from tmpl, one at a time, retrying while a
// straggling session still holds the template.
func (s *server) clone(ctx context.Context, name, tmpl string) error {
	s.cloneMu.Lock()
	defer s.cloneMu.Unlock()
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for attempt := 1; ; attempt++ {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tmpl))
		if err == nil || !isCode(err, "55006") || attempt == 5 { // object_in_use: "source database is being accessed by other users"
			return err
		}
		_, _ = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", tmpl)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

func (s *server) drop(ctx context.Context, name string) error {
	return s.exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
}

func (s *server) dropTemplate(ctx context.Context, name string) error {
	return errors.Join(
		s.exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE false"),
		s.drop(ctx, name))
}

// exec runs one statement on a fresh admin connection: nothing is kept
// open, so a restarted server (outage tests) needs no reconnect logic.
func (s *server) exec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

func shutdown() error {
	mu.Lock()
	defer mu.Unlock()
	s := current
	current, shutDown = nil, true
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	switch s.kind {
	case "url":
		if s.template != "" {
			err = s.dropTemplate(ctx, s.template)
		}
	case "docker":
		err = testcontainers.TerminateContainer(s.container)
	case "local":
		err = errors.Join(s.cluster.Stop(ctx), os.RemoveAll(s.dir))
	}
	if err != nil {
		return fmt.Errorf("testdb: shut down %s server: %w", s.kind, err)
	}
	return nil
}

// dbName is a valid, unique database name that says which test it is for.
func dbName(testName string) string {
	slug := strings.Trim(nameRE.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	if len(slug) > 40 {
		slug = slug[:40]
	}
	return "t_" + slug + "_" + randHex(4)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
