// Package bench is cioloader's load generator: closed-loop HTTP clients that
// post realistic Customer.io events, with latency percentiles and throughput.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario is one load shape.
type Scenario struct {
	Name     string
	URL      string
	Conns    int           // concurrent connections, each sending serially
	PerReq   int           // events per request (1 = a bare object, more = an array)
	Duration time.Duration // measured time
	Warmup   time.Duration // unmeasured time before it
	RunID    string        // makes event_ids unique across runs
}

// Result is what a scenario measured.
type Result struct {
	Scenario   Scenario
	Requests   int64
	Events     int64 // events acknowledged with 200
	Errors     int64 // non-200 answers and transport errors
	ErrorKinds map[string]int64
	Elapsed    time.Duration
	P50, P99   time.Duration
	Max        time.Duration
	WarmEvents int64 // events acknowledged during warm-up (they are rows too)
}

// EventsPerSec is acknowledged events per second of measured time.
func (r Result) EventsPerSec() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// ReqPerSec is answered requests per second.
func (r Result) ReqPerSec() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Run drives s until its duration has passed.
func Run(ctx context.Context, s Scenario) Result { return RunAlternating(ctx, s, []string{s.URL})[0] }

// RunAlternating drives s with each connection sending its requests to urls in
// turn, and returns one Result per URL. Servers loaded this way share every
// moment of the run (the machine's other load, the disk), so their latencies
// compare within one run, on a machine whose figures move more between runs
// than between the servers.
func RunAlternating(ctx context.Context, s Scenario, urls []string) []Result {
	tr := &http.Transport{
		MaxIdleConnsPerHost: s.Conns * len(urls),
		MaxConnsPerHost:     s.Conns,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var measuring atomic.Bool
	start := time.Now()
	stopAt := start.Add(s.Warmup + s.Duration)
	workers := make([]*worker, s.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, s: s, client: client}
		for _, u := range urls {
			w.targets = append(w.targets, &target{url: u, kinds: map[string]int64{}})
		}
		workers[i] = w
		wg.Go(func() { w.loop(ctx, stopAt, &measuring) })
	}
	time.Sleep(s.Warmup)
	measuring.Store(true)
	mStart := time.Now()
	wg.Wait()
	elapsed := time.Since(mStart)
	results := make([]Result, len(urls))
	for i, u := range urls {
		su := s
		su.URL = u
		results[i] = merge(su, workers, i, elapsed)
	}
	return results
}

type worker struct {
	id      int
	s       Scenario
	client  *http.Client
	seq     int
	targets []*target // the URLs this connection sends to, in turn
	buf     bytes.Buffer
}

// target is what one connection measured of one URL.
type target struct {
	url    string
	lat    []time.Duration
	reqs   int64
	events int64
	warm   int64
	errors int64
	kinds  map[string]int64
}

func (w *worker) loop(ctx context.Context, stopAt time.Time, measuring *atomic.Bool) {
	for n := 0; ctx.Err() == nil && time.Now().Before(stopAt); n++ {
		t := w.targets[n%len(w.targets)]
		body := w.body()
		t0 := time.Now()
		status, err := w.post(ctx, t.url, body)
		d := time.Since(t0)
		on := measuring.Load()
		switch {
		case err != nil:
			t.fail(on, "transport: "+err.Error())
		case status != http.StatusOK:
			t.fail(on, fmt.Sprintf("HTTP %d", status))
		case on:
			t.reqs++
			t.events += int64(w.s.PerReq)
			t.lat = append(t.lat, d)
		default:
			t.warm += int64(w.s.PerReq)
		}
	}
}

func (t *target) fail(measuring bool, kind string) {
	if measuring {
		t.errors++
		t.reqs++
	}
	t.kinds[kind]++
}

func (w *worker) post(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// body renders PerReq fresh events (an array when more than one).
func (w *worker) body() []byte {
	w.buf.Reset()
	if w.s.PerReq > 1 {
		w.buf.WriteByte('[')
	}
	for i := range w.s.PerReq {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		w.seq++
		writeEvent(&w.buf, fmt.Sprintf("%s-%s-%d-%d", w.s.RunID, w.s.Name, w.id, w.seq), w.seq)
	}
	if w.s.PerReq > 1 {
		w.buf.WriteByte(']')
	}
	return slices.Clone(w.buf.Bytes())
}

func merge(s Scenario, workers []*worker, target int, elapsed time.Duration) Result {
	r := Result{Scenario: s, Elapsed: elapsed, ErrorKinds: map[string]int64{}}
	var lat []time.Duration
	for _, w := range workers {
		t := w.targets[target]
		r.Requests += t.reqs
		r.Events += t.events
		r.Errors += t.errors
		r.WarmEvents += t.warm
		lat = append(lat, t.lat...)
		for k, v := range t.kinds {
			r.ErrorKinds[k] += v
		}
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		r.P50 = lat[n/2]
		r.P99 = lat[min(n-1, n*99/100)]
		r.Max = lat[n-1]
	}
	return r
}
