package cioapitest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/cioapi/cioapitest"
)

const key = "app-key-123"

// now is the servers' clock in these tests.
var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// newServer serves deliveries with a generous rate limit, so that only the
// rate-limit tests meet it.
func newServer(t *testing.T, deliveries []map[string]any) *cioapitest.Server {
	t.Helper()
	s := cioapitest.New(cioapitest.Options{Key: key, Deliveries: deliveries, PerSecond: 10000,
		Now: func() time.Time { return now }})
	t.Cleanup(s.Close)
	return s
}

// page is one decoded answer: its status, raw members and, for a list, ids and next.
type page struct {
	status  int
	body    map[string]any
	ids     []string
	next    string
	hasNext bool
}

func get(t *testing.T, s *cioapitest.Server, path, auth string, params url.Values) page {
	t.Helper()
	p, err := fetch(s.URL+path+"?"+params.Encode(), auth)
	require.NoError(t, err)
	return p
}

// fetch GETs url and decodes the answer, which must be JSON and carry no
// Retry-After (the document names none).
func fetch(url, auth string) (page, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return page{}, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	if ct, ra := resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"); ct != "application/json" || ra != "" {
		return page{}, fmt.Errorf("content type %q, Retry-After %q", ct, ra)
	}
	p := page{status: resp.StatusCode}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&p.body); err != nil {
		return page{}, err
	}
	if msgs, ok := p.body["messages"].([]any); ok {
		for _, m := range msgs {
			p.ids = append(p.ids, m.(map[string]any)["id"].(string))
		}
	}
	next, has := p.body["next"]
	p.hasNext = has
	if has {
		p.next, _ = next.(string)
	}
	return p, nil
}

func list(t *testing.T, s *cioapitest.Server, params url.Values) page {
	t.Helper()
	return get(t, s, "/v1/messages", "Bearer "+key, params)
}

// walk follows the cursor from params to the last page, repeating params on
// each request as a client must, and returns the ids in order and the pages.
func walk(t *testing.T, s *cioapitest.Server, params url.Values) (ids []string, pages []page) {
	t.Helper()
	for {
		p := list(t, s, params)
		require.Equal(t, http.StatusOK, p.status, p.body)
		ids, pages = append(ids, p.ids...), append(pages, p)
		if p.next == "" {
			return ids, pages
		}
		params = cloneWith(params, "start", p.next)
	}
}

func cloneWith(v url.Values, kv ...string) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	for i := 0; i < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return c
}

// created is a delivery's creation time.
func created(d map[string]any) int64 { return d["created"].(int64) }

