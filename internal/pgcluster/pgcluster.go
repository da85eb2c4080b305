//go:build unix

// Package pgcluster runs a local PostgreSQL cluster from the server binaries
// installed on the machine: throwaway (tests) or persistent (`cioloader serve`
// without DATABASE_URL).
//
// Layout under the cluster directory (Options.Dir):
//
//	data/              the cluster (initdb -D); created via data.initdb/ and renamed, so a killed initdb never leaves half a cluster
//	run/               the unix socket, unless that path would be too long (then a short directory under os.TempDir())
//	log/postgres.log   the server log (appended to, never rotated)
//	owner.lock         locked by the process that owns the running server (see supervise.go)
//
// Settings the package manages (port, sockets, fsync, ...) are rewritten into
// data/cioloader.conf at every start; postgresql.conf includes it.
//
// When the process runs as root, the server runs as an unprivileged OS user
// (Options.User, default "postgres") because PostgreSQL refuses to run as
// root. That user must be able to reach the cluster directory. If it cannot
// (for example Dir is under /root, mode 0700), the cluster is placed under
// <that user's home>/cioloader-clusters/<name>-<hash of Dir> instead (falling
// back to os.TempDir()), a warning is logged with both paths, and the same
// Dir maps to the same place on every start. No permissions outside the
// cluster's own directories are ever changed.
package pgcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// DefaultDatabase is created by Start when missing.
	DefaultDatabase = "cioloader"
	// Superuser is the cluster's bootstrap role (initdb -U); URL connects as it.
	Superuser = "postgres"

	defaultUser           = "postgres"
	defaultMaxConnections = 200
	defaultStartTimeout   = 60 * time.Second
	confName              = "cioloader.conf"
	// A socket path is <dir>/.s.PGSQL.<port> and PostgreSQL caps it at 107
	// bytes, so the directory may take 107 - len("/.s.PGSQL.65535").
	maxSocketDirLen = 107 - 15
	portAttempts    = 5
)

// Options configure Start. Only Dir is required.
type Options struct {
	// Dir holds the cluster (see the package documentation for the layout).
	// It is created if missing.
	Dir string
	// Port is the TCP port on 127.0.0.1 (it also names the unix socket).
	// 0 picks a free port, and picks again if another process takes it
	// before the server binds it. A Cluster keeps its port across Stop and
	// (*Cluster).Start so its URLs stay valid.
	Port int
	// Fsync keeps the server crash-safe. The zero value (false) turns off
	// fsync, synchronous_commit and full_page_writes and is for throwaway test
	// clusters only; everything else must set Fsync: true.
	Fsync bool
	// Logger receives start/stop/relocation messages; nil discards them.
	Logger *slog.Logger
	// Settings are extra postgresql.conf settings (name -> value, unquoted),
	// applied after and overriding the managed ones.
	Settings map[string]string
	// MaxConnections is max_connections; 0 means 200.
	MaxConnections int
	// BinDir, when set, is the only place the server binaries are looked
	// for (instead of PATH and /usr/lib/postgresql/*/bin).
	BinDir string
	// User is the OS user the server runs as when this process is root;
	// "" means "postgres". Ignored when not root.
	User string
	// StartTimeout bounds initdb+start (each) and stop; 0 means 60s.
	StartTimeout time.Duration
	// StopWithProcess runs postgres as a direct child of this process rather
	// than daemonised by pg_ctl, and (on Linux) has the kernel ask it for a
	// fast shutdown if this process dies without calling Stop — so a killed
	// or timed-out test binary leaves no server behind. For throwaway
	// clusters; a persistent one is better daemonised (the default).
	StopWithProcess bool

	// pickPort returns a candidate free port; tests replace it.
	pickPort func() (int, error)
}

