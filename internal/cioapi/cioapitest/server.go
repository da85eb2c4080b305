// Package cioapitest is a stand-in for Customer.io's App API listing of past
// deliveries (GET /v1/messages and GET /v1/messages/{id}), for tests of the
// history import. It follows ../shared/reference/customerio-app-api-messages.md
// (the facts read from Customer.io's published OpenAPI document); where that
// document is silent, a comment says what this server chose.
package cioapitest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	defaultLimit     = 50
	maxLimit         = 1000
	defaultPerSecond = 10
	// windowSlack is how far past 6 months a range may reach before it is
	// refused, so a client's own rounding of "6 months" is not punished.
	windowSlack = 5 * time.Second
)

// Options configure a Server.
type Options struct {
	Key        string           // the App API key accepted as "Authorization: Bearer <Key>"; must not be empty
	Deliveries []map[string]any // the workspace's deliveries (see Generate); not modified, and not to be modified after New
	Now        func() time.Time // the server's "now", for ranges left open (default time.Now)
	PerSecond  int              // rate limit in requests per sliding second (default 10, the document's)
}

// Server is a running stand-in. All methods are safe for concurrent use.
type Server struct {
	URL string // the base: the list is at URL + "/v1/messages"

	ts         *httptest.Server
	key        string
	now        func() time.Time
	perSecond  int
	deliveries []delivery // newest created first, ties by id
	byID       map[string]map[string]any

	mu          sync.Mutex
	arrivals    []time.Time // the arrivals of the last second
	maxInOne    int
	requests    int
	rateLimited int
	failStatus  int
	failLeft    int
	ranges      [][2]int64
	limits      []int
	cursors     map[string]cursor
}

// delivery is one listed delivery with what the filters read from it.
type delivery struct {
	obj     map[string]any
	id      string
	created int64
}

// New starts a Server; Close stops it. Deliveries whose created is not an
// integer are never listed (the document types it as an integer); those with
// a string id are also served by GET /v1/messages/{id}.
func New(opts Options) *Server {
	if opts.Key == "" {
		panic("cioapitest: Options.Key is empty")
	}
	s := &Server{key: opts.Key, now: opts.Now, perSecond: opts.PerSecond,
		byID: map[string]map[string]any{}, cursors: map[string]cursor{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.perSecond <= 0 {
		s.perSecond = defaultPerSecond
	}
	for _, d := range opts.Deliveries {
		id, isString := d["id"].(string)
		if isString {
			s.byID[id] = d
		}
		if created, ok := intOf(d["created"]); ok {
			s.deliveries = append(s.deliveries, delivery{obj: d, id: id, created: created})
		}
	}
	slices.SortStableFunc(s.deliveries, func(a, b delivery) int {
		if a.created != b.created {
			return int(sign(b.created - a.created))
		}
		return strings.Compare(a.id, b.id)
	})
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	return s
}

func sign(n int64) int64 {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// Requests is how many GET /v1/messages (list) requests were answered, with any status.
func (s *Server) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

// RateLimited is how many requests were answered 429.
func (s *Server) RateLimited() int { s.mu.Lock(); defer s.mu.Unlock(); return s.rateLimited }

// MaxInOneSecond is the most requests (to any path, refused ones included)
// that arrived within one sliding second.
func (s *Server) MaxInOneSecond() int { s.mu.Lock(); defer s.mu.Unlock(); return s.maxInOne }

// FailNext makes the next n requests, to any path, get status (e.g. 500, 502,
// 503) before anything else is looked at; they still count for the rate limit.
func (s *Server) FailNext(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus, s.failLeft = status, n
}

// Ranges is the creation-time range [start_ts, end_ts] (Unix seconds, both
// inclusive) of each list request answered 200, in order: the range the
// request resolved to (defaults applied), or its cursor's.
func (s *Server) Ranges() [][2]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ranges)
}

// Limits is the page size of each list request answered 200, in the order of Ranges.
func (s *Server) Limits() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.limits)
}

// ServeHTTP answers one request: a forced failure (FailNext), then the rate
// limit, then the route, the key and the query.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	list := r.Method == http.MethodGet && r.URL.Path == "/v1/messages"
	id, one := strings.CutPrefix(r.URL.Path, "/v1/messages/")
	one = one && r.Method == http.MethodGet && id != "" && !strings.Contains(id, "/")
	if status, msg := s.admit(list); status != 0 {
		writeError(w, status, msg)
		return
	}
	switch {
	case !list && !one:
		writeError(w, http.StatusNotFound, "Not found")
	case r.Header.Get("Authorization") != "Bearer "+s.key:
		// The 401 body is our guess at Customer.io's error shape: the document
		// gives none for 401.
		writeError(w, http.StatusUnauthorized, "Unauthorized request")
	case one:
		s.serveOne(w, id)
	default:
		s.serveList(w, r)
	}
}

