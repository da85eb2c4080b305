//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
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

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/pgcluster"
)

// embeddedDataDir is a fresh CIOLOADER_DATA_DIR for the embedded Postgres,
// reachable by the server's OS user when the tests run as root; any cluster
// left running in it is stopped when the test ends.
func embeddedDataDir(t *testing.T) string {
	t.Helper()
	if _, err := pgcluster.FindBinaries(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o711))
		require.NoError(t, os.Chmod(dir, 0o711))
	}
	t.Cleanup(func() {
		if !clusterRunning(dir) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), Fsync: true}) // joins it
		if err == nil {
			err = cl.Stop(ctx)
		}
		if err != nil {
			t.Errorf("stopping the embedded postgres left in %s: %v", dir, err)
		}
	})
	return dir
}

// postmasterPID is the pid in the embedded cluster's postmaster.pid (0: none).
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "pg", "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

func clusterRunning(dataDir string) bool {
	pid := postmasterPID(dataDir)
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func queryInt(t *testing.T, url, sql string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int64
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&n))
	return n
}

func TestDBURLWithDatabaseURL(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "unused")
	vars := map[string]string{"DATABASE_URL": "postgres://u:p@db.example.com:5432/x?sslmode=require", "CIOLOADER_DATA_DIR": dir}
	r := cli(t, vars, "", "db-url")
	requireOK(t, r)
	require.Equal(t, vars["DATABASE_URL"]+"\n", r.stdout)
	require.Empty(t, r.stderr)
	r = cli(t, vars, "", "db-url", "--json", "--tcp")
	requireOK(t, r)
	require.JSONEq(t, `{"url": "postgres://u:p@db.example.com:5432/x?sslmode=require", "embedded": false}`, r.stdout)
	r = cli(t, nil, "", "db-url", "--database-url", "postgres://flag/x")
	requireOK(t, r)
	require.Equal(t, "postgres://flag/x\n", r.stdout)
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "no embedded cluster with DATABASE_URL")
}

// TestDBURLEmbedded: db-url starts the embedded cluster and leaves it
// running for psql; later commands join it and leave it running too.
func TestDBURLEmbedded(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := embeddedDataDir(t)
	vars := map[string]string{"CIOLOADER_DATA_DIR": dir}

	r := cli(t, vars, "", "db-url")
	requireOK(t, r)
	url := strings.TrimSuffix(r.stdout, "\n")
	require.Regexp(t, `^postgres://postgres@/cioloader\?host=/\S+&port=\d+&sslmode=disable$`, url)
	require.Contains(t, r.stderr, "started the embedded Postgres in "+filepath.Join(dir, "pg"))
	require.Equal(t, 1, strings.Count(r.stderr, "\n"))
	require.True(t, clusterRunning(dir), "db-url leaves the cluster running")
	require.EqualValues(t, 1, queryInt(t, url, "SELECT 1"))
	pid := postmasterPID(dir)

	// Running already: the same URL, nothing on stderr.
	r = cli(t, vars, "", "db-url")
	requireOK(t, r)
	require.Equal(t, url+"\n", r.stdout)
	require.Empty(t, r.stderr)
	r = cli(t, vars, "", "db-url", "--tcp", "--json")
	requireOK(t, r)
	out := decode[map[string]any](t, r.stdout)
	require.Equal(t, true, out["embedded"])
	require.Regexp(t, `^postgres://postgres@127\.0\.0\.1:\d+/cioloader\?sslmode=disable$`, out["url"])
	require.EqualValues(t, 1, queryInt(t, out["url"].(string), "SELECT 1"))

	// Commands join the running cluster and leave it running.
	requireOK(t, cli(t, vars, "", "integrations", "create", "Embedded Shop"))
	requireOK(t, cli(t, vars, "", "migrate", "version"))
	r = cli(t, vars, "", "integrations", "list", "--json")
	requireOK(t, r)
	require.Contains(t, r.stdout, `"schema": "embedded_shop"`)
	require.Equal(t, pid, postmasterPID(dir), "the same server throughout")
	require.True(t, clusterRunning(dir))
	require.EqualValues(t, 1, queryInt(t, url, "SELECT count(*) FROM cioloader.integrations"))
}