// Cluster is a local PostgreSQL cluster started by Start.
// Its methods are safe for concurrent use.
type Cluster struct {
	opt     Options
	log     *slog.Logger
	bin     binaries
	major   string
	owner   *runAs // nil unless this process is root
	dir     string // the cluster directory actually used (Dir, or its relocation)
	dataDir string
	logPath string

	mu        sync.Mutex
	sockDir   string
	port      int
	portFixed bool
	running   bool
	adopted   bool      // the server was already running (another process's, or left behind)
	ownerLock *os.File  // held while this process owns the server (see Owned)
	child     *exec.Cmd // the postmaster, when started with StopWithProcess
	pid       int
}

// runAs is the unprivileged user the server runs as when we are root.
type runAs struct {
	name     string
	uid, gid int
	home     string
}

// Start finds the server binaries, creates the cluster on first use (initdb,
// trust authentication on the unix socket and 127.0.0.1 only) or reuses the
// one in Dir, starts it (adopting it instead if it is already running, e.g.
// left over by a killed process), waits until it accepts connections and
// creates database "cioloader" if missing.
func Start(ctx context.Context, opt Options) (*Cluster, error) {
	// Two processes starting the same cluster at once (`make run` and a CLI
	// command right after it) would both run initdb: take turns.
	unlock, err := lockDir(ctx, opt.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := prepare(ctx, opt)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		// Do not leave a half-started server behind (e.g. the database could
		// not be created) — but never stop one another process is using
		// (Stop refuses when another process owns it).
		if !c.Adopted() {
			_ = c.Stop(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	return c, nil
}

// Adopted reports whether the last start found the server already running
// (started by another process, such as `cioloader serve`) instead of starting
// it. Such a cluster is best left running when this process is done with it;
// whether this process may stop it at all is Owned.
func (c *Cluster) Adopted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adopted
}

// Start starts a cluster that Stop stopped, on the same port and socket
// directory, so URLs handed out before keep working (if the port has been
// taken meanwhile it fails rather than move). Starting a running cluster is a
// no-op. This process owns the server afterwards unless another live process
// does (see Owned).
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start(ctx)
}

// start is Start with c.mu held.
func (c *Cluster) start(ctx context.Context) error {
	if c.running {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.StartTimeout)
	defer cancel()
	began := time.Now()

	adopted, err := c.adoptRunning(ctx)
	if err != nil {
		return err
	}
	if !adopted {
		if err := c.clearStalePid(ctx); err != nil {
			return err
		}
		if err := c.startServer(ctx); err != nil {
			return err
		}
	}
	c.running, c.adopted = true, adopted
	if err := c.claim(); err != nil {
		return err
	}
	if err := c.ensureDatabase(ctx, DefaultDatabase); err != nil {
		return err
	}
	c.log.Info("embedded postgres started", "dir", c.dir, "port", c.port, "socket_dir", c.sockDir,
		"pid", c.pid, "reused_running_server", adopted, "owner", c.ownerLock != nil, "fsync", c.opt.Fsync,
		"elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}

// Stop shuts the server down (fast mode: running transactions are rolled
// back) and waits until it has exited. Stopping a stopped cluster is a no-op.
// Only the owner may stop it: otherwise Stop returns ErrNotOwner and the
// server keeps running for the process that owns it.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	if c.ownerLock == nil {
		return ErrNotOwner
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opt.StartTimeout)
		defer cancel()
	}
	var err error
	if c.child != nil {
		err = c.stopChild(ctx)
	} else {
		err = c.pgCtlStop(ctx)
	}
	if err != nil {
		return err
	}
	c.running, c.child, c.pid = false, nil, 0
	c.release()
	c.log.Info("embedded postgres stopped", "dir", c.dir, "port", c.port)
	return nil
}

// URL is a connection URL for database over the unix socket, e.g.
// postgres://postgres@/cioloader?host=/x/run&port=5433&sslmode=disable.
func (c *Cluster) URL(database string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url(database)
}

// TCPURL is a connection URL for database over TCP on 127.0.0.1.
func (c *Cluster) TCPURL(database string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.port, url.PathEscape(database))
}