// admit records the request's arrival and says whether it is refused before
// routing: a forced failure, or 429 when more than PerSecond requests arrived
// within the last second, this one included.
func (s *Server) admit(list bool) (status int, msg string) {
	now := time.Now() // real time, not Options.Now: the limit is on the wire
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := 0
	for keep < len(s.arrivals) && now.Sub(s.arrivals[keep]) >= time.Second {
		keep++
	}
	s.arrivals = append(s.arrivals[keep:], now)
	s.maxInOne = max(s.maxInOne, len(s.arrivals))
	if list {
		s.requests++
	}
	if s.failLeft > 0 {
		s.failLeft--
		return s.failStatus, http.StatusText(s.failStatus)
	}
	if len(s.arrivals) > s.perSecond {
		s.rateLimited++
		return http.StatusTooManyRequests, fmt.Sprintf("Your request is over the %d-per-second limit.", s.perSecond)
	}
	return 0, ""
}

func (s *Server) serveOne(w http.ResponseWriter, id string) {
	d, ok := s.byID[id]
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": d})
}

// serveList answers one page. The last page omits "next" when its page number
// (offset/limit + 1) is odd and sends "next": "" when it is even, so a client
// meets both endings the document allows.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	q, err := s.parseQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var matched []map[string]any
	for _, d := range s.deliveries {
		if q.matches(d) {
			matched = append(matched, d.obj)
		}
	}
	end := min(q.offset+q.limit, len(matched))
	page := matched[min(q.offset, end):end]
	body := map[string]any{"messages": append([]map[string]any{}, page...)}
	s.mu.Lock()
	s.ranges = append(s.ranges, [2]int64{q.from, q.to})
	s.limits = append(s.limits, q.limit)
	switch {
	case end < len(matched):
		c := cursor{key: q.key, from: q.from, to: q.to, offset: end}
		token := c.token()
		s.cursors[token] = c
		body["next"] = token
	case (q.offset/q.limit+1)%2 == 0:
		body["next"] = ""
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// cursor is what a "next" stands for: the query it belongs to, its resolved
// range, and how many matching deliveries earlier pages held.
type cursor struct {
	key      string
	from, to int64
	offset   int
}

// token is the cursor's opaque text, derived from all of it so that each
// cursor has its own.
func (c cursor) token() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d", c.key, c.from, c.to, c.offset))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// lookupCursor is the cursor a start parameter names, which must belong to key.
func (s *Server) lookupCursor(start, key string) (cursor, error) {
	s.mu.Lock()
	c, ok := s.cursors[start]
	s.mu.Unlock()
	switch {
	case !ok:
		return cursor{}, fmt.Errorf("start %q is not a cursor this server gave", start)
	case c.key != key:
		return cursor{}, fmt.Errorf("start %q belongs to another query", start)
	}
	return c, nil
}

// writeError answers {"meta":{"error": msg}}: the document gives only the 429
// text, and no body shape for any status, so the shape is our guess.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"meta": map[string]any{"error": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, fmt.Appendf(nil, `{"meta":{"error":%q}}`, err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// The enumerations of the document's type and metric parameters. A value
// outside them is refused with 400 (the document is silent: a strict stand-in
// catches a client's typo).
var (
	types   = []string{"email", "webhook", "twilio", "whatsapp", "slack", "push", "in_app", "live_notification"}
	metrics = []string{"attempted", "sent", "delivered", "opened", "clicked", "converted", "bounced",
		"spammed", "unsubscribed", "dropped", "failed", "undeliverable"}
	idFilters = []string{"campaign_id", "newsletter_id", "action_id"}
)

// query is one list request, parsed.
type query struct {
	key      string // the filters in canonical form: what a cursor belongs to
	typ      string
	metric   string
	ids      map[string]int64 // idFilters given
	drafts   bool
	from, to int64 // the creation-time range, both ends inclusive
	limit    int
	offset   int
}

// parseQuery reads a list request's parameters, refusing what the document
// rules out. A cursor (start) carries the range and offset of its first page;
// the request must repeat that page's filters, limit aside.
func (s *Server) parseQuery(v url.Values) (query, error) {
	q := query{limit: defaultLimit, ids: map[string]int64{}}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return query{}, fmt.Errorf("limit %q is not an integer from 1 to %d", l, maxLimit)
		}
		q.limit = n
	}
	if err := q.parseFilters(v); err != nil {
		return query{}, err
	}
	if start := v.Get("start"); start != "" {
		c, err := s.lookupCursor(start, q.key)
		if err != nil {
			return query{}, err
		}
		q.from, q.to, q.offset = c.from, c.to, c.offset
		return q, nil
	}
	var err error
	q.from, q.to, err = resolveRange(v, s.now().UTC())
	return q, err
}

