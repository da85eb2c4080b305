package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/testdb"
)

// httpClient has a timeout so a hung server fails a test instead of hanging it.
var httpClient = &http.Client{
	Timeout: 20 * time.Second,
	Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	},
}

// answer is one HTTP exchange; Err is set when there was no answer.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Took   time.Duration
	Err    error
}

func do(ctx context.Context, method, target string, body []byte, header http.Header) answer {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	began := time.Now()
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{Err: err, Took: time.Since(began)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: b, Took: time.Since(began), Err: err}
}

// post sends body to an ingest URL, giving up after within.
func post(target string, body []byte, within time.Duration) answer {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return do(ctx, http.MethodPost, target, body, nil)
}

func (s *server) admin(t *testing.T, method, path string, body any) answer {
	t.Helper()
	return s.adminAs(t, adminToken, method, path, body)
}

// adminAs calls the admin API with the bearer token tok.
func (s *server) adminAs(t *testing.T, tok, method, path string, body any) answer {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		b, err = json.Marshal(body)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a := do(ctx, method, s.URL+path, b, http.Header{"Authorization": {"Bearer " + tok}})
	require.NoError(t, a.Err, "%s %s", method, path)
	return a
}

type integration struct {
	ID     int64  `json:"id"`
	Schema string `json:"schema"`
}

type webhookURL struct {
	ID    int64  `json:"id"`
	URL   string `json:"url"`
	Token string `json:"token"`
}

func (s *server) createIntegration(t *testing.T, name string) integration {
	t.Helper()
	a := s.admin(t, http.MethodPost, "/v1/integrations", map[string]string{"name": name})
	require.Equal(t, http.StatusCreated, a.Status, string(a.Body))
	var in integration
	require.NoError(t, json.Unmarshal(a.Body, &in))
	return in
}

func (s *server) generateURL(t *testing.T, integrationID int64) webhookURL {
	t.Helper()
	a := s.admin(t, http.MethodPost, "/v1/integrations/"+strconv.FormatInt(integrationID, 10)+"/webhook-urls", nil)
	require.Equal(t, http.StatusCreated, a.Status, string(a.Body))
	var u webhookURL
	require.NoError(t, json.Unmarshal(a.Body, &u))
	return u
}

// setup creates an integration and one webhook URL for it.
func (s *server) setup(t *testing.T, name string) (integration, webhookURL) {
	t.Helper()
	in := s.createIntegration(t, name)
	return in, s.generateURL(t, in.ID)
}

// on is u's webhook URL with the host of s (the same path on another replica).
func (u webhookURL) on(s *server) string {
	p, err := url.Parse(u.URL)
	if err != nil {
		panic(err)
	}
	return s.URL + p.Path
}