func (c *Cluster) url(database string) string {
	return socketURL(c.sockDir, c.port, database)
}

func socketURL(sockDir string, port int, database string) string {
	host := strings.ReplaceAll(url.QueryEscape(sockDir), "%2F", "/")
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", Superuser, url.PathEscape(database), host, port)
}

// Port is the server's port.
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// SocketDir is the directory holding the unix socket.
func (c *Cluster) SocketDir() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sockDir
}

// Dir is the cluster directory in use: Options.Dir, or where it was
// relocated to (see the package documentation).
func (c *Cluster) Dir() string { return c.dir }

// DataDir is the PostgreSQL data directory (Dir()/data).
func (c *Cluster) DataDir() string { return c.dataDir }

// LogFile is the server log.
func (c *Cluster) LogFile() string { return c.logPath }

// BinDir is the directory of the server binaries in use.
func (c *Cluster) BinDir() string { return c.bin.dir }

// PID is the postmaster's process id, 0 when stopped.
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// prepare validates opt, finds binaries, lays out the directories and runs
// initdb when the cluster does not exist yet.
func prepare(ctx context.Context, opt Options) (*Cluster, error) {
	if opt.Dir == "" {
		return nil, errors.New("embedded postgres: Options.Dir is required")
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	if opt.MaxConnections == 0 {
		opt.MaxConnections = defaultMaxConnections
	}
	if opt.StartTimeout == 0 {
		opt.StartTimeout = defaultStartTimeout
	}
	if opt.User == "" {
		opt.User = defaultUser
	}
	if opt.pickPort == nil {
		opt.pickPort = freeLoopbackPort
	}
	c := &Cluster{opt: opt, log: opt.Logger, port: opt.Port, portFixed: opt.Port != 0}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.bin, err = findBinaries(opt.BinDir); err != nil {
		return nil, err
	}
	if c.major, err = majorVersion(ctx, c.bin.postgres); err != nil {
		return nil, err
	}
	if c.owner, err = lookupRunAs(opt.User); err != nil {
		return nil, err
	}
	if c.dir, err = c.clusterDir(ctx, dir); err != nil {
		return nil, err
	}
	c.dataDir = filepath.Join(c.dir, "data")
	if err := c.mkdirOwned(filepath.Join(c.dir, "log")); err != nil {
		return nil, err
	}
	c.logPath = filepath.Join(c.dir, "log", "postgres.log")
	f, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	_ = f.Close()
	if err := c.chown(c.logPath); err != nil {
		return nil, err
	}
	if c.sockDir, err = c.socketDir(ctx); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func lookupRunAs(name string) (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: this process runs as root, which PostgreSQL refuses, and the OS user %q to run it as was not found "+
			"(create it, e.g. useradd --system --home-dir /var/lib/postgresql %s, or run as a non-root user): %w", name, name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("embedded postgres: user %q: %w", name, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("embedded postgres: user %q is uid 0; PostgreSQL refuses to run as root", name)
	}
	return &runAs{name: name, uid: uid, gid: gid, home: u.HomeDir}, nil
}

// clusterDir creates dir if needed and returns the directory the cluster
// will live in: dir itself, or (root only) a relocation the server's user
// can reach.
func (c *Cluster) clusterDir(ctx context.Context, dir string) (string, error) {
	if c.owner == nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("embedded postgres: %w", err)
		}
		return dir, nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		// Parents we create are 0755 so the server's user can traverse them.
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", fmt.Errorf("embedded postgres: %w", err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("embedded postgres: %w", err)
		}
		if err := c.chown(dir); err != nil {
			return "", err
		}
	}
	if c.reachable(ctx, dir) {
		return dir, nil
	}
	alt, err := c.relocate(ctx, dir)
	if err != nil {
		return "", err
	}
	c.log.Warn("embedded postgres: cluster directory relocated because the server's OS user cannot reach the requested one "+
		"(make every parent directory traversable by that user, e.g. chmod o+x, to keep it in place)",
		"requested", dir, "actual", alt, "user", c.owner.name)
	return alt, nil
}