// TestCLIStopsOnlyTheClusterItStarted: a command that had to start the
// embedded cluster stops it when done, unless someone else uses it by then.
func TestCLIStopsOnlyTheClusterItStarted(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := embeddedDataDir(t)
	vars := map[string]string{"CIOLOADER_DATA_DIR": dir}
	requireOK(t, cli(t, vars, "", "integrations", "create", "alone"))
	require.False(t, clusterRunning(dir), "started for the command, stopped after it")
	r := cli(t, vars, "", "integrations", "list")
	requireOK(t, r)
	require.Contains(t, r.stdout, "alone")
	require.False(t, clusterRunning(dir))

	// Another client (a serve that joined meanwhile, psql) keeps it running.
	ctx := context.Background()
	cfg, err := config.Load(flag.NewFlagSet("t", flag.ContinueOnError), nil, func(k string) string { return vars[k] })
	require.NoError(t, err)
	db, err := openCLIDatabase(ctx, cfg, cliLogger(cfg, env{}, "t"))
	require.NoError(t, err)
	require.False(t, db.adopted)
	require.Contains(t, db.url, "application_name=cioloader-cli-")
	conn, err := pgx.Connect(ctx, db.cluster.URL(pgcluster.DefaultDatabase)) // someone else
	require.NoError(t, err)
	db.close()
	require.True(t, clusterRunning(dir), "left running for the other client")
	require.NoError(t, conn.Ping(ctx))
	require.NoError(t, conn.Close(ctx))

	// Joined (already running): never stopped.
	db, err = openCLIDatabase(ctx, cfg, cliLogger(cfg, env{}, "t"))
	require.NoError(t, err)
	require.True(t, db.adopted)
	db.close()
	require.True(t, clusterRunning(dir))
}

// binary builds cioloader for a test that needs a real process.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cioloader")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// processEnv is this process's environment without cioloader's settings,
// plus vars.
func processEnv(vars map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "CIOLOADER_") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// TestBinaryExitCodes checks the real process's exit codes and stderr.
func TestBinaryExitCodes(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	for _, tc := range []struct {
		args     []string
		vars     map[string]string
		code     int
		contains string
	}{
		{nil, nil, exitUsage, "no command given"},
		{[]string{"--help"}, nil, exitOK, ""},
		{[]string{"serve", "--help"}, nil, exitOK, ""},
		{[]string{"nope"}, nil, exitUsage, `unknown command "nope"`},
		{[]string{"serve", "--nope"}, nil, exitUsage, "unknown flag: --nope"},
		{[]string{"serve"}, map[string]string{"DATABASE_URL": closedPortURL(t), "CIOLOADER_ADDR": "127.0.0.1:0"}, exitFail, "connection refused"},
		{[]string{"serve"}, map[string]string{"CIOLOADER_COMMIT_DEADLINE": "1m"}, exitFail, "configuration: CIOLOADER_COMMIT_DEADLINE"},
		{[]string{"transform", "/nonexistent"}, nil, exitFail, "open /nonexistent"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = processEnv(tc.vars)
		cmd.Dir = t.TempDir()
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
		t.Logf("cioloader %v → %d\nstdout: %s\nstderr: %s", tc.args, code, r.stdout, r.stderr)
		if tc.code == exitOK {
			requireOK(t, r)
			require.Empty(t, r.stderr)
			require.Contains(t, r.stdout, "Usage:\n  cioloader")
			continue
		}
		requireFailure(t, r, tc.code, tc.contains)
	}
}

// serveProcess is a running `cioloader serve`.
type serveProcess struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan error
}

