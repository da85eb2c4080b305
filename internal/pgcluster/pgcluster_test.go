//go:build unix

package pgcluster

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// reachableDir is a fresh test directory the server's OS user can reach
// even when the tests run as root (t.TempDir's parent is 0700).
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o711))
		require.NoError(t, os.Chmod(dir, 0o711))
	}
	return filepath.Join(dir, "pg")
}

func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		t.Skip(err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startT(t *testing.T, opt Options) *Cluster {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	c, err := Start(ctx, opt)
	require.NoError(t, err)
	t.Logf("Start took %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func query(t *testing.T, url, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var out string
	require.NoError(t, conn.QueryRow(ctx, sql, args...).Scan(&out))
	return out
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

func TestStartStopReuse(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	dir := reachableDir(t)
	ctx := context.Background()

	c := startT(t, Options{Dir: dir})
	require.Equal(t, dir, c.Dir())
	require.Equal(t, "1", query(t, c.URL(DefaultDatabase), "SELECT 1::text"))
	require.Equal(t, "1", query(t, c.TCPURL(DefaultDatabase), "SELECT 1::text"))
	require.Equal(t, "off", query(t, c.URL("postgres"), "SHOW fsync"))
	require.Equal(t, "off", query(t, c.URL("postgres"), "SHOW jit"), "no JIT for the short analyst queries (issue 26)")
	require.Equal(t, "200", query(t, c.URL("postgres"), "SHOW max_connections"))
	require.Contains(t, c.URL("x"), "postgres://postgres@/x?host="+c.SocketDir()+"&port=")
	exec1(t, c.URL(DefaultDatabase), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	require.NoError(t, c.Stop(ctx))
	require.NoError(t, c.Stop(ctx), "second Stop is a no-op")
	_, err := os.Stat(filepath.Join(c.DataDir(), "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "stopped and waited")

	// Same directory again: reused, not re-initialised; Fsync now on.
	c2 := startT(t, Options{Dir: dir, Fsync: true, Settings: map[string]string{"application_name": "it's"}})
	require.Equal(t, c.DataDir(), c2.DataDir())
	require.Equal(t, "42", query(t, c2.URL(DefaultDatabase), "SELECT v::text FROM kept"))
	require.Equal(t, "on", query(t, c2.URL("postgres"), "SHOW fsync"))
	require.NoError(t, c2.Stop(ctx))
}

func TestRestartKeepsURL(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	ctx := context.Background()
	c := startT(t, Options{Dir: reachableDir(t), StopWithProcess: true})
	url := c.URL(DefaultDatabase)
	pid := c.PID()
	require.NotZero(t, pid)
	require.NoError(t, c.Stop(ctx))
	require.Zero(t, c.PID())
	_, err := pgx.Connect(ctx, url)
	require.Error(t, err, "server is down")
	require.NoError(t, c.Start(ctx))
	require.NotEqual(t, pid, c.PID())
	require.Equal(t, url, c.URL(DefaultDatabase))
	require.Equal(t, "1", query(t, url, "SELECT 1::text"))
}

func TestMissingBinaries(t *testing.T) {
	t.Parallel()
	_, err := Start(context.Background(), Options{Dir: t.TempDir(), BinDir: t.TempDir()})
	require.ErrorIs(t, err, ErrNoBinaries)
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), "install PostgreSQL server binaries (apt-get install -y postgresql) or set DATABASE_URL")

	_, err = findBinaries(t.TempDir())
	require.ErrorIs(t, err, ErrNoBinaries)
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	dir, err := FindBinaries()
	require.NoError(t, err)
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		require.FileExists(t, filepath.Join(dir, p))
	}
	require.True(t, versionLess("9.6", "15"))
	require.True(t, versionLess("15", "16"))
	require.False(t, versionLess("16", "9.6"))
}

func TestAdoptsRunningServer(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	dir := reachableDir(t)
	c := startT(t, Options{Dir: dir})
	// A second Start on the same directory (as after a crash of the process
	// that started it: pg_ctl daemonises the server) reuses the running server.
	c2 := startT(t, Options{Dir: dir})
	require.Equal(t, c.Port(), c2.Port())
	require.Equal(t, c.PID(), c2.PID())
	require.True(t, c.Owned())
	require.False(t, c2.Owned(), "the process that started it owns it")
	require.ErrorIs(t, c2.Stop(context.Background()), ErrNotOwner)
	require.Equal(t, "1", query(t, c.URL(DefaultDatabase), "SELECT 1::text"), "still running for its owner")

	// Once the owner is gone (here: gives up ownership, as its exit would),
	// the next Start takes the server over and may stop it.
	c.Release()
	c3 := startT(t, Options{Dir: dir})
	require.True(t, c3.Owned())
	require.NoError(t, c3.Stop(context.Background()))
}

func TestStalePostmasterPid(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		t.Skip("needs /proc")
	}
	dir := reachableDir(t)
	c := startT(t, Options{Dir: dir})
	pid := c.PID()
	pidFile := filepath.Join(c.DataDir(), "postmaster.pid")
	stale, err := os.ReadFile(pidFile)
	require.NoError(t, err)

	// Kill the postmaster like a crash would; its backends follow it.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitGone(t, c.DataDir())
	require.FileExists(t, pidFile)
	c.Release() // its owner's process would have gone with it

	c2 := startT(t, Options{Dir: dir})
	require.Equal(t, "1", query(t, c2.URL(DefaultDatabase), "SELECT 1::text"))
	require.NoError(t, c2.Stop(context.Background()))

	// The old pid now belongs to another live process of the server's user:
	// PostgreSQL alone would refuse to start.
	sleeper := exec.Command("sleep", "60")
	sleeper.SysProcAttr = c2.procAttr()
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	lines := strings.SplitN(string(stale), "\n", 2)
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"+lines[1]), 0o600))
	require.NoError(t, c2.chown(pidFile))

	c3 := startT(t, Options{Dir: dir})
	require.Equal(t, "1", query(t, c3.URL(DefaultDatabase), "SELECT 1::text"))
}

// waitGone waits until no process works in dataDir (postmaster and backends).
func waitGone(t *testing.T, dataDir string) {
	t.Helper()
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if alive, cwd, _ := processInfo(pid); alive && samePath(cwd, dataDir) {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
}

func TestPortTaken(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	// A fixed port that is taken is an error.
	_, err = Start(context.Background(), Options{Dir: reachableDir(t), Port: taken, Logger: testLogger(t)})
	require.ErrorContains(t, err, "already in use")

	// A picked port that gets taken before the server binds it is re-picked.
	picks := 0
	c := startT(t, Options{Dir: reachableDir(t), StopWithProcess: true, pickPort: func() (int, error) {
		picks++
		if picks == 1 {
			return taken, nil
		}
		return freeLoopbackPort()
	}})
	require.Equal(t, 2, picks)
	require.NotEqual(t, taken, c.Port())
}

func TestLongDirUsesShortSocketDir(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	dir := filepath.Join(reachableDir(t), strings.Repeat("d", 60), strings.Repeat("e", 60))
	c := startT(t, Options{Dir: dir, StopWithProcess: true})
	require.Equal(t, dir, c.Dir())
	require.False(t, strings.HasPrefix(c.SocketDir(), dir))
	require.LessOrEqual(t, len(c.SocketDir()), maxSocketDirLen)
	require.Equal(t, "1", query(t, c.URL(DefaultDatabase), "SELECT 1::text"))
	require.NoError(t, c.Stop(context.Background()))
	require.NoError(t, c.Start(context.Background()))
	require.Equal(t, "1", query(t, c.URL(DefaultDatabase), "SELECT 1::text"))
	t.Cleanup(func() { _ = os.RemoveAll(c.SocketDir()) })
}

func TestRelocatesWhenUnreachableAsRoot(t *testing.T) {
	skipShort(t)
	t.Parallel()
	requireBinaries(t)
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	dir := filepath.Join(t.TempDir(), "pg") // t.TempDir's parent is 0700 root
	c := startT(t, Options{Dir: dir, StopWithProcess: true})
	t.Cleanup(func() { _ = os.RemoveAll(c.Dir()); _ = os.Remove(filepath.Dir(c.Dir())) })
	require.NotEqual(t, dir, c.Dir())
	require.Equal(t, "1", query(t, c.URL(DefaultDatabase), "SELECT 1::text"))
	require.NoError(t, c.Stop(context.Background()))

	// The same Dir maps to the same relocated cluster.
	c2 := startT(t, Options{Dir: dir, StopWithProcess: true})
	require.Equal(t, c.Dir(), c2.Dir())
}

func TestRootNeedsServerUser(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	_, err := Start(context.Background(), Options{Dir: t.TempDir(), User: "cioloader-no-such-user"})
	require.ErrorContains(t, err, "refuses")
	require.ErrorContains(t, err, "cioloader-no-such-user")
}