// relocate returns <home of the server's user or os.TempDir()>/cioloader-clusters/<name>-<hash(dir)>.
func (c *Cluster) relocate(ctx context.Context, dir string) (string, error) {
	sum := sha256.Sum256([]byte(dir))
	leaf := sanitizeName(filepath.Base(dir)) + "-" + hex.EncodeToString(sum[:6])
	var errs []error
	for _, parent := range []string{c.owner.home, os.TempDir()} {
		if parent == "" || !c.reachable(ctx, parent) {
			continue
		}
		root := filepath.Join(parent, "cioloader-clusters")
		if err := os.Mkdir(root, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			errs = append(errs, err)
			continue
		}
		if err := c.checkOurs(root, true); err != nil {
			errs = append(errs, err)
			continue
		}
		alt := filepath.Join(root, leaf)
		if err := c.mkdirOwned(alt); err != nil {
			errs = append(errs, err)
			continue
		}
		if c.reachable(ctx, alt) {
			return alt, nil
		}
	}
	return "", fmt.Errorf("embedded postgres: the OS user %q that runs the server cannot reach %s (a parent directory is not traversable, e.g. /root is 0700) "+
		"and no reachable place to relocate the cluster was found; choose a directory it can reach or run as a non-root user: %w",
		c.owner.name, dir, errors.Join(errs...))
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func sanitizeName(s string) string {
	s = unsafeName.ReplaceAllString(s, "_")
	if len(s) > 32 {
		s = s[:32]
	}
	if s == "" || s == "." || s == ".." {
		s = "cluster"
	}
	return s
}

// reachable reports whether the server's user can chdir into dir. It runs
// `postgres --version` as that user with dir as working directory: Go
// switches credentials before chdir, so this is the kernel's own answer
// (modes, ACLs, every parent), not a guess from permission bits.
func (c *Cluster) reachable(ctx context.Context, dir string) bool {
	if c.owner == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin.postgres, "--version")
	cmd.Dir = dir
	cmd.Env = c.env()
	cmd.SysProcAttr = c.procAttr()
	return cmd.Run() == nil
}

// checkOurs rejects a directory that is a symlink or not owned by us or the
// server's user (a squatted name in a shared directory such as /tmp).
func (c *Cluster) checkOurs(path string, rootOK bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return fmt.Errorf("embedded postgres: %s is not a directory", path)
	}
	if uid := int(st.Uid); uid != c.runUID() && !(rootOK && uid == os.Geteuid()) {
		return fmt.Errorf("embedded postgres: %s belongs to uid %d, not to the server's user", path, uid)
	}
	return nil
}

func (c *Cluster) runUID() int {
	if c.owner != nil {
		return c.owner.uid
	}
	return os.Geteuid()
}

// socketDir returns <dir>/run when short enough, else a short directory of
// ours under os.TempDir() (or /tmp), stable for a given cluster directory.
func (c *Cluster) socketDir(ctx context.Context) (string, error) {
	run := filepath.Join(c.dir, "run")
	if len(run) <= maxSocketDirLen {
		return run, c.mkdirOwned(run)
	}
	sum := sha256.Sum256([]byte(c.dir))
	name := "cioloader-pg-" + hex.EncodeToString(sum[:6])
	for _, parent := range []string{os.TempDir(), "/tmp"} {
		d := filepath.Join(parent, name)
		if len(d) > maxSocketDirLen || !c.reachable(ctx, parent) {
			continue
		}
		if err := c.mkdirOwned(d); err == nil && c.checkOurs(d, false) == nil {
			return d, nil
		}
		// The stable name is taken by someone else: use a fresh one.
		d, err := os.MkdirTemp(parent, "cioloader-pg-")
		if err != nil {
			continue
		}
		if err := c.chown(d); err != nil {
			return "", err
		}
		return d, nil
	}
	return "", fmt.Errorf("embedded postgres: no socket directory shorter than %d bytes (cluster dir %s is too long and so is os.TempDir())", maxSocketDirLen, c.dir)
}

