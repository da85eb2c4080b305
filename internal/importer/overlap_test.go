package importer_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/history"
	"github.com/cioloader/cioloader/internal/importer"
)

// webhookBody is the reporting webhook Customer.io sends for o, with its own
// event_id.
func webhookBody(o history.Occurrence, eventID string) string {
	return fmt.Sprintf(`{"event_id":%q,"object_type":%q,"metric":%q,"timestamp":%d,"delivery_type":%q,
		"data":{"delivery_id":%q,"identifiers":{"id":"u1"},"customer_id":"u1","recipient":"u1@example.com"}}`,
		eventID, o.ObjectType, o.Metric, o.Timestamp, o.ObjectType, o.DeliveryID)
}

func (b *testBundle) post(t *testing.T, bodies ...string) {
	t.Helper()
	status, resp := b.app.Do(t, http.MethodPost, "/v1/webhooks/"+b.url.Token, []byte("["+strings.Join(bodies, ",")+"]"), nil)
	require.Equal(t, http.StatusOK, status, string(resp))
}

// TestImportOverlapsWebhook: occurrences that arrived by webhook before the
// import are skipped by it; those arriving by webhook after it replace the
// imported copy in every table; a second open at another time is another
// occurrence and stays. events, delivery_funnel and the README's counts see
// each occurrence once.
func TestImportOverlapsWebhook(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, ds := workspace(t, 400)
	want := expected(t, ds, func(d map[string]any) bool { return d["forgotten"] == true })
	ids := keys(want)
	before, after := ids[:40], ids[40:80]
	var pre []string
	for i, id := range before {
		pre = append(pre, webhookBody(want[id], fmt.Sprintf("01WEBHOOKBEFORE%06d", i)))
	}
	b.post(t, pre...)

	// The webhook's first event was received now, in real time: the history
	// (13 months before the stand-in's now) is asked for up to its now.
	imp, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us", Until: &now}, nil)
	require.NoError(t, err)
	require.EqualValues(t, 40, imp.EventsExisting, "the webhook's occurrences are skipped")
	require.EqualValues(t, len(want)-40, imp.EventsWritten)

	var post []string
	for i, id := range after {
		post = append(post, webhookBody(want[id], fmt.Sprintf("01WEBHOOKAFTER%06d", i)))
	}
	// A second open of one delivery, at another time: another occurrence.
	second := want[after[0]]
	second.Timestamp += 3600
	post = append(post, webhookBody(second, "01WEBHOOKSECOND"))
	b.post(t, post...)

	for _, table := range []string{"data", "rudder_events", "event_facts"} {
		got := b.ids(t, table)
		for _, id := range append(append([]string{}, before...), after...) {
			require.False(t, got[id], "%s still holds the imported copy %s", table, id)
		}
		require.Len(t, got, len(want)+1, table)
	}
	require.EqualValues(t, 0, b.count(t, `SELECT count(*) FROM (SELECT delivery_id, object_type, metric, occurred_at
		FROM stitch_customerio.events GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) AS dup`), "no occurrence counted twice")
	require.EqualValues(t, 81, b.count(t, `SELECT count(*) FROM stitch_customerio.events WHERE source = 'webhook'`))
	require.EqualValues(t, len(want)-80, b.count(t, `SELECT count(*) FROM stitch_customerio.events WHERE source = $1`, history.Source))
	require.EqualValues(t, 40, b.count(t, `SELECT count(*) FROM stitch_customerio.events WHERE event_id LIKE '01WEBHOOKAFTER%' AND metric IS NOT NULL`))

	// delivery_funnel still has every delivery's first times.
	require.EqualValues(t, 0, b.count(t, `SELECT count(*) FROM stitch_customerio.events e JOIN stitch_customerio.delivery_funnel f
		USING (delivery_id, object_type) WHERE e.metric = 'sent' AND f.sent_at IS DISTINCT FROM
		(SELECT min(occurred_at) FROM stitch_customerio.events x WHERE x.delivery_id = e.delivery_id AND x.object_type = e.object_type AND x.metric = 'sent')`))

	// The import run again adds nothing, now that the webhook holds some.
	again, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us", Until: &now}, nil)
	require.NoError(t, err)
	require.Zero(t, again.EventsWritten)
	require.Len(t, b.ids(t, "data"), len(want)+1)
}

// TestImportSkipsErasedAndForgotten: a person erased with cioloader forget (the
// tombstones long expired) is not imported back, nor is a delivery Customer.io
// marks forgotten.
func TestImportSkipsErasedAndForgotten(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, ds := workspace(t, 400)
	var email string
	for _, d := range ds {
		if ids, ok := d["customer_identifiers"].(map[string]any); ok && d["forgotten"] != true {
			if e, ok := ids["email"].(string); ok && e != "" {
				email = e
				break
			}
		}
	}
	require.NotEmpty(t, email)
	status, body := b.app.Admin(t, http.MethodPost, fmt.Sprintf("/v1/integrations/%d/erasures", b.in.ID), map[string]any{"email": email})
	require.Equal(t, http.StatusCreated, status, string(body))
	_, err := b.conn.Exec(context.Background(), `UPDATE cioloader.erasure_tombstones SET expires_at = now() - interval '1 day'`)
	require.NoError(t, err)

	imp, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us"}, nil)
	require.NoError(t, err)
	require.Positive(t, imp.Skipped["erased"])
	require.Positive(t, imp.Skipped["forgotten"])
	require.EqualValues(t, 0, b.count(t, `SELECT count(*) FROM stitch_customerio.events WHERE lower(email) = lower($1)`, email))
	for _, d := range ds {
		if d["forgotten"] == true {
			require.EqualValues(t, 0, b.count(t, `SELECT count(*) FROM stitch_customerio.events WHERE delivery_id = $1`, d["id"]))
		}
	}
}

// TestImportRacesWebhook: webhook copies of the imported occurrences arrive
// while the import writes them; whichever commits first, each occurrence ends
// up stored once, as the webhook's copy.
func TestImportRacesWebhook(t *testing.T) {
	t.Parallel()
	b := setupAt(t)
	srv, ds := workspace(t, 1500)
	want := expected(t, ds, func(d map[string]any) bool { return d["forgotten"] == true })
	ids := keys(want)
	done := make(chan error, 1)
	go func() {
		_, err := b.im.CustomerIO(context.Background(), b.in, importer.CustomerIO{API: client(t, srv, appKey), Region: "us", Until: &now}, nil)
		done <- err
	}()
	for start := 0; start < len(ids); start += 50 {
		var bodies []string
		for i, id := range ids[start:min(start+50, len(ids))] {
			bodies = append(bodies, webhookBody(want[id], fmt.Sprintf("01WEBHOOKRACE%07d", start+i)))
		}
		b.post(t, bodies...)
	}
	require.NoError(t, <-done)
	require.EqualValues(t, 0, b.count(t, `SELECT count(*) FROM (SELECT delivery_id, object_type, metric, occurred_at
		FROM stitch_customerio.events GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) AS dup`), "no occurrence stored twice")
	require.Len(t, b.ids(t, "data"), len(want))
	require.Len(t, b.ids(t, "rudder_events"), len(want))
	require.EqualValues(t, len(want), b.count(t, `SELECT count(*) FROM stitch_customerio.events WHERE source = 'webhook'`))
}
