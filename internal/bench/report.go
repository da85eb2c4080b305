package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPU    string
	Cores  int
	Memory string
	Kernel string
	Go     string
}

// ReadMachine reads the CPU model, core count and memory from /proc.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown", Memory: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			m.Memory = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// Targets of SPEC 9.
const (
	targetSingleEPS = 20000
	targetSingleP99 = 25 * time.Millisecond
	targetSerialP50 = time.Millisecond
	targetSerialEPS = 2000
	targetArraysEPS = 50000
	targetRSS       = 150 << 20
)

type check struct {
	what, got, target string
	ok                bool
}

func (r *Report) checks() []check {
	if r.ReadSideOnly {
		return r.ReadSide.checks()
	}
	ratio := r.Single.EventsPerSec() / r.Bare.EventsPerSec()
	rss := max(r.RSSPeak["c50"], r.RSSPeak["c50x100"])
	errs := r.Single.Errors + r.Serial.Errors + r.Arrays.Errors
	return append([]check{
		{"c=50, 1 event/request: events/s", fmt.Sprintf("%.0f", r.Single.EventsPerSec()), fmt.Sprintf("≥ %d", targetSingleEPS), r.Single.EventsPerSec() >= targetSingleEPS},
		{"c=50: ratio to the bare net/http server (same run)", fmt.Sprintf("%.2f", ratio), "reference", true},
		{"c=50: p99 latency", ms(r.Single.P99), "≤ 25 ms", r.Single.P99 <= targetSingleP99},
		{"c=50: events committed in batches of ≥ 32", fmt.Sprintf("%.0f %%", 100*r.Batches["c50"].shareIn32Plus()), "most (> 50 %)", r.Batches["c50"].shareIn32Plus() > 0.5},
		{"c=1 serial: p50 latency", ms(r.Serial.P50), "≤ 1 ms", r.Serial.P50 <= targetSerialP50},
		{"c=1 serial: events/s", fmt.Sprintf("%.0f", r.Serial.EventsPerSec()), fmt.Sprintf("≥ %d", targetSerialEPS), r.Serial.EventsPerSec() >= targetSerialEPS},
		{"c=50, arrays of 100: events/s", fmt.Sprintf("%.0f", r.Arrays.EventsPerSec()), fmt.Sprintf("≥ %d", targetArraysEPS), r.Arrays.EventsPerSec() >= targetArraysEPS},
		{"peak server RSS under c=50 loads", mib(rss), "≤ 150 MiB", rss <= targetRSS},
		{"errors (non-200 or transport)", fmt.Sprint(errs), "0", errs == 0},
		{"rows: data = rudder_events = acknowledged", fmt.Sprintf("%d = %d = %d", r.Rows.Data, r.Rows.Rudder, r.Rows.Acked), "equal", r.Rows.Data == r.Rows.Acked && r.Rows.Rudder == r.Rows.Acked},
	}, r.ReadSide.checks()...)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteText prints the results with each figure next to its target.
func (r *Report) WriteText(w io.Writer) {
	if r.ReadSideOnly {
		r.writeChecks(w)
		var rs strings.Builder
		r.ReadSide.markdown(&rs)
		fmt.Fprint(w, rs.String())
		return
	}
	fmt.Fprintf(w, "\n%-10s %8s %10s %12s %10s %10s %10s %8s %10s\n", "scenario", "conns", "ev/req", "events/s", "req/s", "p50", "p99", "errors", "peak RSS")
	for _, res := range []Result{r.Bare, r.Single, r.Serial, r.Arrays} {
		fmt.Fprintf(w, "%-10s %8d %10d %12.0f %10.0f %10s %10s %8d %10s\n", res.Scenario.Name, res.Scenario.Conns, res.Scenario.PerReq,
			res.EventsPerSec(), res.ReqPerSec(), ms(res.P50), ms(res.P99), res.Errors, mib(r.RSSPeak[res.Scenario.Name]))
	}
	var cost strings.Builder
	r.costMarkdown(&cost)
	fmt.Fprint(w, cost.String())
	r.writeChecks(w)
	var rs strings.Builder
	r.ReadSide.markdown(&rs)
	fmt.Fprint(w, rs.String())
	for _, res := range []Result{r.Single, r.Serial, r.Arrays} {
		for k, v := range res.ErrorKinds {
			fmt.Fprintf(w, "  %s errors: %d × %s\n", res.Scenario.Name, v, k)
		}
	}
}

// writeChecks prints every check with its target.
func (r *Report) writeChecks(w io.Writer) {
	fmt.Fprintln(w)
	for _, c := range r.checks() {
		mark := "PASS"
		if !c.ok {
			mark = "MISS"
		}
		fmt.Fprintf(w, "  %s  %-44s %-24s target %s\n", mark, c.what, c.got, c.target)
	}
}

// Markdown renders the BENCHMARKS.md section for this run.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Run of %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s, %d cores, %s memory, kernel %s, %s\n", r.Machine.CPU, r.Machine.Cores, r.Machine.Memory, r.Machine.Kernel, r.Machine.Go)
	fmt.Fprintf(&b, "- command: `%s`\n", r.Command)
	if r.ReadSideOnly {
		b.WriteString("- read side only (no throughput scenarios); Postgres with fsync and synchronous_commit on; load generator, server and Postgres share the machine\n")
		r.checksMarkdown(&b)
		r.ReadSide.markdown(&b)
		return b.String()
	}
	fmt.Fprintf(&b, "- each scenario: %s measured after %s warm-up; Postgres with fsync and synchronous_commit on; load generator, server and Postgres share the machine\n\n",
		r.Single.Scenario.Duration, r.Single.Scenario.Warmup)
	b.WriteString("| scenario | conns | events/request | events/s | requests/s | p50 | p99 | max | errors | peak server RSS |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range []Result{r.Bare, r.Single, r.Serial, r.Arrays} {
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %.0f | %s | %s | %s | %d | %s |\n", res.Scenario.Name, res.Scenario.Conns, res.Scenario.PerReq,
			res.EventsPerSec(), res.ReqPerSec(), ms(res.P50), ms(res.P99), ms(res.Max), res.Errors, mib(r.RSSPeak[res.Scenario.Name]))
	}
	r.costMarkdown(&b)
	r.checksMarkdown(&b)
	r.ReadSide.markdown(&b)
	return b.String()
}

