package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cioloader/cioloader/internal/pgcluster"
	"github.com/cioloader/cioloader/internal/postgres"
)

// Config is what `cioloader bench` was asked.
type Config struct {
	Exe         string        // the cioloader binary to run as the server
	DatabaseURL string        // empty: a fresh embedded cluster with fsync on
	Duration    time.Duration // per scenario
	Warmup      time.Duration
	Out         string // BENCHMARKS.md path ("" = do not write)
	Command     string // the command line, for the report
	Stdout      io.Writer
	Log         *slog.Logger
	// DatasetEvents is the read side's dataset size (0: skip the read side).
	DatasetEvents int64
	Readme        string // README.md, whose example queries the read side times
	SkipLoad      bool   // skip the throughput scenarios (read side only)
	// AutovacuumWait bounds the wait for autovacuum between the two timings of
	// the README queries.
	AutovacuumWait time.Duration
}

// Report is one whole run.
type Report struct {
	Started   time.Time
	Machine   Machine
	Command   string
	Bare      Result
	Single    Result
	Serial    Result
	Arrays    Result
	RSSPeak   map[string]int64      // scenario → peak server RSS (bytes) while it ran
	CPU       map[string]cpuSample  // scenario → CPU used while it ran (warm-up included)
	Batches   map[string]batchStats // scenario → group commits while it ran (warm-up included)
	Rows      Rows
	ServerHWM int64
	ReadSide  *ReadSide // nil when skipped
	// ReadSideOnly: the throughput scenarios were skipped (--read-side-only),
	// so the report holds the read side alone.
	ReadSideOnly bool
}

// Rows compares the tables with the acknowledgements.
type Rows struct {
	Acked, Data, Rudder int64
}

