package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Dataset is the read-side load: Events realistic delivery events (sent, delivered,
// opened, clicked, bounced, over campaigns, broadcasts, newsletters and transactional
// messages), posted in arrays of 500 over a few connections.
type Dataset struct {
	Events    int64
	JSONBytes int64 // bytes of event JSON posted (the array brackets and commas excluded)
	Elapsed   time.Duration
	Retries   int64 // arrays answered 503 and posted again
	// Tenths are the times since the start at which each tenth of the events
	// had been acknowledged (10 of them when the load completed).
	Tenths []time.Duration
}

// TenthRates are the events per second acknowledged in each tenth of the load.
func (d Dataset) TenthRates() []float64 {
	out := make([]float64, len(d.Tenths))
	prev := time.Duration(0)
	for i, t := range d.Tenths {
		out[i] = float64(d.Events) / 10 / (t - prev).Seconds()
		prev = t
	}
	return out
}

// datasetSpan is how far back the dataset's event times go: 13 months, as a
// year of history with a retention window of 395 days holds.
const datasetSpan = 395 * 24 * time.Hour

// datasetClock spreads the deliveries' times evenly over datasetSpan ending at
// the load's start: delivery d was sent at base + d×step seconds.
// people is how many customers the deliveries go to: one per ten events, so a
// 10 M load has a million people, as a sender of that size has (each gets about
// four emails over the 13 months).
type datasetClock struct {
	base, step float64
	people     int
}

func newDatasetClock(start time.Time, events int64) datasetClock {
	deliveries := max(float64(events)/2.5, 1) // deliveryEvents makes about 2.5 events each
	return datasetClock{base: float64(start.Add(-datasetSpan).Unix()), step: datasetSpan.Seconds() / deliveries,
		people: int(max(events/10, 1))}
}

func (c datasetClock) at(d, i int) int64 { return int64(c.base+float64(d)*c.step) + int64(i)*600 }

// deliveryEvents appends the events of delivery d (about 2.5 of them) to out and
// returns it. Each event is ~450 bytes of JSON, as Customer.io sends it without
// Body Content.
func deliveryEvents(out [][]byte, runID string, clock datasetClock, d int) [][]byte {
	metrics := []string{"sent", "delivered"}
	switch {
	case d%33 == 0:
		metrics = []string{"sent", "bounced"}
	case d%10 == 0:
		metrics = append(metrics, "opened", "clicked")
	case d%5 < 2:
		metrics = append(metrics, "opened")
	}
	for i, m := range metrics {
		out = append(out, datasetEvent(runID, clock, d, i, m))
	}
	return out
}

// datasetEvent is one event of delivery d. The kind of message cycles: 7 in 10
// campaign deliveries, then broadcast, newsletter and transactional ones.
func datasetEvent(runID string, clock datasetClock, d, i int, metric string) []byte {
	var b bytes.Buffer
	// People are user-100 … user-<people+99>, so the README's one-customer query
	// (user-123) finds a typical person: about ten events.
	person := 100 + d%clock.people
	cust := "user-" + strconv.Itoa(person)
	fmt.Fprintf(&b, `{"event_id":"%s%08dx%d","object_type":"email","metric":"%s","timestamp":%d,"data":{`,
		runID, d, i, metric, clock.at(d, i))
	switch d % 20 {
	case 14, 15, 16:
		fmt.Fprintf(&b, `"broadcast_id":%d,"trigger_id":%d,"action_id":%d,`, 10+d%7, d%1000, 300+d%7)
	case 17, 18:
		fmt.Fprintf(&b, `"newsletter_id":%d,"content_id":%d,`, 40+d%5, d%5)
	case 19:
		fmt.Fprintf(&b, `"transactional_message_id":%d,`, 70+d%3)
	default:
		fmt.Fprintf(&b, `"campaign_id":%d,"action_id":%d,"journey_id":"01GW2Z8H9JQ6ZPBV4PAF0RRT2S",`, 20+d%30, 100+d%30)
	}
	fmt.Fprintf(&b, `"customer_id":"%s","delivery_id":"RAECAAFwnUSneIa0ZXkmq8Ed%08d",`+
		`"identifiers":{"id":"%s","email":"customer%d@example.com","cio_id":"d9c10600%d"},`+
		`"recipient":"customer%d@example.com","subject":"Your weekly summary is ready"`, cust, d, cust, person, person, person)
	switch metric {
	case "clicked":
		b.WriteString(`,"href":"https://example.com/summary?utm_source=customerio","link_id":31`)
	case "bounced":
		b.WriteString(`,"failure_message":"550 5.1.1 The email account that you tried to reach does not exist"`)
	}
	b.WriteString("}}")
	return b.Bytes()
}

// LoadDataset posts n events to url in arrays of 500 over conns connections and
// returns what was acknowledged. A 503 is retried after a pause, as Customer.io
// retries (up to 5 times, counted in Dataset.Retries); any other non-200
// answer stops it with an error.
//
// progress, when not nil, is told each tenth as it completes (for a long load's
// log), with the rate of that tenth.
func LoadDataset(ctx context.Context, url, runID string, n int64, conns int, progress func(tenth int, rate float64)) (Dataset, error) {
	client := &http.Client{Timeout: 60 * time.Second}
	var next, acked, bytesSent, retries atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	clock := newDatasetClock(start, n)
	var mu sync.Mutex
	var tenths []time.Duration
	// mark records the times at which acknowledged events passed each tenth.
	mark := func(acked int64) {
		mu.Lock()
		defer mu.Unlock()
		for len(tenths) < 10 && acked*10 >= int64(len(tenths)+1)*n {
			prev := time.Duration(0)
			if len(tenths) > 0 {
				prev = tenths[len(tenths)-1]
			}
			tenths = append(tenths, time.Since(start))
			if progress != nil {
				progress(len(tenths), float64(n)/10/(tenths[len(tenths)-1]-prev).Seconds())
			}
		}
	}
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				d := int(next.Add(200) - 200) // 200 deliveries ≈ 500 events
				var evs [][]byte
				for i := d; i < d+200; i++ {
					evs = deliveryEvents(evs, runID, clock, i)
				}
				if remaining := n - acked.Load(); remaining <= 0 {
					return
				}
				size, err := postArray(ctx, client, url, evs)
				for try := 1; errors.Is(err, errRetry) && try <= 5 && ctx.Err() == nil; try++ {
					retries.Add(1)
					time.Sleep(time.Duration(try) * 200 * time.Millisecond)
					size, err = postArray(ctx, client, url, evs)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				bytesSent.Add(size)
				mark(acked.Add(int64(len(evs))))
			}
		})
	}
	wg.Wait()
	return Dataset{Events: acked.Load(), JSONBytes: bytesSent.Load(), Elapsed: time.Since(start), Retries: retries.Load(), Tenths: tenths}, firstErr
}

// errRetry is a 503: the sender is to retry.
var errRetry = errors.New("503, retry")

func postArray(ctx context.Context, client *http.Client, url string, evs [][]byte) (int64, error) {
	body := append([]byte("["), bytes.Join(evs, []byte(","))...)
	body = append(body, ']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: dataset: %w", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return 0, fmt.Errorf("bench: dataset: %w: %s", errRetry, msg)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench: dataset: %d %s", resp.StatusCode, msg)
	}
	return int64(len(body) - 1 - len(evs)), nil // brackets and commas are not event bytes
}
