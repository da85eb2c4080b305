package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// Ensure concurrent deliveries of the same event_ids all commit: 50
// connections post single events drawn from 100 ids for 5 s, so group commits
// keep sharing ids in every order. Each must get a 200 — a deadlock between
// two group commits would be a 503, and Customer.io would hold the webhook back.
func TestConcurrentSameIDsAllCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s of load")
	}
	// Not parallel: it runs alone, before the parallel tests, so its load
	// neither slows their timing-sensitive checks nor is slowed by them.
	app := apptest.Start(t)
	_, u := app.Setup(t, "Same IDs")
	const conns, ids, duration = 50, 100, 5 * time.Second
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	t.Cleanup(client.CloseIdleConnections)

	var sent atomic.Int64
	var mu sync.Mutex
	failures := map[string]int{}
	stop := time.Now().Add(duration)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for time.Now().Before(stop) {
				n := rng.IntN(ids)
				body := fmt.Sprintf(`{"event_id":"id-%03d","object_type":"email","metric":"sent","data":{"n":%d,"list":[%d,{"x":1}]}}`, n, rng.IntN(1000), n)
				status, text := post(client, u.URL, body)
				sent.Add(1)
				if status != http.StatusOK {
					mu.Lock()
					failures[fmt.Sprintf("%d %s", status, text)]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests in %s", sent.Load(), duration)
	require.Greater(t, sent.Load(), int64(conns), "the load did not run")
	if len(failures) > 0 {
		kinds := make([]string, 0, len(failures))
		for k, n := range failures {
			kinds = append(kinds, fmt.Sprintf("%d× %s", n, k))
		}
		sort.Strings(kinds)
		t.Fatalf("concurrent deliveries of the same ids were refused:\n%v", kinds)
	}
}

func post(client *http.Client, url, body string) (int, string) {
	resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b))
}
