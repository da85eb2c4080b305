// Package cioapi is a client of Customer.io's App API, for the one route a
// history import reads: GET /v1/messages, the workspace's deliveries (facts in
// shared/reference/customerio-app-api-messages.md). It keeps to the API's
// limits: at most 10 requests a second, pages of at most 1000, windows of at
// most six months of creation time, and backs off on 429 and 5xx.
package cioapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Regions' base URLs.
var Regions = map[string]string{"us": "https://api.customer.io", "eu": "https://api-eu.customer.io"}

// MaxLimit is the largest page the API serves.
const MaxLimit = 1000

// MaxWindow is the widest range of creation times one request may ask for.
const MaxWindow = 6 // months

// ErrAuth: the API refused the key (401 or 403).
var ErrAuth = errors.New("app api refused the key")

// Config sets up a Client. Zero values take the defaults noted.
type Config struct {
	BaseURL string // e.g. Regions["us"]; a proxy or test server
	Key     string // the App API key: sent, never logged
	Region  string // named in the error for a refused key
	// Interval between requests (default 105 ms: under 10 a second, with room
	// for the network's jitter, since the API counts arrivals).
	Interval time.Duration
	// Retries after a 429, a 5xx or a network error before giving up (default 8),
	// waiting Backoff, doubled each time up to MaxBackoff (defaults 1 s, 30 s), with jitter.
	Retries    int
	Backoff    time.Duration
	MaxBackoff time.Duration
	HTTP       *http.Client // default: 60 s timeout
}

// Client reads GET /v1/messages. It is safe for one goroutine at a time.
type Client struct {
	cfg     Config
	limiter *rate.Limiter
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if _, err := url.Parse(cfg.BaseURL); err != nil || cfg.BaseURL == "" {
		return nil, fmt.Errorf("app api url %q is not a URL", cfg.BaseURL)
	}
	if strings.TrimSpace(cfg.Key) == "" {
		return nil, errors.New("the App API key is empty")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 105 * time.Millisecond
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 8
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Client{cfg: cfg, limiter: rate.NewLimiter(rate.Every(cfg.Interval), 1)}, nil
}

// Query is one page's request.
type Query struct {
	Start, End time.Time // creation times, End included by the API's reading of end_ts
	Cursor     string    // the previous page's next; "" for the first page
	Limit      int       // 1..MaxLimit
}

// Page is one answer: its deliveries (decoded with UseNumber, as sent) and the
// cursor of the next page, "" on the last.
type Page struct {
	Messages []map[string]any
	Next     string
	Retries  int // requests retried before this answer
}

// Messages fetches one page, waiting for its turn under the rate limit and
// retrying 429s, 5xx and network errors with back-off. A refused key is
// ErrAuth at once; any other 4xx is an error naming the API's message.
func (c *Client) Messages(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		return Page{}, fmt.Errorf("limit %d is outside 1..%d", q.Limit, MaxLimit)
	}
	if q.Start.Before(q.End.AddDate(0, -MaxWindow, 0)) {
		return Page{}, fmt.Errorf("window %s–%s is wider than %d months", q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339), MaxWindow)
	}
	v := url.Values{}
	v.Set("limit", strconv.Itoa(q.Limit))
	v.Set("start_ts", strconv.FormatInt(q.Start.Unix(), 10))
	v.Set("end_ts", strconv.FormatInt(q.End.Unix(), 10))
	v.Set("drafts", "true") // a drafted message is a reporting-webhook event too
	if q.Cursor != "" {
		v.Set("start", q.Cursor)
	}
	u := c.cfg.BaseURL + "/v1/messages?" + v.Encode()
	wait := c.cfg.Backoff
	var last error
	for attempt := 0; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return Page{}, err
		}
		p, retry, err := c.get(ctx, u)
		if err == nil {
			p.Retries = attempt
			return p, nil
		}
		if !retry || ctx.Err() != nil {
			return Page{}, err
		}
		last = err
		if attempt >= c.cfg.Retries {
			return Page{}, fmt.Errorf("customer.io app api: gave up after %d attempts: %w", attempt+1, last)
		}
		jittered := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return Page{}, ctx.Err()
		case <-time.After(jittered):
		}
		wait = min(2*wait, c.cfg.MaxBackoff)
	}
}

// get makes one request; retry says whether a failure is worth another try.
func (c *Client) get(ctx context.Context, u string) (p Page, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Page{}, false, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil { // the network, or ctx: Messages stops when ctx is done
		return Page{}, true, fmt.Errorf("customer.io app api: %s", redact(err.Error(), c.cfg.Key))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return Page{}, true, fmt.Errorf("customer.io app api: reading the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Page{}, false, fmt.Errorf("%w: Customer.io answered %d to the App API key: check the key (an App API key, not a Track API key) and the region (--region %s; the workspace may be in the %s region)",
			ErrAuth, resp.StatusCode, c.region(), c.otherRegion())
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return Page{}, true, fmt.Errorf("customer.io app api answered %d: %s", resp.StatusCode, apiMessage(body))
	case resp.StatusCode != http.StatusOK:
		return Page{}, false, fmt.Errorf("customer.io app api answered %d: %s", resp.StatusCode, apiMessage(body))
	}
	return decodePage(body)
}

func (c *Client) region() string {
	if c.cfg.Region == "" {
		return "us"
	}
	return c.cfg.Region
}

func (c *Client) otherRegion() string {
	if c.region() == "eu" {
		return "us"
	}
	return "eu"
}

// decodePage reads {"messages": [...], "next": "..."}; numbers keep their
// literal (UseNumber), so ids and times are copied exactly.
func decodePage(body []byte) (Page, bool, error) {
	var raw struct {
		Messages []json.RawMessage `json:"messages"`
		Next     *string           `json:"next"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Page{}, true, fmt.Errorf("customer.io app api: the answer is not the documented JSON: %v", err)
	}
	p := Page{Messages: make([]map[string]any, 0, len(raw.Messages))}
	for _, m := range raw.Messages {
		d := json.NewDecoder(bytes.NewReader(m))
		d.UseNumber()
		var obj map[string]any
		if err := d.Decode(&obj); err != nil || obj == nil {
			return Page{}, false, fmt.Errorf("customer.io app api: a message is not an object: %.200s", m)
		}
		p.Messages = append(p.Messages, obj)
	}
	if raw.Next != nil {
		p.Next = *raw.Next
	}
	return p, false, nil
}

// apiMessage is the error text of an answer (Customer.io sends
// {"meta": {"error": "..."}} or {"errors": [...]}), short and on one line.
func apiMessage(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "(empty answer)"
	}
	return s
}

// redact removes the key from a message (an error that quotes a URL or header).
func redact(msg, key string) string {
	if key == "" {
		return msg
	}
	return strings.ReplaceAll(msg, key, "[app api key]")
}