// emailEvent is a small, realistic Customer.io reporting event; its array
// (two elements) goes to the subtable data__data__recipients.
func emailEvent(id string) map[string]any {
	return map[string]any{
		"event_id":    id,
		"object_type": "email",
		"metric":      "sent",
		"timestamp":   1700000000,
		"data": map[string]any{
			"customer_id": "cust-" + id,
			"delivery_id": "dlv-" + id,
			"identifiers": map[string]any{"id": "cust-" + id, "email": id + "@example.com"},
			"recipient":   id + "@example.com",
			"subject":     "Welcome aboard",
			"recipients":  []any{id + "@example.com", "cc-" + id + "@example.com"},
		},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// result is one request of a load.
type result struct {
	Start time.Time
	answer
	IDs []string
}

// load is a set of senders posting unique events to one URL until stopped.
type load struct {
	target   string
	prefix   string
	singles  bool // every request is one object (no arrays)
	stopping atomic.Bool
	paused   atomic.Bool
	wg       sync.WaitGroup
	inflight atomic.Int64
	acked    atomic.Int64

	mu      sync.Mutex
	results []result
}

// startLoad starts workers senders; every third request is an array of 10
// events, the others a single object. Each request is bounded by 10 s.
func startLoad(target, prefix string, workers int) *load {
	l := &load{target: target, prefix: prefix}
	for w := range workers {
		l.wg.Go(func() { l.send(w) })
	}
	return l
}

// startSingles starts workers senders posting one event per request.
func startSingles(target, prefix string, workers int) *load {
	l := &load{target: target, prefix: prefix, singles: true}
	for w := range workers {
		l.wg.Go(func() { l.send(w) })
	}
	return l
}

func (l *load) send(worker int) {
	for n := 0; !l.stopping.Load(); n++ {
		if l.paused.Load() {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		var ids []string
		var body []byte
		if n%3 == 2 && !l.singles {
			events := make([]any, 10)
			for i := range events {
				id := fmt.Sprintf("%s-%d-%d-%d", l.prefix, worker, n, i)
				ids = append(ids, id)
				events[i] = emailEvent(id)
			}
			body = mustJSON(events)
		} else {
			id := fmt.Sprintf("%s-%d-%d", l.prefix, worker, n)
			ids = append(ids, id)
			body = mustJSON(emailEvent(id))
		}
		start := time.Now()
		l.inflight.Add(1)
		a := post(l.target, body, 10*time.Second)
		l.inflight.Add(-1)
		if a.Err == nil && a.Status == http.StatusOK {
			l.acked.Add(int64(len(ids)))
		}
		l.mu.Lock()
		l.results = append(l.results, result{Start: start, answer: a, IDs: ids})
		l.mu.Unlock()
		if a.Err != nil || a.Status != http.StatusOK {
			time.Sleep(20 * time.Millisecond) // no hot loop against a dead or refusing server
		}
	}
}

// pause holds the senders once their current requests are answered;
// resume lets them go on.
func (l *load) pause(t *testing.T) {
	t.Helper()
	l.paused.Store(true)
	waitFor(t, 15*time.Second, "the senders to pause", func() bool { return l.inflight.Load() == 0 })
}

func (l *load) resume() { l.paused.Store(false) }

// stop makes the senders finish their current request and returns every result.
func (l *load) stop() []result {
	l.stopping.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results
}

// waitFor polls cond every 10 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// summary counts results by outcome and returns the ids acknowledged with 200.
type summary struct {
	byStatus map[int]int
	errors   int
	acked    []string
	slowest  time.Duration
}

func summarize(t *testing.T, results []result) summary {
	t.Helper()
	s := summary{byStatus: map[int]int{}}
	for _, r := range results {
		s.slowest = max(s.slowest, r.Took)
		if r.Err != nil {
			s.errors++
			continue
		}
		s.byStatus[r.Status]++
		if r.Status == http.StatusOK {
			var body struct{ Accepted, Rejected int }
			require.NoError(t, json.Unmarshal(r.Body, &body), string(r.Body))
			require.Equal(t, len(r.IDs), body.Accepted, string(r.Body))
			s.acked = append(s.acked, r.IDs...)
		}
	}
	return s
}

func (s summary) String() string {
	return fmt.Sprintf("statuses %v, %d without answer, %d events acknowledged, slowest %s",
		s.byStatus, s.errors, len(s.acked), s.slowest.Round(time.Millisecond))
}

// requireStored checks that every id is in <schema>.data and in
// <schema>.rudder_events, that neither table holds an event_id twice, that
// both tables hold the same events, and that each event has its two
// subtable rows (no event is half-written).
func requireStored(t *testing.T, dbURL, schema string, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	for _, table := range []string{"data", "rudder_events"} {
		rel := pgx.Identifier{schema, table}.Sanitize()
		rows, err := conn.Query(ctx, "SELECT event_id FROM "+rel+" WHERE event_id = ANY($1)", ids)
		require.NoError(t, err)
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		have := make(map[string]int, len(found))
		for _, id := range found {
			have[id]++
		}
		var missing []string
		for _, id := range ids {
			if have[id] != 1 {
				missing = append(missing, id)
			}
		}
		require.Empty(t, missing, "%d of %d acknowledged events are not in %s exactly once", len(missing), len(ids), rel)
		var total, distinct int64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT event_id) FROM "+rel).Scan(&total, &distinct))
		require.Equal(t, total, distinct, "%s holds an event_id twice", rel)
	}
	var orphans int64
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s d FULL JOIN %s r USING (event_id)
		WHERE d.event_id IS NULL OR r.event_id IS NULL`,
		pgx.Identifier{schema, "data"}.Sanitize(), pgx.Identifier{schema, "rudder_events"}.Sanitize())).Scan(&orphans))
	require.Zero(t, orphans, "data and rudder_events must hold the same events")

	sub, data := pgx.Identifier{schema, "data__data__recipients"}.Sanitize(), pgx.Identifier{schema, "data"}.Sanitize()
	var children int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+sub+" WHERE _sdc_source_key_event_id = ANY($1)", ids).Scan(&children))
	require.Equal(t, 2*len(ids), children, "rows of the acknowledged events in %s", sub)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+sub+" s LEFT JOIN "+data+
		" d ON d.event_id = s._sdc_source_key_event_id WHERE d.event_id IS NULL").Scan(&orphans))
	require.Zero(t, orphans, "subtable rows without their event")
}

// emptyDatabase creates a database with nothing in it (not even the
// migrations) on the test server, dropped at cleanup.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	adminURL, _ := testdb.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	name := fmt.Sprintf("e2e_empty_%d_%d", os.Getpid(), emptySeq.Add(1))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		require.NoError(t, err)
	})
	return testdb.DatabaseURL(adminURL, name)
}

var emptySeq atomic.Int64
