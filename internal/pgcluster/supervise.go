//go:build unix

package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Ownership. Several processes may use one cluster (two `cioloader serve`,
// a CLI command beside a server); exactly one of them owns the server: the
// one that started it. Only the owner stops it (Stop) and restarts it when
// the postmaster dies (Run). Ownership is an exclusive flock on
// Dir()/owner.lock held while the owner runs, so the kernel drops it however
// the owner exits (kill -9 included), and the file never names a pid that
// could be reused. A server whose owner is gone — killed, or exited leaving
// the server to the clients still connected (Release) — is taken over by the
// next process that starts or supervises it.

// ErrNotOwner is Stop's answer when another live process owns the server.
var ErrNotOwner = errors.New("embedded postgres: another process started this server and is the one to stop it")

// superviseInterval is how often Run checks the postmaster.
const superviseInterval = time.Second

// Owned reports whether this process owns the running server (see above).
func (c *Cluster) Owned() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ownerLock != nil
}

// Release gives up ownership and leaves the server running; the next process
// that starts or supervises the cluster takes it over. Stop Run first, or it
// takes ownership back.
func (c *Cluster) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release()
}

func (c *Cluster) release() {
	if c.ownerLock != nil {
		_ = c.ownerLock.Close() // drops the flock
		c.ownerLock = nil
	}
}

// claim takes ownership unless another live process holds it (not an error).
func (c *Cluster) claim() error {
	if c.ownerLock != nil {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(c.dir, "owner.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil
		}
		return fmt.Errorf("embedded postgres: lock %s: %w", f.Name(), err)
	}
	c.ownerLock = f
	return nil
}

// Run supervises the server until ctx ends. Every second it takes over a
// server whose owner has exited, and, when it owns the server and the
// postmaster has died, restarts it on the same port and socket so the URLs
// handed out (a pgx pool reconnects by itself) keep working. A server stopped
// with Stop stays stopped. A failed restart is logged and tried again.
func (c *Cluster) Run(ctx context.Context) error {
	tick := time.NewTicker(superviseInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := c.supervise(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("embedded postgres: restart failed; trying again", "err", err)
		}
	}
}

// supervise is one check of Run.
func (c *Cluster) supervise(ctx context.Context) error {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return nil
	}
	owned := c.ownerLock != nil
	err := c.claim()
	if !owned && c.ownerLock != nil {
		c.log.Info("embedded postgres: took the server over; the process that owned it has exited", "pid", c.pid)
	}
	owned = c.ownerLock != nil
	c.mu.Unlock()
	if err != nil || !owned {
		return err
	}
	if _, alive := c.postmaster(); alive {
		return nil
	}
	return c.restart(ctx)
}

// restart starts the server again after its postmaster died, taking turns
// with other processes starting the cluster (one of them may have started it
// meanwhile: then it is adopted).
func (c *Cluster) restart(ctx context.Context) error {
	unlock, err := lockDir(ctx, c.opt.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.ownerLock == nil {
		return nil // stopped or released meanwhile
	}
	if pid, alive := c.postmaster(); alive {
		c.pid = pid
		return nil
	}
	c.log.Warn("embedded postgres: the server died; restarting it", "old_pid", c.pid)
	if c.child != nil {
		_ = c.child.Wait() // it has exited: reap it
		c.child = nil
	}
	c.running = false
	err = c.start(ctx)
	// running means "started and not stopped": a failed restart is tried again.
	c.running = true
	if err == nil {
		c.log.Info("embedded postgres restarted", "pid", c.pid, "port", c.port)
	}
	return err
}

// postmaster returns the pid in postmaster.pid and whether that process is
// alive (and, where /proc tells, works in this data directory, so a reused
// pid does not count).
func (c *Cluster) postmaster() (int, bool) {
	pm, err := readPostmasterPid(c.dataDir)
	if err != nil {
		return 0, false
	}
	alive, cwd, known := processInfo(pm.pid)
	return pm.pid, alive && (!known || samePath(cwd, c.dataDir))
}

// previousPort is the port of the cluster's last start (from the managed
// settings file), 0 if unknown. Starting on it again keeps the URLs of other
// processes still using the cluster valid when one of them restarts it.
func (c *Cluster) previousPort() int {
	f, err := os.Open(filepath.Join(c.dataDir, confName))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "port = "); ok {
			p, _ := strconv.Atoi(strings.Trim(v, "'"))
			return p
		}
	}
	return 0
}

// removeStaleSocketLock removes the socket's lock file when it names the
// dead postmaster pm: PostgreSQL refuses to start while that pid is "alive",
// which an unreaped (zombie) postmaster still is for a while after kill -9.
func removeStaleSocketLock(pm postmasterPid) {
	if pm.sockDir == "" || pm.port == 0 {
		return
	}
	path := filepath.Join(pm.sockDir, fmt.Sprintf(".s.PGSQL.%d.lock", pm.port))
	b, err := os.ReadFile(path)
	if first, _, _ := strings.Cut(string(b), "\n"); err == nil && strings.TrimSpace(first) == strconv.Itoa(pm.pid) {
		_ = os.Remove(path)
	}
}