// mkdirOwned creates path (0700) if missing and gives it to the server's user.
func (c *Cluster) mkdirOwned(path string) error {
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	return c.chown(path)
}

func (c *Cluster) chown(path string) error {
	if c.owner == nil {
		return nil
	}
	if err := os.Lchown(path, c.owner.uid, c.owner.gid); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	return nil
}

// initdb creates the cluster in data.initdb/ and renames it to data/ once
// complete, so an interrupted initdb is simply redone.
func (c *Cluster) initdb(ctx context.Context) error {
	if b, err := os.ReadFile(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		if v := strings.TrimSpace(string(b)); v != c.major {
			return fmt.Errorf("embedded postgres: %s was created by PostgreSQL %s but the server binaries in %s are PostgreSQL %s; "+
				"install PostgreSQL %s, upgrade the cluster with pg_upgrade, or remove it", c.dataDir, v, c.bin.dir, c.major, v)
		}
		return nil
	}
	if entries, err := os.ReadDir(c.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("embedded postgres: %s exists but is not a PostgreSQL data directory (no PG_VERSION); move it away", c.dataDir)
	}
	began := time.Now()
	tmp := c.dataDir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	if err := c.mkdirOwned(tmp); err != nil {
		return err
	}
	args := []string{"-D", tmp, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--locale=C"}
	if !c.opt.Fsync {
		args = append(args, "--no-sync")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.StartTimeout)
	defer cancel()
	if out, err := c.command(ctx, c.bin.initdb, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("embedded postgres: initdb: %w: %s", err, lastLines(out, 20))
	}
	hba := "# Managed by cioloader: trust on the unix socket and on 127.0.0.1 only.\n" +
		"local all all trust\n" +
		"host  all all 127.0.0.1/32 trust\n"
	if err := c.writeOwned(filepath.Join(tmp, "pg_hba.conf"), []byte(hba)); err != nil {
		return err
	}
	conf, err := os.OpenFile(filepath.Join(tmp, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	_, err = fmt.Fprintf(conf, "\n# Managed by cioloader: rewritten at every start.\ninclude = '%s'\n", confName)
	if err := errors.Join(err, conf.Close()); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	_ = os.Remove(c.dataDir) // an empty leftover
	if err := os.Rename(tmp, c.dataDir); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	c.log.Info("embedded postgres: cluster created", "data_dir", c.dataDir, "version", c.major,
		"elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}

func (c *Cluster) writeOwned(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	return c.chown(path)
}

// writeConf writes the managed settings for this start.
func (c *Cluster) writeConf() error {
	var b strings.Builder
	set := func(k, v string) { fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(v, "'", "''")) }
	b.WriteString("# Managed by cioloader (internal/pgcluster): rewritten at every start; edits are lost.\n")
	set("listen_addresses", "127.0.0.1")
	set("port", strconv.Itoa(c.port))
	set("unix_socket_directories", c.sockDir)
	set("unix_socket_permissions", "0700")
	set("max_connections", strconv.Itoa(c.opt.MaxConnections))
	set("lc_messages", "C")
	// JIT compiles a query whose estimated cost passes jit_above_cost. The
	// planner costs a BRIN range scan's heap pages as if they were random, so
	// the README's rudder_opens_by_day over 10 M events (7 days, 37 k rows)
	// is estimated at 0.5 M and spent 0.74 s compiling for a 0.13 s query
	// (issue 26). The analyst queries here are short: compiling never pays.
	set("jit", "off")
	if c.opt.Fsync {
		set("fsync", "on")
		set("synchronous_commit", "on")
		set("full_page_writes", "on")
	} else {
		set("fsync", "off")
		set("synchronous_commit", "off")
		set("full_page_writes", "off")
	}
	keys := make([]string, 0, len(c.opt.Settings))
	for k := range c.opt.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		set(k, c.opt.Settings[k])
	}
	return c.writeOwned(filepath.Join(c.dataDir, confName), []byte(b.String()))
}

// startServer starts the postmaster, choosing another port if the picked one
// turns out to be taken (only when the port is not fixed). The first choice
// is the port of the previous start, if any.
func (c *Cluster) startServer(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		if !c.portFixed {
			p, err := c.opt.pickPort()
			if err != nil {
				return fmt.Errorf("embedded postgres: pick a port: %w", err)
			}
			if prev := c.previousPort(); attempt == 1 && prev != 0 {
				p = prev
			}
			c.port = p
		}
		if err := c.writeConf(); err != nil {
			return err
		}
		var err error
		if c.opt.StopWithProcess {
			err = c.startChild(ctx)
		} else {
			err = c.pgCtlStart(ctx)
		}
		var inUse errPortInUse
		if !errors.As(err, &inUse) {
			if err == nil {
				// From now on the port is part of the URLs handed out.
				c.portFixed = true
			}
			return err
		}
		if c.portFixed || attempt == portAttempts {
			return fmt.Errorf("embedded postgres: port %d on 127.0.0.1 is already in use: %w", c.port, err)
		}
		c.log.Info("embedded postgres: port taken, retrying with another", "port", c.port)
	}
}

type errPortInUse struct{ log string }

func (e errPortInUse) Error() string { return "server log:\n" + e.log }

func startFailure(what string, err error, log string) error {
	if strings.Contains(log, "Address already in use") || strings.Contains(log, "using socket file") {
		return errPortInUse{log: log}
	}
	return fmt.Errorf("embedded postgres: %s: %w; server log:\n%s", what, err, log)
}

func (c *Cluster) pgCtlStart(ctx context.Context) error {
	off := fileSize(c.logPath)
	args := []string{"start", "-D", c.dataDir, "-l", c.logPath, "-w", "-s", "-t", timeoutSecs(ctx)}
	if out, err := c.command(ctx, c.bin.pgCtl, args...).CombinedOutput(); err != nil {
		// pg_ctl may have been cut short (ctx cancelled by a SIGTERM) after it
		// launched the postmaster: do not leave that server running.
		if pm, perr := readPostmasterPid(c.dataDir); perr == nil {
			if alive, _, _ := processInfo(pm.pid); alive {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				_ = c.command(sctx, c.bin.pgCtl, "stop", "-D", c.dataDir, "-m", "fast", "-w", "-s").Run()
				cancel()
			}
		}
		return startFailure("pg_ctl start", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out))), c.logSince(off))
	}
	pm, err := readPostmasterPid(c.dataDir)
	if err != nil {
		return fmt.Errorf("embedded postgres: started, but %w", err)
	}
	c.pid = pm.pid
	return nil
}

