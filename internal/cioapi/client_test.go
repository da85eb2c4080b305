package cioapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/cioapi"
	"github.com/cioloader/cioloader/internal/cioapi/cioapitest"
)

const key = "app-key-for-client-tests"

func newClient(t *testing.T, srv *cioapitest.Server, k string) *cioapi.Client {
	t.Helper()
	c, err := cioapi.New(cioapi.Config{BaseURL: srv.URL, Key: k, Region: "eu", Retries: 2, Backoff: 5 * time.Millisecond})
	require.NoError(t, err)
	return c
}

// TestMessagesPages reads every delivery of a window through the cursor, with
// the documented numbers kept exact (json.Number).
func TestMessagesPages(t *testing.T) {
	t.Parallel()
	now := time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)
	ds := append(cioapitest.Generate(1500, 3, now.AddDate(0, -5, 0), now), cioapitest.DocExample())
	srv := cioapitest.New(cioapitest.Options{Key: key, Deliveries: ds, Now: func() time.Time { return now }})
	t.Cleanup(srv.Close)
	c := newClient(t, srv, key)
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		p, err := c.Messages(context.Background(), cioapi.Query{Start: now.AddDate(0, -6, 0), End: now, Cursor: cursor, Limit: 1000})
		require.NoError(t, err)
		for _, m := range p.Messages {
			id := m["id"].(string)
			require.False(t, seen[id], "delivery %s listed twice", id)
			seen[id] = true
			if id == "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=" {
				require.Equal(t, json.Number("1619137768"), m["metrics"].(map[string]any)["sent"])
			}
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	require.Len(t, seen, len(ds), "drafts included")
	require.LessOrEqual(t, srv.MaxInOneSecond(), 10)
}

// TestMessagesRefusals: a refused key names the cause and never the key; a
// window over six months and a limit over 1000 are refused before any request;
// 5xx past the retries is an error saying so.
func TestMessagesRefusals(t *testing.T) {
	t.Parallel()
	srv := cioapitest.New(cioapitest.Options{Key: key})
	t.Cleanup(srv.Close)
	now := time.Now()
	_, err := newClient(t, srv, "wrong-key-xyz").Messages(context.Background(), cioapi.Query{Start: now.AddDate(0, -1, 0), End: now, Limit: 10})
	require.ErrorIs(t, err, cioapi.ErrAuth)
	require.Contains(t, err.Error(), "--region eu")
	require.Contains(t, err.Error(), "us region")
	require.NotContains(t, err.Error(), "wrong-key-xyz")

	c := newClient(t, srv, key)
	_, err = c.Messages(context.Background(), cioapi.Query{Start: now.AddDate(0, -7, 0), End: now, Limit: 10})
	require.ErrorContains(t, err, "wider than 6 months")
	_, err = c.Messages(context.Background(), cioapi.Query{Start: now.AddDate(0, -1, 0), End: now, Limit: 1001})
	require.ErrorContains(t, err, "outside 1..1000")
	require.Equal(t, 1, srv.Requests(), "refused before any request")

	srv.FailNext(http.StatusBadGateway, 10)
	_, err = c.Messages(context.Background(), cioapi.Query{Start: now.AddDate(0, -1, 0), End: now, Limit: 10})
	require.ErrorContains(t, err, "gave up after 3 attempts")
	require.ErrorContains(t, err, "502")
}
