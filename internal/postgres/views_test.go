package postgres_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// storeConfig is the default store configuration with a pool of maxConns.
func storeConfig(maxConns int32) postgres.Config {
	sc := app.StoreConfig(config.Defaults())
	sc.MaxConns = maxConns
	return sc
}

// null stands for SQL NULL in expected rows (a column that is absent from an
// expected row is not checked).
const null = "<NULL>"

// readmeQueryRE finds the example queries of README.md's "Querying your data":
// a <!-- query:NAME --> marker, then a ```sql block. The tests run exactly
// that text, so the README and the tests cannot drift apart.
var readmeQueryRE = regexp.MustCompile("(?s)<!-- query:([a-z_]+) -->\\s*```sql\\n(.*?)\\n```")

func readmeQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	out := map[string]string{}
	for _, m := range readmeQueryRE.FindAllStringSubmatch(string(b), -1) {
		require.NotContains(t, out, m[1], "README.md has two queries named %s", m[1])
		out[m[1]] = m[2]
	}
	return out
}

// loadTestdata runs the app on a fresh database, creates the integration of
// the README ("Stitch Customer.io" → stitch_customerio) and posts every
// testdata/events payload to it. The connection answers in UTC.
func loadTestdata(t *testing.T) *pgx.Conn {
	t.Helper()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Stitch Customer.io")
	require.Equal(t, "stitch_customerio", in.Schema)
	files, err := filepath.Glob("../../testdata/events/*.json")
	require.NoError(t, err)
	require.Len(t, files, 21, "testdata/events changed: update the expected rows below")
	for _, f := range files {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		status, resp := app.Post(t, u.URL, body)
		require.Equal(t, http.StatusOK, status, "%s: %s", f, resp)
		require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp), f)
	}
	conn := app.DB(t)
	_, err = conn.Exec(context.Background(), `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'`)
	require.NoError(t, err)
	return conn
}

// query runs sql over the simple protocol, so every value comes back as the
// text Postgres (and psql) prints, and returns the rows as column → text.
func query(t *testing.T, conn *pgx.Conn, sql string, args ...any) []map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	require.NoError(t, err, sql)
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		row := map[string]string{}
		for i, fd := range rows.FieldDescriptions() {
			v := rows.RawValues()[i]
			row[fd.Name] = null
			if v != nil {
				row[fd.Name] = string(v)
			}
		}
		out = append(out, row)
	}
	require.NoError(t, rows.Err(), sql)
	return out
}

// requireRow checks that got has the columns and values of want.
func requireRow(t *testing.T, want, got map[string]string, msgAndArgs ...any) {
	t.Helper()
	sub := map[string]string{}
	for k := range want {
		v, ok := got[k]
		require.True(t, ok, "column %s missing from %v", k, got)
		sub[k] = v
	}
	require.Equal(t, want, sub, msgAndArgs...)
}

// findRow returns the one row of rows whose key columns have key's values.
func findRow(t *testing.T, rows []map[string]string, key map[string]string) map[string]string {
	t.Helper()
	var found []map[string]string
	for _, r := range rows {
		match := true
		for k, v := range key {
			match = match && r[k] == v
		}
		if match {
			found = append(found, r)
		}
	}
	require.Len(t, found, 1, "rows matching %v in %v", key, rows)
	return found[0]
}

