package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// adminToken is the CIOLOADER_ADMIN_TOKEN of every server a test starts,
// unless the test unsets it.
const adminToken = "e2e-admin-token-0123456789abcdef"

// server is one `cioloader serve` child process on a loopback port.
type server struct {
	name   string
	Addr   string // 127.0.0.1:PORT
	URL    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stdout *tailBuffer
	stderr *tailBuffer
	exited chan struct{} // closed once the process has been waited for
}

// startServer runs `cioloader serve` with env (on top of the defaults below;
// an empty value unsets a variable) on a free port and waits until /readyz
// answers 200. The process is SIGKILLed at cleanup if still running, and its
// output goes to the test log if the test failed.
func startServer(t *testing.T, name string, env map[string]string, readyWithin time.Duration) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s := spawn(t, name, env)
		err := s.waitReady(readyWithin)
		if err == nil {
			t.Logf("%s: pid %d ready on %s", name, s.cmd.Process.Pid, s.URL)
			return s
		}
		// Another process may take the port between picking and binding it.
		if s.hasExited() && strings.Contains(s.stderr.String(), "address already in use") && attempt < 3 {
			continue
		}
		s.kill()
		t.Fatalf("%s: %v\nstderr:\n%s", name, err, s.stderr.Tail(60))
	}
}

func spawn(t *testing.T, name string, env map[string]string) *server {
	t.Helper()
	addr := freeAddr(t)
	vars := map[string]string{
		"CIOLOADER_ADDR":         addr,
		"CIOLOADER_PUBLIC_URL":   "http://" + addr,
		"CIOLOADER_ADMIN_TOKEN":  adminToken,
		"CIOLOADER_LOG_FORMAT":   "json",
		"CIOLOADER_LOG_LEVEL":    "info",
		"CIOLOADER_DB_MAX_CONNS": "8",
	}
	maps.Copy(vars, env)
	s := &server{name: name, Addr: addr, URL: "http://" + addr,
		stdout: &tailBuffer{}, stderr: &tailBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(binPath, "serve")
	s.cmd.Env = childEnv(vars)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.cmd.WaitDelay = 5 * time.Second
	// If the test binary dies, so does the server (it is not left serving).
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, s.cmd.Start(), name)
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.kill()
		// With CIOLOADER_E2E_RACE=1 the server reports data races itself.
		if strings.Contains(s.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race", name)
		}
		if t.Failed() {
			t.Logf("%s (pid %d) stdout:\n%s\n%s stderr (tail):\n%s", name, s.cmd.Process.Pid, s.stdout.Tail(20), name, s.stderr.Tail(120))
		}
	})
	return s
}

// childEnv is this process's environment without anything that configures
// cioloader, plus vars.
func childEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "CIOLOADER_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func (s *server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if s.hasExited() {
			return fmt.Errorf("exited before it was ready (%s)", s.cmd.ProcessState)
		}
		if status, _ := s.get("/readyz"); status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not 200 within %s", within)
		}
		select {
		case <-s.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get fetches path with a short timeout; status 0 means no answer.
func (s *server) get(path string) (int, http.Header) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return 0, nil
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) hasExited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func (s *server) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(sig), "%s: send %s", s.name, sig)
}

// wait waits up to within for the process to exit and returns its exit
// code (-1 when a signal ended it).
func (s *server) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("%s (pid %d) still running %s after it was told to stop", s.name, s.pid(), within)
		return 0
	}
}

// kill SIGKILLs the process if it still runs and waits for it.
func (s *server) kill() {
	if s.hasExited() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
}

// tailBuffer is a concurrency-safe output sink that keeps the last ~1 MiB.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailKeep = 1 << 20

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*tailKeep {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-tailKeep:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Tail returns the last n lines.
func (b *tailBuffer) Tail(n int) string {
	lines := bytes.Split(bytes.TrimRight([]byte(b.String()), "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// connRefused reports whether nothing listens on addr any more.
func connRefused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// processAlive reports whether pid is a live (not zombie) process.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		if st := stat[i+2]; st == 'Z' || st == 'X' {
			return false
		}
	}
	return true
}

// runCLI runs a cioloader command (not serve) with env and returns its
// combined output; it must exit 0 within 30 s.
func runCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = childEnv(env)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "cioloader %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}