func (c *Cluster) startChild(ctx context.Context) error {
	off := fileSize(c.logPath)
	logf, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(c.bin.postgres, "-D", c.dataDir)
	cmd.Dir = c.dataDir
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = logf, logf // files, so no copying goroutines
	cmd.SysProcAttr = c.procAttr()
	cmd.SysProcAttr.Setpgid = true // a terminal's Ctrl-C reaches us, not the server
	tieToParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("embedded postgres: start postgres: %w", err)
	}
	pid := cmd.Process.Pid
	fail := func(err error) error {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return startFailure("postgres", err, c.logSince(off))
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// A hot standby (a data directory made by pg_basebackup -R) reports
		// "standby" once it accepts read-only connections.
		if pm, err := readPostmasterPid(c.dataDir); err == nil && pm.pid == pid && (pm.status == "ready" || pm.status == "standby") {
			c.child, c.pid = cmd, pid
			return nil
		}
		if alive, _, _ := processInfo(pid); !alive {
			return fail(errors.New("exited during startup"))
		}
		// Only the postmaster's own FATAL/PANIC lines mean startup failed:
		// clients connecting meanwhile log "FATAL: the database system is
		// starting up" from their own backends.
		own := fmt.Sprintf("[%d] ", pid)
		if l := c.logSince(off); strings.Contains(l, own+"FATAL:") || strings.Contains(l, own+"PANIC:") {
			return fail(errors.New("failed during startup"))
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("not ready in time: %w", ctx.Err()))
		case <-tick.C:
		}
	}
}