// expected is the ids of ds that pass keep, newest first, ties by id.
func expected(ds []map[string]any, keep func(map[string]any) bool) []string {
	var sel []map[string]any
	for _, d := range ds {
		if keep(d) {
			sel = append(sel, d)
		}
	}
	slices.SortFunc(sel, func(a, b map[string]any) int {
		if c := created(b) - created(a); c != 0 {
			return int(c / max(c, -c))
		}
		return compare(a["id"].(string), b["id"].(string))
	})
	var ids []string
	for _, d := range sel {
		ids = append(ids, d["id"].(string))
	}
	return ids
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isDraft(d map[string]any) bool {
	m := d["metrics"].(map[string]any)
	_, drafted := m["drafted"]
	_, c := m["created"]
	return drafted && len(m) == 1+btoi(c)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestPaginationCoversEveryDeliveryOnce(t *testing.T) {
	t.Parallel()
	from, to := now.AddDate(0, -5, 0), now
	ds := append(cioapitest.Generate(2500, 1, from, to), cioapitest.DocExample())
	s := newServer(t, ds)
	window := url.Values{"start_ts": {unix(from)}, "end_ts": {unix(to)}}

	ids, pages := walk(t, s, cloneWith(window, "limit", "1000"))
	want := expected(ds, func(d map[string]any) bool {
		return created(d) >= from.Unix() && created(d) <= to.Unix() && !isDraft(d)
	})
	require.Len(t, want, len(ds)-countDrafts(ds)-1) // the document's example is from 2021
	require.Equal(t, want, ids)
	require.Len(t, pages, 3)
	require.False(t, pages[2].hasNext, "the third (odd) last page omits next")
	require.Len(t, pages[0].ids, 1000)
	require.Equal(t, slices.Repeat([]int{1000}, 3), s.Limits())
	require.Equal(t, slices.Repeat([][2]int64{{from.Unix(), to.Unix()}}, 3), s.Ranges())

	// Two pages: the even last page sends "next": "".
	ids, pages = walk(t, s, cloneWith(window, "limit", "1000", "type", "email"))
	require.Equal(t, expected(ds, func(d map[string]any) bool {
		return created(d) >= from.Unix() && d["type"] == "email" && !isDraft(d)
	}), ids)
	require.Len(t, pages, 2)
	require.True(t, pages[1].hasNext)
	require.Equal(t, "", pages[1].next)

	ids, _ = walk(t, s, cloneWith(window, "limit", "1000", "drafts", "true"))
	require.Len(t, ids, len(ds)-1)
}

func countDrafts(ds []map[string]any) int {
	n := 0
	for _, d := range ds {
		n += btoi(isDraft(d))
	}
	return n
}

func TestFilters(t *testing.T) {
	t.Parallel()
	ds := cioapitest.Generate(1500, 2, now.AddDate(0, -4, 0), now)
	s := newServer(t, ds)
	has := func(d map[string]any, k string) bool { _, ok := d["metrics"].(map[string]any)[k]; return ok }
	for _, tc := range []struct {
		params url.Values
		keep   func(map[string]any) bool
	}{
		{url.Values{"type": {"twilio"}}, func(d map[string]any) bool { return d["type"] == "twilio" }},
		{url.Values{"metric": {"opened"}}, func(d map[string]any) bool { return has(d, "opened") }},
		{url.Values{"metric": {"attempted"}}, func(map[string]any) bool { return false }},
		{url.Values{"campaign_id": {"7"}}, func(d map[string]any) bool { return d["campaign_id"] == int64(7) }},
		{url.Values{"newsletter_id": {"3"}, "metric": {"clicked"}}, func(d map[string]any) bool {
			return d["newsletter_id"] == int64(3) && has(d, "clicked")
		}},
		{url.Values{"action_id": {"215"}}, func(d map[string]any) bool { return d["action_id"] == int64(215) }},
		{url.Values{"drafts": {"true"}, "metric": {"failed"}}, func(d map[string]any) bool { return has(d, "failed") }},
	} {
		ids, _ := walk(t, s, cloneWith(tc.params, "limit", "1000"))
		want := expected(ds, func(d map[string]any) bool { return tc.keep(d) && (tc.params.Get("drafts") == "true" || !isDraft(d)) })
		require.Equal(t, want, ids, tc.params.Encode())
		if tc.params.Get("metric") != "attempted" {
			require.NotEmpty(t, ids, "%s selects nothing in the generated set", tc.params.Encode())
		}
	}
}

func TestRanges(t *testing.T) {
	t.Parallel()
	at := func(tm time.Time) map[string]any {
		return map[string]any{"id": "d" + unix(tm), "type": "email", "created": tm.Unix(),
			"metrics": map[string]any{"sent": tm.Unix()}}
	}
	edge := now.AddDate(0, -6, 0)
	ds := []map[string]any{at(now), at(edge), at(edge.Add(-time.Second)), at(now.AddDate(-1, 0, 0))}
	s := newServer(t, ds)

	for _, tc := range []struct {
		name   string
		params url.Values
		status int
		rng    [2]int64
		ids    []string
	}{
		{"none: the latest 6 months, both ends inclusive", url.Values{}, 200,
			[2]int64{edge.Unix(), now.Unix()}, []string{"d" + unix(now), "d" + unix(edge)}},
		{"only end_ts: the 6 months before it", url.Values{"end_ts": {unix(edge)}}, 200,
			[2]int64{edge.AddDate(0, -6, 0).Unix(), edge.Unix()},
			[]string{"d" + unix(edge), "d" + unix(edge.Add(-time.Second)), "d" + unix(now.AddDate(-1, 0, 0))}},
		{"only start_ts: up to now", url.Values{"start_ts": {unix(edge)}}, 200,
			[2]int64{edge.Unix(), now.Unix()}, []string{"d" + unix(now), "d" + unix(edge)}},
		{"exactly 6 months", url.Values{"start_ts": {unix(now.AddDate(-1, 0, 0))}, "end_ts": {unix(now.AddDate(-1, 6, 0))}}, 200,
			[2]int64{now.AddDate(-1, 0, 0).Unix(), now.AddDate(-1, 6, 0).Unix()},
			[]string{"d" + unix(edge), "d" + unix(edge.Add(-time.Second)), "d" + unix(now.AddDate(-1, 0, 0))}},
		{"6 months and a minute", url.Values{"start_ts": {unix(edge.Add(-time.Minute))}, "end_ts": {unix(now)}}, 400, [2]int64{}, nil},
		{"only start_ts, over 6 months ago", url.Values{"start_ts": {unix(edge.Add(-time.Hour))}}, 400, [2]int64{}, nil},
		{"a year", url.Values{"start_ts": {unix(now.AddDate(-1, 0, 0))}, "end_ts": {unix(now)}}, 400, [2]int64{}, nil},
		{"start after end", url.Values{"start_ts": {unix(now)}, "end_ts": {unix(edge)}}, 400, [2]int64{}, nil},
		{"not an integer", url.Values{"start_ts": {"2026-01-01"}}, 400, [2]int64{}, nil},
	} {
		before := len(s.Ranges())
		p := list(t, s, tc.params)
		require.Equal(t, tc.status, p.status, "%s: %v", tc.name, p.body)
		if tc.status != 200 {
			require.NotEmpty(t, p.body["meta"].(map[string]any)["error"], tc.name)
			require.Len(t, s.Ranges(), before, "%s: a refused request records no range", tc.name)
			continue
		}
		require.Equal(t, tc.ids, p.ids, tc.name)
		require.Equal(t, tc.rng, s.Ranges()[before], tc.name)
	}
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	s := newServer(t, []map[string]any{cioapitest.DocExample()})
	for _, auth := range []string{"", "Bearer wrong", key, "Basic " + key, "bearer" + key} {
		p := get(t, s, "/v1/messages", auth, nil)
		require.Equal(t, http.StatusUnauthorized, p.status, auth)
		require.Equal(t, map[string]any{"meta": map[string]any{"error": "Unauthorized request"}}, p.body)
		require.Equal(t, http.StatusUnauthorized, get(t, s, "/v1/messages/x", auth, nil).status)
	}
	require.Equal(t, 5, s.Requests())
	require.Empty(t, s.Ranges())
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := cioapitest.New(cioapitest.Options{Key: key})
	t.Cleanup(s.Close)
	const n = 30
	pages := make([]page, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { pages[i], errs[i] = fetch(s.URL+"/v1/messages", "Bearer "+key) })
	}
	wg.Wait()
	limited := 0
	for i, p := range pages {
		require.NoError(t, errs[i])
		require.Contains(t, []int{200, 429}, p.status)
		if p.status == http.StatusTooManyRequests {
			limited++
			require.Equal(t, map[string]any{"meta": map[string]any{"error": "Your request is over the 10-per-second limit."}}, p.body)
		}
	}
	require.Positive(t, limited)
	require.Equal(t, limited, s.RateLimited())
	require.Equal(t, n, s.Requests())
	require.Greater(t, s.MaxInOneSecond(), 10)

	// A second later the window has slid past the burst.
	time.Sleep(1100 * time.Millisecond)
	require.Equal(t, http.StatusOK, list(t, s, nil).status)
}

func TestRateLimitCountsRefusedRequests(t *testing.T) {
	t.Parallel()
	s := cioapitest.New(cioapitest.Options{Key: key, PerSecond: 2})
	t.Cleanup(s.Close)
	start := time.Now()
	got := []int{get(t, s, "/v1/messages", "", nil).status, get(t, s, "/nowhere", "", nil).status, list(t, s, nil).status}
	if time.Since(start) < time.Second {
		require.Equal(t, []int{401, 404, 429}, got)
		require.Equal(t, 1, s.RateLimited())
		require.Equal(t, 3, s.MaxInOneSecond())
		require.Equal(t, 2, s.Requests(), "the 404 is not a list request")
	}
}

func TestLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t, cioapitest.Generate(60, 3, now.AddDate(0, -1, 0), now))
	for _, l := range []string{"1001", "0", "-1", "abc", "1.5", "1e3"} {
		p := list(t, s, url.Values{"limit": {l}})
		require.Equal(t, http.StatusBadRequest, p.status, l)
		require.Contains(t, p.body["meta"].(map[string]any)["error"], "limit")
	}
	require.Len(t, list(t, s, nil).ids, 50, "the default limit")
	require.Equal(t, http.StatusOK, list(t, s, url.Values{"limit": {"1000"}}).status)
	require.Equal(t, []int{50, 1000}, s.Limits())
	for _, bad := range []url.Values{{"type": {"sms"}}, {"metric": {"human_opened"}}, {"drafts": {"maybe"}}, {"campaign_id": {"x"}}} {
		require.Equal(t, http.StatusBadRequest, list(t, s, bad).status, bad.Encode())
	}
}

