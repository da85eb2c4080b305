package e2e

import (
	"bytes"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/testdb"
)

// memoryMargin is what the process may use on top of CIOLOADER_MAX_INFLIGHT_BYTES
// (deploy/README.md, "Memory"): the runtime, the pool, buffers and the GC's slack.
const memoryMargin = 128 << 20

// defaultBudget is CIOLOADER_MAX_INFLIGHT_BYTES's default.
const defaultBudget = 640 << 20

// procStatus reads one kB field (VmRSS, VmHWM) of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err, line)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// bigArray is an array of n email events padded to about size bytes in all.
func bigArray(n, size int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		e := emailEvent("big-" + strconv.Itoa(i))
		e["data"].(map[string]any)["content"] = strings.Repeat("lorem ipsum ", (size/n-450)/12)
		b.Write(mustJSON(e))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// Issue 12: 13 parallel 19 MiB arrays of 10,000 events on one integration,
// default settings. Each is committed whole or refused with 503 and
// Retry-After — those over the budget at once, none after 10 s of work — and
// the server's peak RSS stays within the budget plus memoryMargin.
// SLOW: ~10 s.
func TestLargeArraysStayWithinMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	db := testdb.New(t)
	s := startServer(t, "memory", map[string]string{"DATABASE_URL": db}, 30*time.Second)
	in, u := s.setup(t, "Memory Budget")
	body := bigArray(10_000, 19<<20)
	t.Logf("body %.1f MiB; server RSS before %d MiB", float64(len(body))/(1<<20), procStatus(t, s.pid(), "VmRSS")>>20)

	answers := make([]answer, 13)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i] = post(u.URL, body, 60*time.Second) })
	}
	wg.Wait()
	hwm := procStatus(t, s.pid(), "VmHWM")
	t.Logf("server peak RSS %d MiB", hwm>>20)
	committed, early := 0, 0
	for i, a := range answers {
		require.NoError(t, a.Err, "request %d", i)
		t.Logf("request %d: %d after %v %s", i, a.Status, a.Took.Round(time.Millisecond), bytes.TrimSpace(a.Body))
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, a.Status, "request %d", i)
		if a.Status == http.StatusOK {
			committed++
			continue
		}
		require.NotEmpty(t, a.Header.Get("Retry-After"), "request %d", i)
		require.Less(t, a.Took, 10*time.Second, "request %d: no 503 after long work", i)
		if a.Took < 2*time.Second {
			early++
		}
	}
	require.GreaterOrEqual(t, early, 12, "all but the one array that fits are refused at once")
	t.Logf("%d of 13 committed; %d refused within 2 s", committed, early)
	require.LessOrEqual(t, hwm, int64(defaultBudget+memoryMargin), "peak RSS within the budget plus the margin")
	if committed == 0 {
		requireStored(t, db, in.Schema, nil) // a refused array writes nothing
		return
	}
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = "big-" + strconv.Itoa(i)
	}
	requireStored(t, db, in.Schema, ids) // a committed array is whole
}