func (c *Cluster) stopChild(ctx context.Context) error {
	cmd := c.child
	_ = cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitOK(err)
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
	select {
	case err := <-done:
		return exitOK(err)
	case <-time.After(5 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("embedded postgres: did not stop in time; killed it: %w", ctx.Err())
}

// exitOK treats any exit as stopped: a server that died on its own is stopped too.
func exitOK(err error) error {
	var ee *exec.ExitError
	if err == nil || errors.As(err, &ee) {
		return nil
	}
	return fmt.Errorf("embedded postgres: wait: %w", err)
}

func (c *Cluster) pgCtlStop(ctx context.Context) error {
	args := []string{"stop", "-D", c.dataDir, "-m", "fast", "-w", "-s", "-t", timeoutSecs(ctx)}
	out, err := c.command(ctx, c.bin.pgCtl, args...).CombinedOutput()
	if err == nil {
		return nil
	}
	if _, alive := c.postmaster(); !alive {
		return nil // not running (stopped by someone else, or died)
	}
	return fmt.Errorf("embedded postgres: pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
}

// adoptRunning takes over a server already running on this data directory
// (e.g. left by a killed process, since pg_ctl daemonises it): it must
// answer on the socket its postmaster.pid names and report this data
// directory.
func (c *Cluster) adoptRunning(ctx context.Context) (bool, error) {
	pm, err := readPostmasterPid(c.dataDir)
	if err != nil || pm.port == 0 || pm.sockDir == "" {
		return false, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(pctx, socketURL(pm.sockDir, pm.port, "postgres")+"&connect_timeout=2")
	if err != nil {
		return false, nil
	}
	defer conn.Close(context.Background())
	var dataDir string
	if err := conn.QueryRow(pctx, "SHOW data_directory").Scan(&dataDir); err != nil || !samePath(dataDir, c.dataDir) {
		return false, nil
	}
	if c.portFixed && pm.port != c.port {
		return false, fmt.Errorf("embedded postgres: the cluster in %s is already running on port %d, not %d; stop it first (pg_ctl stop -D %s)",
			c.dataDir, pm.port, c.port, c.dataDir)
	}
	c.port, c.sockDir, c.pid, c.portFixed = pm.port, pm.sockDir, pm.pid, true
	c.log.Info("embedded postgres: joining the server already running on this cluster (another cioloader process's, or one left running)",
		"pid", pm.pid, "port", pm.port)
	return true, nil
}

// clearStalePid handles a postmaster.pid left by a killed server.
// PostgreSQL ignores one whose pid is gone, but refuses one whose pid is
// still "alive": reused by another process of the server's user, or the
// killed postmaster itself lingering as a zombie (containers whose init does
// not reap). Where /proc shows what is really running, the file is removed
// once no process of the old server (postmaster or orphaned backend) works in
// the data directory any more; elsewhere PostgreSQL decides.
func (c *Cluster) clearStalePid(ctx context.Context) error {
	pm, err := readPostmasterPid(c.dataDir)
	if err != nil {
		return nil
	}
	if alive, cwd, known := processInfo(pm.pid); alive && known && samePath(cwd, c.dataDir) {
		return fmt.Errorf("embedded postgres: a server (pid %d) is running on %s but does not accept connections on %s; "+
			"wait for it or stop it (pg_ctl stop -D %s)", pm.pid, c.dataDir, pm.sockDir, c.dataDir)
	}
	pids, known := processesIn(c.dataDir)
	if !known {
		return nil
	}
	// Orphaned backends exit as soon as they notice the postmaster is gone.
	for wait := time.Now().Add(10 * time.Second); len(pids) > 0 && time.Now().Before(wait) && ctx.Err() == nil; {
		time.Sleep(50 * time.Millisecond)
		pids, _ = processesIn(c.dataDir)
	}
	if len(pids) > 0 {
		return fmt.Errorf("embedded postgres: processes %v of a previous server still run in %s; stop them first", pids, c.dataDir)
	}
	if err := os.Remove(filepath.Join(c.dataDir, "postmaster.pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("embedded postgres: remove stale postmaster.pid: %w", err)
	}
	removeStaleSocketLock(pm)
	c.log.Warn("embedded postgres: removed stale postmaster.pid left by a server that was killed", "old_pid", pm.pid)
	return nil
}

// ensureDatabase creates database name if missing.
func (c *Cluster) ensureDatabase(ctx context.Context, name string) error {
	var conn *pgx.Conn
	var err error
	// The server may still refuse briefly right after pg_ctl returns.
	for i := 0; ; i++ {
		conn, err = pgx.Connect(ctx, c.url("postgres"))
		if err == nil || i == 50 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("embedded postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // duplicate_database: created concurrently
		return fmt.Errorf("embedded postgres: create database %s: %w", name, err)
	}
	return nil
}

// command runs a server program as the server's user.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	cmd.Env = c.env()
	cmd.SysProcAttr = c.procAttr()
	cmd.WaitDelay = 5 * time.Second // never hang on a pipe a daemon inherited
	return cmd
}

func (c *Cluster) procAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if c.owner != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(c.owner.uid), Gid: uint32(c.owner.gid)}
	}
	return attr
}

// env is ours minus libpq/server variables (PGDATA, PGPORT, ...) and locale
// settings, so messages are untranslated and nothing overrides the options.
func (c *Cluster) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG") ||
			(c.owner != nil && strings.HasPrefix(kv, "HOME=")) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C", "LANG=C")
	if c.owner != nil {
		env = append(env, "HOME="+c.owner.home)
	}
	return env
}

type postmasterPid struct {
	pid     int
	port    int
	sockDir string
	status  string
}

// readPostmasterPid parses data/postmaster.pid: pid, data dir, start time,
// port, first socket dir, listen address, shmem key, status.
func readPostmasterPid(dataDir string) (postmasterPid, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return postmasterPid{}, err
	}
	lines := strings.Split(string(b), "\n")
	line := func(i int) string {
		if i < len(lines) {
			return strings.TrimSpace(lines[i])
		}
		return ""
	}
	var pm postmasterPid
	if pm.pid, err = strconv.Atoi(line(0)); err != nil || pm.pid <= 0 {
		return postmasterPid{}, fmt.Errorf("unreadable postmaster.pid in %s", dataDir)
	}
	pm.port, _ = strconv.Atoi(line(3))
	pm.sockDir = line(4)
	pm.status = line(7)
	return pm, nil
}

func samePath(a, b string) bool {
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func timeoutSecs(ctx context.Context) string {
	secs := 60
	if d, ok := ctx.Deadline(); ok {
		secs = max(1, int(time.Until(d).Seconds()))
	}
	return strconv.Itoa(secs)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns the end of what the server logged after offset off.
func (c *Cluster) logSince(off int64) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return lastLines(b, 30)
}

func lastLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// lockDir takes an exclusive lock for dir's cluster (a file in the temp
// directory named after dir, so it works wherever the cluster itself lives)
// and returns its release.
func lockDir(ctx context.Context, dir string) (func(), error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	sum := sha256.Sum256([]byte(abs))
	path := filepath.Join(os.TempDir(), fmt.Sprintf("cioloader-pg-%x.lock", sum[:8]))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("embedded postgres: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("embedded postgres: waiting for another process starting the same cluster: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