func TestCursorBelongsToItsQuery(t *testing.T) {
	t.Parallel()
	s := newServer(t, cioapitest.Generate(300, 4, now.AddDate(0, -2, 0), now))
	q := url.Values{"type": {"email"}, "limit": {"20"}}
	first := list(t, s, q)
	require.Equal(t, http.StatusOK, first.status)
	require.NotEmpty(t, first.next)

	again := list(t, s, cloneWith(q, "start", first.next))
	require.Equal(t, http.StatusOK, again.status)
	require.Equal(t, again.ids, list(t, s, cloneWith(q, "start", first.next)).ids, "a cursor may be retried")
	require.Empty(t, slices.DeleteFunc(slices.Clone(again.ids), func(id string) bool { return !slices.Contains(first.ids, id) }))
	require.Equal(t, http.StatusOK, list(t, s, cloneWith(q, "start", first.next, "limit", "7")).status,
		"the page size may change between pages")

	for _, bad := range []url.Values{
		cloneWith(q, "start", first.next, "type", "push"),
		cloneWith(q, "start", first.next, "metric", "opened"),
		cloneWith(q, "start", first.next, "end_ts", unix(now)),
		{"start": {first.next}},
		cloneWith(q, "start", first.next+"x"),
		cloneWith(q, "start", "not-a-cursor"),
	} {
		p := list(t, s, bad)
		require.Equal(t, http.StatusBadRequest, p.status, bad.Encode())
		require.Contains(t, p.body["meta"].(map[string]any)["error"], "start")
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	s := newServer(t, []map[string]any{cioapitest.DocExample()})
	s.FailNext(http.StatusServiceUnavailable, 2)
	require.Equal(t, http.StatusServiceUnavailable, list(t, s, nil).status)
	require.Equal(t, http.StatusServiceUnavailable, get(t, s, "/v1/messages", "", nil).status, "before the key is looked at")
	require.Equal(t, http.StatusOK, list(t, s, nil).status)
	s.FailNext(http.StatusBadGateway, 1)
	require.Equal(t, http.StatusBadGateway, list(t, s, nil).status)
	require.Equal(t, 4, s.Requests())
	require.Len(t, s.Ranges(), 1)
}

func TestOneMessage(t *testing.T) {
	t.Parallel()
	ex := cioapitest.DocExample()
	s := newServer(t, []map[string]any{ex})
	auth := "Bearer " + key
	p := get(t, s, "/v1/messages/"+url.PathEscape(ex["id"].(string)), auth, nil)
	require.Equal(t, http.StatusOK, p.status)
	msg := p.body["message"].(map[string]any)
	require.Equal(t, ex["id"], msg["id"])
	require.Equal(t, json.Number("43"), msg["msg_template_id"])
	require.Equal(t, map[string]any{"delivered": json.Number("1619137768"), "sent": json.Number("1619137768")}, msg["metrics"])

	for _, path := range []string{"/v1/messages/unknown", "/v1/messages/", "/v1/activities", "/v2/messages", "/"} {
		require.Equal(t, http.StatusNotFound, get(t, s, path, auth, nil).status, path)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/messages", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	from, to := now.AddDate(0, -6, 0), now
	ds := cioapitest.Generate(3000, 5, from, to)
	again, _ := json.Marshal(cioapitest.Generate(3000, 5, from, to))
	first, _ := json.Marshal(ds)
	require.Equal(t, first, again, "the same seed gives the same deliveries")
	other, _ := json.Marshal(cioapitest.Generate(3000, 6, from, to))
	require.NotEqual(t, first, other)

	seen, types := map[string]bool{}, map[string]int{}
	forgotten := 0
	for _, d := range ds {
		id := d["id"].(string)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
		require.True(t, idPattern.MatchString(id), id)
		require.True(t, recipients[d["type"].(string)].MatchString(d["recipient"].(string)), "%v", d)
		ids := d["customer_identifiers"].(map[string]any)
		require.Equal(t, d["customer_id"], ids["id"])
		require.IsType(t, "", ids["cio_id"])
		c := created(d)
		require.True(t, c >= from.Unix() && c < to.Unix())
		require.Equal(t, id+":"+strconv.FormatInt(c, 10), d["deduplicate_id"])
		types[d["type"].(string)]++
		forgotten += btoi(d["forgotten"].(bool))
		parents := 0
		for _, k := range []string{"campaign_id", "newsletter_id", "broadcast_id"} {
			parents += btoi(d[k] != nil)
		}
		require.Equal(t, 1, parents, "one parent: %v", d)
		require.Equal(t, d["type"] == "email", d["subject"] != nil)
		checkMetrics(t, d)
	}
	require.Greater(t, types["email"], len(ds)/2)
	for _, typ := range []string{"push", "twilio", "whatsapp", "slack", "webhook", "in_app", "live_notification"} {
		require.Positive(t, types[typ], typ)
	}
	require.True(t, forgotten > 0 && forgotten < len(ds)/30, "forgotten %d", forgotten)
}

var (
	idPattern  = regexp.MustCompile(`^ag1q[A-Za-z0-9_-]{31}=$`)
	person     = regexp.MustCompile(`^[0-9a-z_]+$`)
	recipients = map[string]*regexp.Regexp{
		"email": regexp.MustCompile(`^[a-z]+\.[0-9]+@example\.com$`), "push": regexp.MustCompile(`^[0-9a-f]{64}$`),
		"twilio": regexp.MustCompile(`^\+1555[0-9]{7}$`), "whatsapp": regexp.MustCompile(`^\+1555[0-9]{7}$`),
		"slack": regexp.MustCompile(`^C0[0-9A-F]{8}$`), "webhook": regexp.MustCompile(`^https://hooks\.example\.com/cio/[0-9]+$`),
		"in_app": person, "live_notification": person,
	}
)

// checkMetrics: every metric time is at or after created, in the order a
// delivery lives through, and failure_message is there exactly on failures.
func checkMetrics(t *testing.T, d map[string]any) {
	t.Helper()
	m := d["metrics"].(map[string]any)
	require.NotEmpty(t, m)
	order := []string{"drafted", "sent", "delivered", "opened", "clicked", "converted"}
	last := created(d)
	for _, k := range order {
		if v, ok := m[k]; ok {
			require.GreaterOrEqual(t, v.(int64), last, "%s of %v", k, d)
			last = v.(int64)
		}
	}
	failed := false
	for _, k := range []string{"bounced", "dropped", "failed", "undeliverable"} {
		_, has := m[k]
		failed = failed || has
	}
	require.Equal(t, failed, d["failure_message"] != nil, "%v", d)
}
