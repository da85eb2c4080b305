package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cioloader/cioloader/internal/postgres"
)

// ReadSide is what the read-side phase measured: the dataset, the storage it took,
// and the README's example queries over it, right after the load and again once
// autovacuum has caught up.
type ReadSide struct {
	Dataset     Dataset
	Tables      map[string]postgres.TableSize // stitch_customerio's tables
	AfterLoad   []QueryTime                   // right after the load: no VACUUM
	AfterVacuum []QueryTime                   // once autovacuum has nothing left to do
	VacuumWait  time.Duration                 // how long autovacuum took to catch up
	VacuumDone  bool                          // false: it had not within --autovacuum-wait
	// FirstQueryAfter is how long after the load's last acknowledged write the
	// first README query started (SPEC 9: within a second).
	FirstQueryAfter time.Duration
}

// QueryTime is one README query, timed over several runs.
type QueryTime struct {
	Name string
	Runs []time.Duration
}

// Median is the middle run.
func (q QueryTime) Median() time.Duration {
	r := slices.Clone(q.Runs)
	slices.Sort(r)
	return r[len(r)/2]
}

// StoredBytes is every table of the schema together.
func (r *ReadSide) StoredBytes() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Total()
	}
	return n
}

// Ratio is stored bytes over the JSON bytes received.
func (r *ReadSide) Ratio() float64 { return float64(r.StoredBytes()) / float64(r.Dataset.JSONBytes) }

// RawRatio is data + rudder_events over the JSON bytes received (SPEC 9).
func (r *ReadSide) RawRatio() float64 {
	return float64(r.Tables["data"].Total()+r.Tables["rudder_rows"].Total()) / float64(r.Dataset.JSONBytes)
}

// readmeQueryRE finds README.md's example queries: a <!-- query:NAME --> marker then
// a ```sql block (the tests read them the same way).
var readmeQueryRE = regexp.MustCompile("(?s)<!-- query:([a-z_]+) -->\\s*```sql\\n(.*?)\\n```")

func readmeQueries(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: README queries: %w", err)
	}
	var out [][2]string
	for _, m := range readmeQueryRE.FindAllStringSubmatch(string(b), -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: no example queries in %s", path)
	}
	return out, nil
}

// runReadSide creates the README's integration ("Stitch Customer.io"), loads the
// dataset into it, times each README query (3 runs) right after the load, waits for
// autovacuum to catch up and times them again, then measures the tables.
func runReadSide(ctx context.Context, cfg Config, srv *server, dbURL, runID string) (*ReadSide, error) {
	queries, err := readmeQueries(cfg.Readme)
	if err != nil {
		return nil, err
	}
	url, _, err := srv.setupNamed("Stitch Customer.io")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Stdout, "loading %d realistic events into stitch_customerio…\n", cfg.DatasetEvents)
	rs := &ReadSide{}
	progress := func(tenth int, rate float64) {
		fmt.Fprintf(cfg.Stdout, "  tenth %d of the load: %.0f events/s\n", tenth, rate)
	}
	if rs.Dataset, err = LoadDataset(ctx, url, "ds"+runID, cfg.DatasetEvents, 3, progress); err != nil {
		return nil, err
	}
	lastWrite := time.Now() // the load's last 200
	m, err := postgres.OpenMeasurer(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer m.Close(context.Background())
	rs.FirstQueryAfter = time.Since(lastWrite)
	fmt.Fprintf(cfg.Stdout, "first README query %s after the load's last write\n", rs.FirstQueryAfter.Round(time.Millisecond))
	if rs.AfterLoad, err = timeQueries(ctx, cfg, m, queries, "right after the load"); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Stdout, "waiting for autovacuum (at most %s)…\n", cfg.AutovacuumWait)
	if rs.VacuumWait, rs.VacuumDone, err = m.WaitAutovacuum(ctx, "stitch_customerio", cfg.AutovacuumWait); err != nil {
		return nil, err
	}
	if rs.AfterVacuum, err = timeQueries(ctx, cfg, m, queries, "after autovacuum"); err != nil {
		return nil, err
	}
	if rs.Tables, err = m.TableSizes(ctx, "stitch_customerio"); err != nil {
		return nil, err
	}
	return rs, nil
}

func timeQueries(ctx context.Context, cfg Config, m *postgres.Measurer, queries [][2]string, when string) ([]QueryTime, error) {
	var out []QueryTime
	for _, q := range queries {
		fmt.Fprintf(cfg.Stdout, "timing README query %s %s…", q[0], when)
		times, err := m.TimeQuery(ctx, q[1], 3)
		if err != nil {
			return nil, fmt.Errorf("bench: query %s: %w", q[0], err)
		}
		fmt.Fprintf(cfg.Stdout, " %s\n", runs(QueryTime{Runs: times}))
		out = append(out, QueryTime{Name: q[0], Runs: times})
		if slices.Max(times) > slowQuery {
			// Why: the plan, as the planner makes it now, and its buffers.
			plan, err := m.Explain(ctx, q[1])
			if err != nil {
				return nil, fmt.Errorf("bench: query %s: %w", q[0], err)
			}
			fmt.Fprintf(cfg.Stdout, "  a run took over %s; its plan now:\n%s\n", slowQuery, plan)
		}
	}
	return out, nil
}