// Ensure every example query of the README runs as written against the
// testdata payloads and gives the numbers those payloads imply.
func TestReadmeQueries(t *testing.T) {
	t.Parallel()
	queries := readmeQueries(t)
	names := make([]string, 0, len(queries))
	for name, sql := range queries {
		names = append(names, name)
		require.Contains(t, sql, "stitch_customerio.", "query %s must run as is on the README's schema", name)
		require.NotContains(t, sql, "<schema>", "query %s must run as is", name)
	}
	require.ElementsMatch(t, []string{"open_rate", "bounces_by_day", "funnel", "unsubscribes", "last_event", "rudder_opens_by_day"}, names)
	conn := loadTestdata(t)

	t.Run("open_rate", func(t *testing.T) {
		// Campaign 23 has one delivery, sent, delivered and opened; the legacy
		// payload's campaign 7 has an open but no delivery on record; newsletter 10
		// bounced and transactional message 4 failed: every kind is counted.
		rows := query(t, conn, queries["open_rate"])
		require.Len(t, rows, 4, "%v", rows)
		requireRow(t, map[string]string{"kind": "campaign", "message_id": "23", "sent": "1", "delivered": "1", "opened": "1", "open_rate_pct": "100.0"}, rows[0])
		requireRow(t, map[string]string{"kind": "campaign", "message_id": "7", "sent": "0", "delivered": "0", "open_rate_pct": null}, rows[1])
		requireRow(t, map[string]string{"kind": "newsletter", "message_id": "10", "sent": "0", "opened": "0"}, rows[2])
		requireRow(t, map[string]string{"kind": "transactional", "message_id": "4", "sent": "0", "opened": "0"}, rows[3])
	})

	t.Run("bounces_by_day", func(t *testing.T) {
		rows := query(t, conn, queries["bounces_by_day"])
		require.Equal(t, []map[string]string{{
			"day": "2020-03-26", "object_type": "email", "bounces": "1", "addresses": "1",
			"example_reason": "550 5.5.0 Requested action not taken: mailbox unavailable",
		}}, rows)
	})

	t.Run("funnel", func(t *testing.T) {
		rows := query(t, conn, queries["funnel"])
		requireRow(t, map[string]string{"sent": "1", "delivered": "1", "opened": "1", "clicked": "1",
			"click_through_pct": "100.0", "click_to_open_pct": "100.0"},
			findRow(t, rows, map[string]string{"object_type": "email", "kind": "campaign", "message_id": "23"}))
		// In-app messages are opened and clicked, never "delivered".
		requireRow(t, map[string]string{"sent": "0", "delivered": "0", "opened": "1", "clicked": "1",
			"click_through_pct": null, "click_to_open_pct": "100.0"},
			findRow(t, rows, map[string]string{"object_type": "in_app", "kind": "campaign", "message_id": "31"}))
		// Broadcasts, newsletters and transactional messages are counted too.
		requireRow(t, map[string]string{"sent": "1", "clicked": "1"},
			findRow(t, rows, map[string]string{"object_type": "sms", "kind": "broadcast", "message_id": "9"}))
		findRow(t, rows, map[string]string{"object_type": "email", "kind": "newsletter", "message_id": "10"})
		findRow(t, rows, map[string]string{"object_type": "email", "kind": "transactional", "message_id": "4"})
	})

	t.Run("unsubscribes", func(t *testing.T) {
		rows := query(t, conn, queries["unsubscribes"])
		require.Equal(t, []map[string]string{
			{"occurred_at": "2020-03-26 19:20:00+00", "level": "email", "customer_id": "user-456", "email": "bounce@example.com",
				"delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "subject": "Monthly newsletter"},
			{"occurred_at": "2020-03-26 19:16:30+00", "level": "customer", "customer_id": "0200102", "email": "test@example.com",
				"delivery_id": null, "subject": null},
		}, rows)
	})

	t.Run("rudder_opens_by_day", func(t *testing.T) {
		// Written for RudderStack's warehouse tables (warehouse_test.go checks the layout).
		// The legacy open's campaign_id is the string "7": the column took bigint from
		// the first open (23), so, as in RudderStack's loader, the string does not fit
		// and is NULL (RudderStack would move it to rudder_discards).
		// The views are changed in the background just after the commits.
		require.Eventually(t, func() bool {
			var n int
			err := conn.QueryRow(context.Background(), `SELECT count(*) FROM stitch_customerio.email_opened WHERE context_traits_email IS NOT NULL`).Scan(&n)
			return err == nil && n == 2
		}, 10*time.Second, 20*time.Millisecond)
		// The testdata's opens are years old: the query as written finds none,
		// and with "now" moved to the day after the 2020 open, that open alone.
		q := queries["rudder_opens_by_day"]
		require.Empty(t, query(t, conn, q))
		require.Contains(t, q, "now()")
		// The window reads the block range index, not every event.
		_, err := conn.Exec(context.Background(), `SET enable_seqscan = off`)
		require.NoError(t, err)
		var plan []string
		for _, r := range query(t, conn, "EXPLAIN (COSTS OFF) "+q) {
			plan = append(plan, r["QUERY PLAN"])
		}
		_, err = conn.Exec(context.Background(), `RESET enable_seqscan`)
		require.NoError(t, err)
		require.Contains(t, strings.Join(plan, "\n"), "Bitmap Index Scan on rudder_events_time", "%v", plan)
		rows := query(t, conn, strings.Replace(q, "now()", "timestamptz '2020-03-27 00:00:00+00'", 1))
		require.Equal(t, []map[string]string{
			{"day": "2020-03-26", "campaign_id": "23", "opens": "1", "people": "1"},
		}, rows)
		rows = query(t, conn, strings.Replace(q, "now() - interval '7 days'", "timestamptz '2017-01-01 00:00:00+00'", 1))
		require.Equal(t, []map[string]string{
			{"day": "2017-07-14", "campaign_id": null, "opens": "1", "people": "1"},
			{"day": "2020-03-26", "campaign_id": "23", "opens": "1", "people": "1"},
		}, rows)
	})

	t.Run("last_event", func(t *testing.T) {
		rows := query(t, conn, queries["last_event"])
		require.Len(t, rows, 7, "user-123's seven events")
		var times []string
		for _, r := range rows {
			require.Equal(t, "7", r["events"])
			require.Equal(t, "in_app_clicked", r["last_event"])
			require.Equal(t, "2023-05-02 16:25:10+00", r["last_event_at"])
			times = append(times, r["occurred_at"])
		}
		require.Equal(t, "in_app_clicked", rows[0]["event_name"], "the latest event first")
		require.Equal(t, "31", rows[0]["campaign_id"], "read from _sdc_raw through the view")
		require.IsDecreasing(t, times)
		// The same summary from every event (the README's second query).
		whole := query(t, conn, `SELECT count(*) AS events,
		       (array_agg(event_name ORDER BY occurred_at DESC NULLS LAST, received_at DESC, event_id DESC))[1] AS last_event,
		       max(occurred_at) AS last_event_at
		FROM stitch_customerio.events WHERE customer_id = 'user-123'`)
		require.Equal(t, []map[string]string{{"events": "7", "last_event": "in_app_clicked", "last_event_at": "2023-05-02 16:25:10+00"}}, whole)
	})
}

// eventsColumns are the columns of the events view and of every channel view,
// in order (SPEC 5.1, plus raw for the fields the view does not name).
var eventsColumns = []string{"event_id", "object_type", "metric", "event_name", "occurred_at", "customer_id", "email",
	"delivery_id", "campaign_id", "broadcast_id", "action_id", "journey_id", "received_at", "raw",
	"newsletter_id", "transactional_message_id", "parent_action_id", "trigger_event_id", "content_id", "failure_message", "source"}

func viewColumns(t *testing.T, conn *pgx.Conn, schema, view string) []string {
	t.Helper()
	var cols []string
	for _, r := range query(t, conn, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, view) {
		cols = append(cols, r["column_name"])
	}
	return cols
}

// Ensure each analyst view exists with its documented columns, and that each
// channel view holds exactly its channel's events, legacy payloads included.
func TestViews(t *testing.T) {
	t.Parallel()
	conn := loadTestdata(t)

	t.Run("events", func(t *testing.T) {
		require.Equal(t, eventsColumns, viewColumns(t, conn, "stitch_customerio", "events"))
		rows := query(t, conn, `SELECT count(*) AS n, count(occurred_at) AS timed, count(event_name) AS named,
			count(*) FILTER (WHERE received_at IS NULL) AS unreceived FROM stitch_customerio.events`)
		require.Equal(t, []map[string]string{{"n": "21", "timed": "21", "named": "21", "unreceived": "0"}}, rows)
		rows = query(t, conn, `SELECT count(*) AS n FROM stitch_customerio.events e
			JOIN stitch_customerio.data d USING (event_id) WHERE e.received_at = d._sdc_received_at AND e.raw = d._sdc_raw::jsonb`)
		require.Equal(t, "21", rows[0]["n"])
	})

	for _, ch := range []struct {
		view, objectType string
		events           int
	}{
		{"email_events", "email", 9}, // 8 current payloads and the legacy one
		{"push_events", "push", 3},
		{"sms_events", "sms", 2},
		{"in_app_events", "in_app", 2},
		{"slack_events", "slack", 1},
		{"webhook_events", "webhook", 1},
		{"customer_events", "customer", 3},
	} {
		t.Run(ch.view, func(t *testing.T) {
			require.Equal(t, eventsColumns, viewColumns(t, conn, "stitch_customerio", ch.view))
			rows := query(t, conn, `SELECT count(*) AS n, count(*) FILTER (WHERE object_type IS DISTINCT FROM $1) AS other
				FROM stitch_customerio.`+ch.view, ch.objectType)
			require.Equal(t, []map[string]string{{"n": strconv.Itoa(ch.events), "other": "0"}}, rows)
			rows = query(t, conn, `SELECT count(*) AS n FROM stitch_customerio.events WHERE object_type = $1`, ch.objectType)
			require.Equal(t, strconv.Itoa(ch.events), rows[0]["n"], "the channel view holds every %s event", ch.objectType)
		})
	}

	t.Run("current_payload", func(t *testing.T) {
		rows := query(t, conn, `SELECT * FROM stitch_customerio.email_events WHERE event_id = '01E2EMRMM6TZ12TF9WGZN0WJQT'`)
		require.Len(t, rows, 1)
		requireRow(t, map[string]string{
			"object_type": "email", "metric": "sent", "event_name": "email_sent", "occurred_at": "2022-02-07 09:58:57+00",
			"customer_id": "user-123", "email": "test@example.com", "delivery_id": "RAECAAFwnUSneIa0ZXkmq8EdkAM==",
			"campaign_id": "23", "broadcast_id": null, "action_id": "42", "journey_id": "01GW2Z8H9JQ6ZPBV4PAF0RRT2S",
		}, rows[0])
		// Push and SMS payloads carry no email; the customer id falls back to identifiers.id.
		rows = query(t, conn, `SELECT * FROM stitch_customerio.push_events WHERE event_id = '01E4C4HDQ7P1X9KTKF0ZX7PWHE'`)
		require.Len(t, rows, 1)
		requireRow(t, map[string]string{"metric": "sent", "customer_id": "0200102", "email": null,
			"broadcast_id": "9", "campaign_id": null, "action_id": "37", "occurred_at": "2020-03-26 19:19:10+00"}, rows[0])
		// raw holds every field the view does not name.
		rows = query(t, conn, `SELECT event_name, email, raw #>> '{data,href}' AS href
			FROM stitch_customerio.sms_events WHERE event_id = '01E4XXPN42JDF4B1ATQKTZ8WHV'`)
		require.Equal(t, []map[string]string{{"event_name": "sms_clicked", "email": null, "href": "https://app.com/verify"}}, rows)
	})

	t.Run("legacy_payload", func(t *testing.T) {
		// {"event_id":"abc123","event_type":"email_opened","timestamp":1500000000,...}
		want := map[string]string{
			"event_id": "abc123", "object_type": "email", "metric": "opened", "event_name": "email_opened",
			"occurred_at": "2017-07-14 02:40:00+00", "customer_id": "42", "email": "legacy@example.com", "campaign_id": "7",
		}
		for _, view := range []string{"events", "email_events"} {
			rows := query(t, conn, `SELECT * FROM stitch_customerio.`+view+` WHERE event_id = 'abc123'`)
			require.Len(t, rows, 1, view)
			requireRow(t, want, rows[0], view)
		}
	})

	t.Run("delivery_funnel", func(t *testing.T) {
		require.Equal(t, []string{"delivery_id", "object_type", "campaign_id", "broadcast_id", "action_id", "customer_id",
			"sent_at", "delivered_at", "opened_at", "clicked_at", "converted_at", "bounced_at",
			"newsletter_id", "transactional_message_id", "drafted_at", "attempted_at", "dropped_at", "failed_at",
			"spammed_at", "unsubscribed_at", "undeliverable_at", "replied_at"}, viewColumns(t, conn, "stitch_customerio", "delivery_funnel"))
		rows := query(t, conn, `SELECT * FROM stitch_customerio.delivery_funnel`)
		require.Equal(t, []map[string]string{{"n": "0"}},
			query(t, conn, `SELECT count(*) - count(DISTINCT (delivery_id, object_type)) AS n FROM stitch_customerio.delivery_funnel`),
			"one row per delivery")
		requireRow(t, map[string]string{
			"object_type": "email", "campaign_id": "23", "action_id": "42", "customer_id": "user-123",
			"sent_at": "2022-02-07 09:58:57+00", "delivered_at": "2022-02-07 09:59:00+00", "opened_at": "2020-03-26 19:16:39+00",
			"clicked_at": "2020-03-26 20:25:48+00", "converted_at": "2020-03-26 20:26:40+00", "bounced_at": null,
		}, findRow(t, rows, map[string]string{"delivery_id": "RAECAAFwnUSneIa0ZXkmq8EdkAM=="}))
		requireRow(t, map[string]string{"object_type": "sms", "broadcast_id": "9", "sent_at": "2020-04-02 17:05:00+00",
			"clicked_at": "2020-04-02 17:06:01+00", "delivered_at": null},
			findRow(t, rows, map[string]string{"delivery_id": "RPILAgIBcRh6qzHz-8gKvscP2UZa"}))
		requireRow(t, map[string]string{"object_type": "in_app", "campaign_id": "31", "opened_at": "2023-05-02 16:25:00+00",
			"clicked_at": "2023-05-02 16:25:10+00", "sent_at": null},
			findRow(t, rows, map[string]string{"delivery_id": "dgOq4gUBAAGIrBCrD-P_6Q=="}))
		for _, ch := range []string{"email", "push", "sms", "in_app", "slack", "webhook"} {
			require.NotEmpty(t, query(t, conn, `SELECT 1 FROM stitch_customerio.delivery_funnel WHERE object_type = $1`, ch), ch)
		}
	})
}

// Ensure the events view reads occurred_at only from a plausible number of
// Unix seconds (as the RudderStack copy does) and names events from either
// payload shape, without failing on odd input.
func TestEventsViewOddPayloads(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Odd Payloads")
	status, resp := app.Post(t, u.URL, `[
		{"event_id":"fraction","object_type":"email","metric":"sent","timestamp":1585250199.25},
		{"event_id":"string","object_type":"email","metric":"sent","timestamp":"1585250199"},
		{"event_id":"date","object_type":"email","metric":"sent","timestamp":"2020-03-26T19:16:39Z"},
		{"event_id":"millis","object_type":"email","metric":"sent","timestamp":1585250199000},
		{"event_id":"huge","object_type":"email","metric":"sent","timestamp":1e300},
		{"event_id":"none","object_type":"push","metric":"sent"},
		{"event_id":"no_metric","object_type":"sms","timestamp":0},
		{"event_id":"legacy_customer","event_type":"customer_subscribed","timestamp":1500000000,"data":{"customer_id":"7","email_address":"a@example.com"}},
		{"event_id":"legacy_plain","event_type":"spammed","timestamp":1500000000},
		{"event_id":"numbers","object_type":"email","metric":"opened","timestamp":1585250199,
		 "data":{"customer_id":12345678901234567890,"campaign_id":5,"delivery_id":"d1","recipient":"r@example.com"}}
	]`)
	require.Equal(t, http.StatusOK, status, string(resp))
	conn := app.DB(t)
	_, err := conn.Exec(context.Background(), `SET TimeZone = 'UTC'`)
	require.NoError(t, err)
	rows := query(t, conn, `SELECT event_id, object_type, metric, event_name, occurred_at, customer_id, email, campaign_id
		FROM odd_payloads.events ORDER BY event_id`)
	byID := map[string]map[string]string{}
	for _, r := range rows {
		byID[r["event_id"]] = r
	}
	require.Len(t, byID, 10)
	for id, want := range map[string]map[string]string{
		"fraction":        {"occurred_at": "2020-03-26 19:16:39.25+00", "event_name": "email_sent"},
		"string":          {"occurred_at": null},
		"date":            {"occurred_at": null},
		"millis":          {"occurred_at": null},
		"huge":            {"occurred_at": null},
		"none":            {"occurred_at": null, "object_type": "push", "event_name": "push_sent"},
		"no_metric":       {"occurred_at": "1970-01-01 00:00:00+00", "object_type": "sms", "metric": null},
		"legacy_customer": {"object_type": "customer", "metric": "subscribed", "event_name": "customer_subscribed", "customer_id": "7", "email": "a@example.com"},
		"legacy_plain":    {"metric": null, "event_name": "spammed"},
		"numbers":         {"customer_id": "12345678901234567890", "campaign_id": "5", "email": "r@example.com"},
	} {
		requireRow(t, want, byID[id], id)
	}
	require.Equal(t, []map[string]string{{"n": "1"}}, query(t, conn, `SELECT count(*) AS n FROM odd_payloads.customer_events`))
}
