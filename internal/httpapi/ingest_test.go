package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func readEvents(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../../testdata/events/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = b
	}
	return out
}

func columns(t *testing.T, conn *pgx.Conn, schema, table string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2`, schema, table)
	require.NoError(t, err)
	out := map[string]string{}
	var n, typ string
	_, err = pgx.ForEachRow(rows, []any{&n, &typ}, func() error { out[n] = typ; return nil })
	require.NoError(t, err)
	return out
}

// Ensure every testdata payload lands as one row per event_id, de-nested, with
// subtables for arrays and a RudderStack copy each.
func TestIngestTestdataPayloads(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Stitch Customer.io")
	require.Equal(t, "stitch_customerio", in.Schema)
	events := readEvents(t)
	for name, body := range events {
		status, resp := app.Post(t, u.URL, body)
		require.Equal(t, http.StatusOK, status, "%s: %s", name, resp)
		require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp), name)
	}
	conn := app.DB(t)
	require.EqualValues(t, len(events), apptest.Count(t, conn, "stitch_customerio.data"))
	require.EqualValues(t, len(events), apptest.Count(t, conn, "stitch_customerio.rudder_events"))
	require.EqualValues(t, 0, apptest.Count(t, conn, "stitch_customerio._sdc_rejected"))

	cols := columns(t, conn, "stitch_customerio", "data")
	require.Equal(t, "text", cols["data__customer_id"])
	require.Equal(t, "text", cols["data__identifiers__email"])
	require.Equal(t, "bigint", cols["timestamp"])
	require.Equal(t, "bigint", cols["data__action_id"])
	require.Equal(t, "json", cols["_sdc_raw"], "SPEC 5: the event's text as received")
	require.Equal(t, "timestamp with time zone", cols["_sdc_received_at"])
	require.Equal(t, "bigint", cols["_sdc_sequence"])

	var email string
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT data__identifiers__email FROM stitch_customerio.data WHERE event_id = '01E4C4CT6YDC7Y5M7FE1GWWPQJ'`).Scan(&email))
	require.Equal(t, "test@example.com", email)

	rows, err := conn.Query(context.Background(), `SELECT _sdc_level_0_id, device_platform FROM stitch_customerio.data__data__recipients
		WHERE _sdc_source_key_event_id = '01E4C4HDQ7P1X9KTKF0ZX7PWHE' ORDER BY 1`)
	require.NoError(t, err)
	var levels []int64
	var platforms []string
	var lv int64
	var pf string
	_, err = pgx.ForEachRow(rows, []any{&lv, &pf}, func() error { levels = append(levels, lv); platforms = append(platforms, pf); return nil })
	require.NoError(t, err)
	require.Equal(t, []int64{0, 1}, levels)
	require.Equal(t, []string{"android", "ios"}, platforms)

	var tags []string
	rows, err = conn.Query(context.Background(), `SELECT value FROM stitch_customerio."data__data__headers__XMailgunTag" ORDER BY _sdc_level_0_id`)
	require.NoError(t, err)
	_, err = pgx.ForEachRow(rows, []any{&pf}, func() error { tags = append(tags, pf); return nil })
	require.NoError(t, err)
	require.Equal(t, []string{"welcome", "onboarding"}, tags)

	var event, userID string
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT event, user_id FROM stitch_customerio.rudder_events WHERE event_id = '01E4C8BES5XT87ZWRJFTB35YJ3'`).Scan(&event, &userID))
	require.Equal(t, "Email Link Clicked", event)
	require.Equal(t, "user-123", userID)
}

// Ensure each row of SPEC 3.1's status table, and that refused bodies write nothing.
func TestIngestStatusTable(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t, func(c *config.Config) { c.MaxBodyBytes = 4096; c.MaxEvents = 3; c.InflightBytes = 1 << 20 })
	_, u := app.Setup(t, "Status Table")
	conn := app.DB(t)
	good := `{"event_id":"ok1","object_type":"email","metric":"sent","timestamp":1700000000}`

	for _, tc := range []struct {
		name   string
		method string
		url    string
		body   string
		status int
		want   string
	}{
		{"broken_json", "POST", u.URL, `{"event_id": "x"`, 400, "not valid JSON"},
		{"not_object", "POST", u.URL, `"hello"`, 400, "JSON object or an array"},
		{"array_scalar", "POST", u.URL, `[` + good + `, 1]`, 400, "array element 1"},
		{"too_many", "POST", u.URL, `[{},{},{},{}]`, 400, "at most 3"},
		{"too_large", "POST", u.URL, `{"event_id":"big","pad":"` + strings.Repeat("x", 5000) + `"}`, 413, "larger than 4096"},
		{"get", "GET", u.URL, "", 405, "only POST"},
		{"put", "PUT", u.URL, good, 405, "only POST"},
		{"unknown_token", "POST", app.URL + "/v1/webhooks/whk_" + strings.Repeat("A", 43), good, 404, "unknown or revoked"},
		{"garbage_token", "POST", app.URL + "/v1/webhooks/nope", good, 404, "unknown or revoked"},
	} {
		status, body := app.Do(t, tc.method, tc.url, tc.body, nil)
		require.Equal(t, tc.status, status, "%s: %s", tc.name, body)
		require.Contains(t, string(body), tc.want, tc.name)
		require.True(t, json.Valid(body), tc.name)
	}
	require.EqualValues(t, 0, apptest.Count(t, conn, "status_table.data"))
	require.EqualValues(t, 0, apptest.Count(t, conn, "status_table._sdc_rejected"))

	// An object without a usable event_id is kept in _sdc_rejected, next to an accepted one.
	status, body := app.Post(t, u.URL, `[`+good+`, {"object_type":"email"}, {"event_id":null}]`)
	require.Equal(t, http.StatusOK, status, string(body))
	require.JSONEq(t, `{"accepted":1,"rejected":2}`, string(body))
	require.EqualValues(t, 1, apptest.Count(t, conn, "status_table.data"))
	require.EqualValues(t, 1, apptest.Count(t, conn, "status_table.rudder_events"))
	var reason, record string
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT reason, record FROM status_table._sdc_rejected WHERE reason LIKE '%missing%'`).Scan(&reason, &record))
	require.Equal(t, `{"object_type":"email"}`, record)

	// Revoked answers exactly like unknown.
	_, unknown := app.Post(t, app.URL+"/v1/webhooks/whk_"+strings.Repeat("A", 43), good)
	status, _ = app.Admin(t, "DELETE", fmt.Sprintf("/v1/integrations/%d/webhook-urls/%d", u.IntegrationID, u.ID), nil)
	require.Equal(t, http.StatusNoContent, status)
	status, revoked := app.Post(t, u.URL, good)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, string(unknown), string(revoked))
	status, _ = app.Admin(t, "DELETE", fmt.Sprintf("/v1/integrations/%d/webhook-urls/%d", u.IntegrationID, u.ID), nil)
	require.Equal(t, http.StatusNoContent, status, "revoking twice is fine")
}

