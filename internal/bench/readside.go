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
// and the README's example queries over it.
type ReadSide struct {
	Dataset Dataset
	Tables  map[string]int64 // stitch_customerio's tables, bytes (heap, indexes, TOAST)
	Queries []QueryTime
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
	for _, b := range r.Tables {
		n += b
	}
	return n
}

// Ratio is stored bytes over the JSON bytes received.
func (r *ReadSide) Ratio() float64 { return float64(r.StoredBytes()) / float64(r.Dataset.JSONBytes) }

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
// dataset into it, measures its tables and times each README query (3 runs).
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
	if rs.Dataset, err = LoadDataset(ctx, url, "ds"+runID, cfg.DatasetEvents, 4); err != nil {
		return nil, err
	}
	m, err := postgres.OpenMeasurer(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer m.Close(context.Background())
	if rs.Tables, err = m.TableBytes(ctx, "stitch_customerio"); err != nil {
		return nil, err
	}
	for _, q := range queries {
		fmt.Fprintf(cfg.Stdout, "timing README query %s…\n", q[0])
		runs, err := m.TimeQuery(ctx, q[1], 3)
		if err != nil {
			return nil, fmt.Errorf("bench: query %s: %w", q[0], err)
		}
		rs.Queries = append(rs.Queries, QueryTime{Name: q[0], Runs: runs})
	}
	return rs, nil
}

// Read-side targets of SPEC 9.
const (
	targetStorageRatio = 3.5
	targetQuery        = 500 * time.Millisecond
)

func (r *ReadSide) checks() []check {
	if r == nil {
		return nil
	}
	out := []check{{fmt.Sprintf("storage per JSON byte (%d events)", r.Dataset.Events), fmt.Sprintf("%.2f×", r.Ratio()),
		fmt.Sprintf("≤ %.1f×", targetStorageRatio), r.Ratio() <= targetStorageRatio}}
	for _, q := range r.Queries {
		out = append(out, check{"README query " + q.Name + " (median of 3)", ms(q.Median()), "≤ 500 ms", q.Median() <= targetQuery})
	}
	return out
}

// markdown lists the dataset, the tables and each query's runs.
func (r *ReadSide) markdown(b *strings.Builder) {
	if r == nil {
		return
	}
	fmt.Fprintf(b, "\nRead side: %d events (%.1f MiB of JSON, %.0f B each) loaded in %s; stored %.1f MiB (%.2f×):",
		r.Dataset.Events, float64(r.Dataset.JSONBytes)/(1<<20), float64(r.Dataset.JSONBytes)/float64(max(r.Dataset.Events, 1)),
		r.Dataset.Elapsed.Round(time.Second), float64(r.StoredBytes())/(1<<20), r.Ratio())
	if r.Dataset.Retries > 0 {
		fmt.Fprintf(b, " (%d arrays answered 503 and were posted again)", r.Dataset.Retries)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Tables)) {
		fmt.Fprintf(b, " `%s` %s;", name, mib(r.Tables[name]))
	}
	b.WriteString("\n\n| README query | runs |\n|---|---|\n")
	for _, q := range r.Queries {
		runs := make([]string, len(q.Runs))
		for i, d := range q.Runs {
			runs[i] = ms(d)
		}
		fmt.Fprintf(b, "| %s | %s |\n", q.Name, strings.Join(runs, ", "))
	}
}