// checksMarkdown is the table of checks.
func (r *Report) checksMarkdown(b *strings.Builder) {
	b.WriteString("\n| check | measured | target | |\n|---|---|---|---|\n")
	for _, c := range r.checks() {
		mark := "pass"
		if !c.ok {
			mark = "**miss**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", c.what, c.got, c.target, mark)
	}
}

const (
	startMark = "<!-- bench:results:start -->"
	endMark   = "<!-- bench:results:end -->"
)

// UpdateFile replaces the results block of a Markdown file (creating the file
// when missing), keeping the hand-written analysis around it.
func UpdateFile(path string, r *Report) error {
	block := startMark + "\n" + r.Markdown() + endMark
	old, err := os.ReadFile(path)
	var doc string
	switch {
	case err == nil && strings.Contains(string(old), startMark) && strings.Contains(string(old), endMark):
		s := string(old)
		doc = s[:strings.Index(s, startMark)] + block + s[strings.Index(s, endMark)+len(endMark):]
	case err == nil:
		doc = string(old) + "\n" + block + "\n"
	default:
		doc = "# Benchmarks\n\nWritten by `make bench` (`cioloader bench`). The block below is replaced on every run.\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// costMarkdown writes where each scenario's CPU went, per event acknowledged
// (warm-up included on both sides), and how the group commit batched them.
func (r *Report) costMarkdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n| scenario | server CPU/event | Postgres CPU/event | load generator CPU/event | all three | ceiling: %d cores ÷ all three | other processes' CPU | cores busy | events/batch (mean) | events in batches ≥ 32 |\n|---|---|---|---|---|---|---|---|---|---|\n", r.Machine.Cores)
	for _, res := range []Result{r.Single, r.Serial, r.Arrays} {
		name := res.Scenario.Name
		c, ok := r.CPU[name]
		n := float64(res.Events + res.WarmEvents)
		if !ok || n == 0 {
			continue
		}
		wall := (res.Scenario.Warmup + res.Elapsed).Seconds()
		busy := c.machine.Seconds() / wall
		bs := r.Batches[name]
		pg := perEvent(c.postgres, n)
		if c.postgres == 0 {
			pg = "n/a (not on this machine)"
		}
		all := c.server + c.postgres + c.load
		ceiling := "–"
		if all > 0 {
			ceiling = fmt.Sprintf("%.0f events/s", float64(r.Machine.Cores)*n/all.Seconds())
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %.1f s | %.2f | %.1f | %.0f %% |\n", name, perEvent(c.server, n), pg, perEvent(c.load, n),
			perEvent(all, n), ceiling, c.others().Seconds(), busy, bs.meanEvents(), 100*bs.shareIn32Plus())
	}
}

func perEvent(d time.Duration, n float64) string {
	return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/n)
}