// Ensure the RudderStack-compatible path takes the token as writeKey or Basic user.
func TestIngestRudderCompatiblePath(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Rudder Path")
	tok := u.Token
	status, body := app.Post(t, app.URL+"/v1/webhook?writeKey="+tok, `{"event_id":"w1"}`)
	require.Equal(t, http.StatusOK, status, string(body))
	status, body = app.Do(t, "POST", "/v1/webhook", `{"event_id":"w2"}`, http.Header{"Authorization": {"Basic " + basic(tok)}})
	require.Equal(t, http.StatusOK, status, string(body))
	status, _ = app.Post(t, app.URL+"/v1/webhook", `{"event_id":"w3"}`)
	require.Equal(t, http.StatusNotFound, status)
	require.EqualValues(t, 2, apptest.Count(t, app.DB(t), "rudder_path.data"))
}

// Ensure duplicates converge to the newest copy, with stale child rows removed.
func TestIngestUpsertNewestWins(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Upserts")
	conn := app.DB(t)
	first := `{"event_id":"e1","object_type":"push","metric":"sent","data":{"old":"x","recipients":[{"device_id":"a"},{"device_id":"b"}]}}`
	second := `{"event_id":"e1","object_type":"push","metric":"delivered","data":{"recipients":[{"device_id":"c"}]}}`
	for _, b := range []string{first, second} {
		status, body := app.Post(t, u.URL, b)
		require.Equal(t, http.StatusOK, status, string(body))
	}
	var metric string
	var old *string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT metric, data__old FROM upserts.data WHERE event_id = 'e1'`).Scan(&metric, &old))
	require.Equal(t, "delivered", metric)
	require.Nil(t, old, "the newest copy replaces the whole row")
	require.EqualValues(t, 1, apptest.Count(t, conn, "upserts.data__data__recipients"))
	var dev string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT device_id FROM upserts.data__data__recipients`).Scan(&dev))
	require.Equal(t, "c", dev)
	var event string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT event FROM upserts.rudder_events WHERE event_id = 'e1'`).Scan(&event))
	require.Equal(t, "Push Delivered", event)

	// In one array, the last copy wins.
	status, body := app.Post(t, u.URL, `[{"event_id":"e2","metric":"a"},{"event_id":"e2","metric":"b"}]`)
	require.Equal(t, http.StatusOK, status, string(body))
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT metric FROM upserts.data WHERE event_id = 'e2'`).Scan(&metric))
	require.Equal(t, "b", metric)
}

// Ensure a key seen with a new JSON type gets its own suffixed column.
func TestIngestTypeSplit(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Types")
	for _, b := range []string{
		`{"event_id":"t1","v":1}`, `{"event_id":"t2","v":"one"}`, `{"event_id":"t3","v":1.5}`,
		`{"event_id":"t4","v":true}`, `{"event_id":"t5","v":123456789012345678901234567890}`, `{"event_id":"t6","v":null}`,
	} {
		status, body := app.Post(t, u.URL, b)
		require.Equal(t, http.StatusOK, status, string(body))
	}
	cols := columns(t, app.DB(t), "types", "data")
	require.Equal(t, "bigint", cols["v"])
	require.Equal(t, "text", cols["v__st"])
	require.Equal(t, "double precision", cols["v__do"])
	require.Equal(t, "boolean", cols["v__bo"])
	require.Equal(t, "numeric", cols["v__de"])
	var big string
	require.NoError(t, app.DB(t).QueryRow(context.Background(), `SELECT v__de::text FROM types.data WHERE event_id = 't5'`).Scan(&big))
	require.Equal(t, "123456789012345678901234567890", big)
}

// Ensure concurrent generate calls can never make a third active URL.
func TestURLLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in := app.CreateIntegration(t, "Two URLs")
	var wg sync.WaitGroup
	statuses := make([]int, 12)
	for i := range statuses {
		wg.Go(func() {
			statuses[i], _ = app.Admin(t, "POST", fmt.Sprintf("/v1/integrations/%d/webhook-urls", in.ID), nil)
		})
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	require.Equal(t, map[int]int{201: 2, 409: 10}, counts)
}

func basic(user string) string {
	return base64Encode(user + ":")
}