// Main runs the whole benchmark.
func Main(ctx context.Context, cfg Config) (*Report, error) {
	rep := &Report{Started: time.Now().UTC(), Machine: ReadMachine(), Command: cfg.Command, RSSPeak: map[string]int64{},
		CPU: map[string]cpuSample{}, Batches: map[string]batchStats{}}
	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		dir, err := os.MkdirTemp("", "cioloader-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		// Traversable, so a server running as the "postgres" user (the bench run
		// as root) keeps its cluster here instead of relocating it elsewhere.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, err
		}
		cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), Fsync: true, Logger: cfg.Log,
			// Durable (fsync, synchronous_commit and full_page_writes stay on); sized so
			// WAL buffers and checkpoints are not what the run measures.
			Settings: map[string]string{"max_connections": "100", "shared_buffers": "256MB", "wal_buffers": "64MB",
				"max_wal_size": "8GB", "checkpoint_timeout": "30min"}})
		if err != nil {
			return nil, fmt.Errorf("bench: start postgres: %w", err)
		}
		// The cluster's directory is removed too, wherever it ended up: a 10 M
		// read side leaves 26 GB.
		defer func() { _ = cl.Stop(context.Background()); _ = os.RemoveAll(cl.Dir()) }()
		dbURL = cl.URL("cioloader")
	}
	runID := randomID()

	bareURL, stopBare, err := startBare()
	if err != nil {
		return nil, err
	}
	defer stopBare()
	srv, err := startServer(ctx, cfg, dbURL)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	ingestURL, integrationID, err := srv.setup(runID)
	if err != nil {
		return nil, err
	}

	sc := func(name, url string, conns, per int) Scenario {
		return Scenario{Name: name, URL: url, Conns: conns, PerReq: per, Duration: cfg.Duration, Warmup: cfg.Warmup, RunID: runID}
	}
	steps := []struct {
		into *Result
		s    Scenario
	}{
		// The serial run goes first: right after a heavy run its commits wait
		// behind the kernel writing back that run's dirty pages (fsync latency
		// measured 10-20x worse), which says more about the burst than about a
		// lone delivery. BENCHMARKS.md records both orders.
		{&rep.Bare, sc("bare", bareURL, 50, 1)},
		{&rep.Serial, sc("c1", ingestURL, 1, 1)},
		{&rep.Single, sc("c50", ingestURL, 50, 1)},
		{&rep.Arrays, sc("c50x100", ingestURL, 50, 100)},
	}
	if cfg.SkipLoad {
		steps, rep.ReadSideOnly = nil, true
	}
	postmaster, err := postmasterPID(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	for _, st := range steps {
		fmt.Fprintf(cfg.Stdout, "running %-8s conns=%-3d events/request=%-3d for %s…\n", st.s.Name, st.s.Conns, st.s.PerReq, cfg.Duration)
		peak := srv.samplePeak()
		cpu0, batch0 := sampleCPU(srv.cmd.Process.Pid, postmaster), readBatchStats(srv.base)
		*st.into = Run(ctx, st.s)
		rep.CPU[st.s.Name] = sampleCPU(srv.cmd.Process.Pid, postmaster).sub(cpu0)
		rep.Batches[st.s.Name] = readBatchStats(srv.base).sub(batch0)
		rep.RSSPeak[st.s.Name] = peak()
		if st.s.URL == ingestURL {
			rep.Rows.Acked += st.into.Events + st.into.WarmEvents
		}
	}
	rep.ServerHWM = srv.hwm()
	if rep.Rows.Data, rep.Rows.Rudder, err = srv.counts(integrationID); err != nil {
		return nil, err
	}
	if cfg.DatasetEvents > 0 {
		if rep.ReadSide, err = runReadSide(ctx, cfg, srv, dbURL, runID); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startBare runs the reference: a net/http handler that reads the body and answers 200.
func startBare() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"accepted":1,"rejected":0}`))
	})}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/", func() { _ = hs.Close() }, nil
}

// server is the cioloader child process under test.
type server struct {
	cmd   *exec.Cmd
	base  string
	token string
}

func startServer(ctx context.Context, cfg Config, dbURL string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{base: "http://127.0.0.1:" + strconv.Itoa(port), token: "bench-admin-token-" + randomID() + randomID() + randomID()}
	s.cmd = exec.Command(cfg.Exe, "serve")
	s.cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "CIOLOADER_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"CIOLOADER_ADMIN_TOKEN="+s.token, "CIOLOADER_LOG_LEVEL=warn", "CIOLOADER_PUBLIC_URL="+s.base)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start server: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, errors.New("bench: server did not become ready in 30s")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

func (s *server) admin(method, path string, out any) error {
	req, _ := http.NewRequest(method, s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("bench: %s %s: %d %s", method, path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

func (s *server) setup(runID string) (string, int64, error) { return s.setupNamed("bench " + runID) }

// setupNamed creates an integration and a webhook URL for it.
func (s *server) setupNamed(name string) (string, int64, error) {
	var in struct {
		ID int64 `json:"id"`
	}
	body, _ := json.Marshal(map[string]string{"name": name})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/integrations", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", 0, fmt.Errorf("bench: create integration: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return "", 0, err
	}
	var u struct {
		URL string `json:"url"`
	}
	if err := s.admin(http.MethodPost, fmt.Sprintf("/v1/integrations/%d/webhook-urls", in.ID), &u); err != nil {
		return "", 0, err
	}
	return u.URL, in.ID, nil
}

func (s *server) counts(id int64) (int64, int64, error) {
	var d struct {
		Stats struct {
			Events       int64 `json:"events"`
			RudderEvents int64 `json:"rudder_events"`
		} `json:"stats"`
	}
	err := s.admin(http.MethodGet, fmt.Sprintf("/v1/integrations/%d", id), &d)
	return d.Stats.Events, d.Stats.RudderEvents, err
}

// samplePeak watches the server's RSS until the returned func is called.
func (s *server) samplePeak() func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v := procStatus(s.cmd.Process.Pid, "VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(stop); <-done; return peak.Load() }
}

func (s *server) hwm() int64 { return procStatus(s.cmd.Process.Pid, "VmHWM") }

// procStatus reads a "kB" field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n * 1024
		}
	}
	return 0
}

// postmasterPID is the local postmaster serving dbURL, or 0 when Postgres
// runs elsewhere (its CPU is then not reported).
func postmasterPID(ctx context.Context, dbURL string) (int, error) {
	m, err := postgres.OpenMeasurer(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	defer m.Close(ctx)
	pid, err := m.PostmasterPID(ctx)
	if err != nil || !isPostgres(pid) {
		return 0, err
	}
	return pid, nil
}