// parseFilters reads type, metric, the id filters, drafts and the range
// parameters (as given) into q, and q's canonical key from them.
func (q *query) parseFilters(v url.Values) error {
	q.typ, q.metric = v.Get("type"), v.Get("metric")
	if q.typ != "" && !slices.Contains(types, q.typ) {
		return fmt.Errorf("type %q is not one of %s", q.typ, strings.Join(types, ", "))
	}
	if q.metric != "" && !slices.Contains(metrics, q.metric) {
		return fmt.Errorf("metric %q is not one of %s", q.metric, strings.Join(metrics, ", "))
	}
	key := []string{"type=" + q.typ, "metric=" + q.metric}
	for _, name := range append(slices.Clone(idFilters), "start_ts", "end_ts") {
		if s := v.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%s %q is not an integer", name, s)
			}
			if slices.Contains(idFilters, name) {
				q.ids[name] = n
			}
			key = append(key, name+"="+strconv.FormatInt(n, 10))
		}
	}
	if d := v.Get("drafts"); d != "" {
		b, err := strconv.ParseBool(d)
		if err != nil {
			return fmt.Errorf("drafts %q is not a boolean", d)
		}
		q.drafts = b
	}
	q.key = strings.Join(append(key, "drafts="+strconv.FormatBool(q.drafts)), "&")
	return nil
}

// resolveRange is the request's creation-time range, as the document rules:
// at most 6 months (calendar months, UTC; windowSlack of leeway); none given,
// the latest 6 months; only end_ts, the 6 months before it; only start_ts, up
// to now. Both ends are inclusive: the document does not say.
func resolveRange(v url.Values, now time.Time) (from, to int64, err error) {
	start, hasStart := v.Get("start_ts"), v.Get("start_ts") != ""
	end, hasEnd := v.Get("end_ts"), v.Get("end_ts") != ""
	from, _ = strconv.ParseInt(start, 10, 64) // parseFilters checked both
	to, _ = strconv.ParseInt(end, 10, 64)
	sixBefore := func(t int64) int64 { return time.Unix(t, 0).UTC().AddDate(0, -6, 0).Unix() }
	switch {
	case !hasStart && !hasEnd:
		return sixBefore(now.Unix()), now.Unix(), nil
	case !hasStart:
		return sixBefore(to), to, nil
	case !hasEnd:
		to = now.Unix()
	}
	if from > to {
		return 0, 0, fmt.Errorf("start_ts %d is after end_ts %d (or now)", from, to)
	}
	if from < sixBefore(to)-int64(windowSlack/time.Second) {
		return 0, 0, fmt.Errorf("start_ts %d to end_ts %d is more than 6 months", from, to)
	}
	return from, to, nil
}

// matches reports whether d is in q's range and passes its filters. Unless
// drafts=true, drafts are left out: a delivery whose only metric is drafted
// (created, a creation time rather than a step, aside).
func (q query) matches(d delivery) bool {
	if d.created < q.from || d.created > q.to {
		return false
	}
	if q.typ != "" && d.obj["type"] != q.typ {
		return false
	}
	m, _ := d.obj["metrics"].(map[string]any)
	if _, has := m[q.metric]; q.metric != "" && !has {
		return false
	}
	for name, want := range q.ids {
		if got, ok := intOf(d.obj[name]); !ok || got != want {
			return false
		}
	}
	return q.drafts || !isDraft(m)
}

func isDraft(metrics map[string]any) bool {
	if _, drafted := metrics["drafted"]; !drafted {
		return false
	}
	for k := range metrics {
		if k != "drafted" && k != "created" {
			return false
		}
	}
	return true
}

// intOf is v as an int64 when it is an integer of any of the forms a
// JSON-shaped map holds: a Go integer, an integral float64 or a json.Number.
func intOf(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		return int64(n), n == float64(int64(n))
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}
