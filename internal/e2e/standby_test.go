package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/pgcluster"
)

// replicated is a primary and a synchronous streaming standby made from it
// with pg_basebackup -R, as an operator (or Patroni) sets one up: every
// commit on the primary waits until the standby has flushed it.
type replicated struct {
	primary, standby *pgcluster.Cluster
}

// startReplicated starts the pair, both stopped (and thawed) at cleanup.
func startReplicated(t *testing.T) replicated {
	t.Helper()
	dir := t.TempDir()
	makeReachable(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary := startMember(t, ctx, pgcluster.Options{
		Dir: filepath.Join(dir, "primary"),
		Settings: map[string]string{
			// pgcluster turns synchronous_commit off for throwaway clusters:
			// here it is the point. fsync stays off (the test kills
			// processes, not the machine, so the page cache survives).
			"synchronous_commit": "on",
			"wal_keep_size":      "256MB",
		},
	})
	allowReplication(t, ctx, primary)

	standbyDir := filepath.Join(dir, "standby")
	require.NoError(t, os.Mkdir(standbyDir, 0o700))
	baseBackup(t, ctx, primary, filepath.Join(standbyDir, "data"))
	// The standby's own settings: no synchronous_standby_names, so once
	// promoted it commits without waiting for a standby it does not have.
	standby := startMember(t, ctx, pgcluster.Options{Dir: standbyDir})
	// Synchronous from now on (set earlier, the primary's own CREATE
	// DATABASE would have waited for a standby that did not exist yet).
	conn, err := pgx.Connect(ctx, primary.TCPURL("postgres"))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '*'")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "the standby to stream synchronously", func() bool {
		var n int
		err := queryRow(primary.TCPURL("postgres"), "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'", &n)
		return err == nil && n == 1
	})
	return replicated{primary: primary, standby: standby}
}

func startMember(t *testing.T, ctx context.Context, opt pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	opt.StopWithProcess = true
	opt.Logger = slog.New(slog.DiscardHandler)
	c, err := pgcluster.Start(ctx, opt)
	require.NoError(t, err, "start %s", opt.Dir)
	t.Cleanup(func() {
		thaw(processesIn(c.DataDir()))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, c.Stop(ctx))
	})
	return c
}

// allowReplication adds the pg_hba lines a walsender needs (the database
// "all" does not cover replication connections) and reloads.
func allowReplication(t *testing.T, ctx context.Context, c *pgcluster.Cluster) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(c.DataDir(), "pg_hba.conf"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("local replication all trust\nhost  replication all 127.0.0.1/32 trust\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	conn, err := pgx.Connect(ctx, c.TCPURL("postgres"))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
	require.NoError(t, err)
}

// baseBackup runs pg_basebackup -R into dataDir, as the user that runs the
// servers (when the tests run as root).
func baseBackup(t *testing.T, ctx context.Context, primary *pgcluster.Cluster, dataDir string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(primary.BinDir(), "pg_basebackup"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port()), "-U", pgcluster.Superuser,
		"-D", dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	if os.Geteuid() == 0 {
		uid, gid := postgresUser(t)
		require.NoError(t, os.Chown(filepath.Dir(dataDir), uid, gid))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Dir = filepath.Dir(dataDir)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "pg_basebackup: %s", out)
}

func postgresUser(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("postgres")
	require.NoError(t, err, "the tests run as root, so the servers run as the postgres OS user")
	uid, err = strconv.Atoi(u.Uid)
	require.NoError(t, err)
	gid, err = strconv.Atoi(u.Gid)
	require.NoError(t, err)
	return uid, gid
}

// freeze stops every process of the cluster (postmaster first, so it forks
// nothing meanwhile) and returns them.
func freeze(t *testing.T, c *pgcluster.Cluster) []int {
	t.Helper()
	pm := c.PID()
	require.NoError(t, syscall.Kill(pm, syscall.SIGSTOP))
	pids := []int{pm}
	for _, pid := range processesIn(c.DataDir()) {
		if pid != pm {
			require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
			pids = append(pids, pid)
		}
	}
	return pids
}

func thaw(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// killHard SIGKILLs the postmaster and every backend of the cluster, as a
// machine that dies takes them all at once.
func killHard(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	pids := processesIn(c.DataDir())
	require.NotEmpty(t, pids)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, 10*time.Second, "the killed primary's processes to be gone", func() bool { return len(processesIn(c.DataDir())) == 0 })
}

// promote makes the standby a primary (pg_promote waits until it is).
func promote(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	var ok bool
	require.NoError(t, queryRow(c.TCPURL("postgres"), "SELECT pg_promote(true, 30)", &ok))
	require.True(t, ok, "pg_promote")
}

// queryRow runs one query on a fresh connection and scans its row.
func queryRow(dbURL, sql string, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
