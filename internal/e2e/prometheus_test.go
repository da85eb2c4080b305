package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rulesDir holds the shipped alert rules and their promtool unit tests.
const rulesDir = "../../deploy/prometheus"

// lookPrometheus finds a Prometheus binary or skips the test, saying how to
// get it (.ci/run installs Debian's prometheus package, which has both).
func lookPrometheus(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: apt-get install -y prometheus (.ci/run does) to test deploy/prometheus", name)
	}
	return path
}

// Issue 19: every alert rule in deploy/prometheus/alerts.yml is valid and
// has promtool unit tests that pass (alerts_test.yml).
func TestAlertRulesUnitTests(t *testing.T) {
	t.Parallel()
	promtool := lookPrometheus(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = rulesDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}
	// Every rule is exercised by the unit tests.
	rules, err := os.ReadFile(filepath.Join(rulesDir, "alerts.yml"))
	require.NoError(t, err)
	tests, err := os.ReadFile(filepath.Join(rulesDir, "alerts_test.yml"))
	require.NoError(t, err)
	n := 0
	for _, line := range strings.Split(string(rules), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: "); ok {
			n++
			require.Contains(t, string(tests), "alertname: "+name+"\n", "%s has no promtool test", name)
		}
	}
	require.Positive(t, n)
}

// Issue 19: a real Prometheus scraping a real server raises
// CioloaderDatabaseDown when the database stops, and resolves it when the
// database is back. Scrape and evaluation run every second, and the alert's
// `for` is cut from 1m to 2s here (the unit tests cover the minute).
func TestPrometheusAlertsOnDatabaseDown(t *testing.T) {
	t.Parallel()
	bin := lookPrometheus(t, "prometheus")
	cluster := privateCluster(t)
	s := startServer(t, "scraped", map[string]string{"DATABASE_URL": cluster.URL("cioloader")}, 30*time.Second)
	prom := startPrometheus(t, bin, s.Addr)

	waitFor(t, 30*time.Second, "Prometheus to scrape cioloader_database_up 1", func() bool {
		return prom.query(t, "cioloader_database_up") == "1"
	})
	require.Empty(t, prom.alerts(t, "CioloaderDatabaseDown"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Stop(ctx))
	downAt := time.Now()
	waitFor(t, 30*time.Second, "CioloaderDatabaseDown to fire", func() bool {
		return prom.alerts(t, "CioloaderDatabaseDown") == "firing"
	})
	t.Logf("CioloaderDatabaseDown firing %s after the database stopped", time.Since(downAt).Round(time.Millisecond))

	startCluster(t, cluster)
	upAt := time.Now()
	waitFor(t, 30*time.Second, "CioloaderDatabaseDown to resolve", func() bool {
		return prom.alerts(t, "CioloaderDatabaseDown") == ""
	})
	t.Logf("CioloaderDatabaseDown resolved %s after the database came back", time.Since(upAt).Round(time.Millisecond))
	require.False(t, s.hasExited())
}

type prometheus struct{ url string }

// startPrometheus runs Prometheus on a free port with the shipped rules,
// scraping target every second; it is killed at cleanup.
func startPrometheus(t *testing.T, bin, target string) prometheus {
	t.Helper()
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(rulesDir, "alerts.yml"))
	require.NoError(t, err)
	text := string(rules)
	at := strings.Index(text, "- alert: CioloaderDatabaseDown")
	require.GreaterOrEqual(t, at, 0)
	forAt := strings.Index(text[at:], "for: 1m")
	require.GreaterOrEqual(t, forAt, 0, "CioloaderDatabaseDown waits 1m")
	text = text[:at+forAt] + "for: 2s" + text[at+forAt+len("for: 1m"):]
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alerts.yml"), []byte(text), 0o600))
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: cioloader
    static_configs: [{targets: [%q]}]
`, target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600))

	addr := freeAddr(t)
	out := &tailBuffer{}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.Tail(40))
		}
	})
	p := prometheus{url: "http://" + addr}
	waitFor(t, 30*time.Second, "Prometheus to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited: %s", out.Tail(20))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return do(ctx, http.MethodGet, p.url+"/-/ready", nil, nil).Status == http.StatusOK
	})
	return p
}

// api GETs a Prometheus API path and decodes its data into v.
func (p prometheus) api(t *testing.T, path string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a := do(ctx, http.MethodGet, p.url+path, nil, nil)
	require.NoError(t, a.Err)
	require.Equal(t, http.StatusOK, a.Status, string(a.Body))
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(a.Body, &body))
	require.Equal(t, "success", body.Status, string(a.Body))
	require.NoError(t, json.Unmarshal(body.Data, v))
}

// query is the value of the first sample of an instant query, "" for none.
func (p prometheus) query(t *testing.T, q string) string {
	t.Helper()
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	p.api(t, "/api/v1/query?query="+q, &data)
	if len(data.Result) == 0 {
		return ""
	}
	v, _ := data.Result[0].Value[1].(string)
	return v
}

// alerts is the state (pending, firing) of the active alert named name, ""
// when it is not active.
func (p prometheus) alerts(t *testing.T, name string) string {
	t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	p.api(t, "/api/v1/alerts", &data)
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}