// slowQuery is a README query run slow enough that the bench prints its plan.
const slowQuery = 100 * time.Millisecond

// Read-side targets of SPEC 9.
const (
	targetRawRatio     = 3.5
	targetStorageRatio = 4.0
	targetQuery        = 500 * time.Millisecond
	targetLastTenth    = 0.7
)

func (r *ReadSide) checks() []check {
	if r == nil {
		return nil
	}
	n := r.Dataset.Events
	out := []check{
		{fmt.Sprintf("storage: data + rudder_events per JSON byte (%d events)", n), fmt.Sprintf("%.2f×", r.RawRatio()),
			fmt.Sprintf("≤ %.1f×", targetRawRatio), r.RawRatio() <= targetRawRatio},
		{fmt.Sprintf("storage: whole schema per JSON byte (%d events)", n), fmt.Sprintf("%.2f×", r.Ratio()),
			fmt.Sprintf("≤ %.1f×", targetStorageRatio), r.Ratio() <= targetStorageRatio},
	}
	if rates := r.Dataset.TenthRates(); len(rates) == 10 {
		ratio := rates[9] / rates[0]
		out = append(out, check{"ingest: last tenth ÷ first tenth of the load", fmt.Sprintf("%.2f (%.0f ÷ %.0f events/s)", ratio, rates[9], rates[0]),
			fmt.Sprintf("≥ %.1f", targetLastTenth), ratio >= targetLastTenth})
	}
	out = append(out, check{"read side: first README query after the load's last write", ms(r.FirstQueryAfter), "≤ 1 s", r.FirstQueryAfter <= time.Second})
	for _, q := range r.AfterLoad {
		// SPEC 9: the first run right after the load, not the warm ones after it.
		out = append(out, check{"README query " + q.Name + " right after the load (first run)", ms(q.Runs[0]), "≤ 500 ms", q.Runs[0] <= targetQuery})
	}
	for _, q := range r.AfterVacuum {
		out = append(out, check{"README query " + q.Name + " after autovacuum (median of 3)", ms(q.Median()), "≤ 500 ms", q.Median() <= targetQuery})
	}
	return out
}

// markdown lists the dataset, its ingest rate by tenth, the tables and each query's runs.
func (r *ReadSide) markdown(b *strings.Builder) {
	if r == nil {
		return
	}
	perEvent := float64(r.Dataset.JSONBytes) / float64(max(r.Dataset.Events, 1))
	fmt.Fprintf(b, "\nRead side: %d events (%.1f MiB of JSON, %.0f B each; times over the last 13 months) loaded in %s over 3 connections, arrays of 500; stored %.1f MiB (%.2f×; data + rudder_events %.2f×)",
		r.Dataset.Events, float64(r.Dataset.JSONBytes)/(1<<20), perEvent,
		r.Dataset.Elapsed.Round(time.Second), float64(r.StoredBytes())/(1<<20), r.Ratio(), r.RawRatio())
	if r.Dataset.Retries > 0 {
		fmt.Fprintf(b, " (%d arrays answered 503 and were posted again)", r.Dataset.Retries)
	}
	b.WriteString(".\n\nIngest rate by tenth of the load (events/s):")
	for _, rate := range r.Dataset.TenthRates() {
		fmt.Fprintf(b, " %.0f", rate)
	}
	b.WriteString("\n\n| table | heap | TOAST | indexes | total | bytes/event | × JSON |\n|---|---|---|---|---|---|---|\n")
	for _, name := range slices.Sorted(maps.Keys(r.Tables)) {
		t := r.Tables[name]
		var ix []string
		for _, i := range slices.Sorted(maps.Keys(t.Indexes)) {
			ix = append(ix, fmt.Sprintf("`%s` %s", i, mib(t.Indexes[i])))
		}
		n := float64(max(r.Dataset.Events, 1))
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s | %.0f | %.2f |\n", name, mib(t.Heap), mib(t.Toast), strings.Join(ix, ", "),
			mib(t.Total()), float64(t.Total())/n, float64(t.Total())/n/perEvent)
	}
	vac := fmt.Sprintf("after autovacuum (caught up %s after the first timing)", r.VacuumWait.Round(time.Second))
	if !r.VacuumDone {
		vac = fmt.Sprintf("after waiting %s for autovacuum (it had not caught up)", r.VacuumWait.Round(time.Second))
	}
	fmt.Fprintf(b, "\n| README query | right after the load (runs) | %s (runs) |\n|---|---|---|\n", vac)
	for i, q := range r.AfterLoad {
		fmt.Fprintf(b, "| %s | %s | %s |\n", q.Name, runs(q), runs(r.AfterVacuum[i]))
	}
}

func runs(q QueryTime) string {
	out := make([]string, len(q.Runs))
	for i, d := range q.Runs {
		out[i] = ms(d)
	}
	return strings.Join(out, ", ")
}