// startServe runs the built binary's serve with the embedded database in dataDir.
func startServe(t *testing.T, dataDir string) *serveProcess {
	t.Helper()
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = processEnv(map[string]string{
		"CIOLOADER_DATA_DIR": dataDir, "CIOLOADER_ADDR": "127.0.0.1:0", "CIOLOADER_LOG_FORMAT": "json",
		"CIOLOADER_ADMIN_TOKEN": "test-admin-token-0123456789abcdef",
	})
	cmd.Dir = dataDir
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	p := &serveProcess{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = p.logs
	require.NoError(t, cmd.Start())
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = p.logs.Write(append(sc.Bytes(), '\n'))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "cioloader listening" {
				listening <- rec.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		t.Logf("serve logs:\n%s", p.logs.String())
	})
	select {
	case p.addr = <-listening:
	case err := <-p.done:
		t.Fatalf("serve exited: %v\n%s", err, p.logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not listen in time\n%s", p.logs.String())
	}
	return p
}

func httpStatus(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	t.Logf("%s %s → %d %s", method, url, resp.StatusCode, b)
	return resp.StatusCode
}

// TestCLIAlongsideServe: while `cioloader serve` runs on the embedded
// database, the CLI commands work on the same cluster and never stop it.
func TestCLIAlongsideServe(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := embeddedDataDir(t)
	srv := startServe(t, dir)
	pid := postmasterPID(dir)
	require.NotZero(t, pid)
	vars := map[string]string{"CIOLOADER_DATA_DIR": dir, "CIOLOADER_PUBLIC_URL": "http://" + srv.addr}
	serverAlive := func() {
		t.Helper()
		require.Equal(t, http.StatusOK, httpStatus(t, http.MethodGet, "http://"+srv.addr+"/readyz", ""))
		require.Equal(t, pid, postmasterPID(dir), "the server's cluster is still the same one")
		require.True(t, clusterRunning(dir))
	}

	requireOK(t, cli(t, vars, "", "integrations", "create", "Side Shop"))
	serverAlive()
	r := cli(t, vars, "", "urls", "generate", "side_shop", "--json")
	requireOK(t, r)
	u := decode[admin.GeneratedURL](t, r.stdout)
	serverAlive()
	event := func(id string) string {
		return `{"event_id":"` + id + `","object_type":"email","metric":"sent","timestamp":1700000000,"data":{"customer_id":"1"}}`
	}
	require.Equal(t, http.StatusOK, httpStatus(t, http.MethodPost, u.URL, event("e1")))

	r = cli(t, vars, "", "db-url")
	requireOK(t, r)
	require.Empty(t, r.stderr, "joined serve's cluster: nothing started")
	url := strings.TrimSpace(r.stdout)
	require.EqualValues(t, 1, queryInt(t, url, "SELECT count(*) FROM side_shop.data"))
	serverAlive()

	r = cli(t, vars, "", "replay", "Side Shop")
	requireOK(t, r)
	require.Contains(t, r.stdout, "replayed side_shop: 1 rows read, 1 rudder_events written")
	serverAlive()
	requireOK(t, cli(t, vars, "", "urls", "list", strconv.FormatInt(u.IntegrationID, 10)))
	requireOK(t, cli(t, vars, "", "migrate", "version"))
	requireOK(t, cli(t, vars, "", "integrations", "list"))
	serverAlive()

	// The server still writes after all those commands came and went.
	require.Equal(t, http.StatusOK, httpStatus(t, http.MethodPost, u.URL, event("e2")))
	require.EqualValues(t, 2, queryInt(t, url, "SELECT count(*) FROM side_shop.rudder_events"))

	// serve stops its cluster when it stops.
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-srv.done:
		require.NoError(t, err, "serve exits 0 on SIGTERM")
	case <-time.After(time.Minute):
		t.Fatal("serve did not stop")
	}
	require.False(t, clusterRunning(dir), "serve stopped the embedded postgres")
}
