package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/domain"
)

// annaEvents name Anna (anna@example.com, user-A, cio-A) in every way the
// matching rule knows, with mixed-case emails; the last object has no
// event_id (it goes to _sdc_rejected) and event a7 has an unnamable key (an
// unmapped-value row in _sdc_rejected).
const annaEvents = `[
 {"event_id":"a1","object_type":"email","metric":"opened","timestamp":1700000001,
  "data":{"customer_id":"user-A","identifiers":{"id":"user-A","email":"ANNA@example.com"},"recipient":"Anna@Example.com","subject":"Hi"}},
 {"event_id":"a2","object_type":"push","metric":"sent","timestamp":1700000002,
  "data":{"identifiers":{"id":"user-A"},"recipients":[{"device_id":"d1"},{"device_id":"d2"}]}},
 {"event_id":"a3","object_type":"customer","metric":"subscribed","timestamp":1700000003,"data":{"email_address":"anna@example.com"}},
 {"event_id":"a4","event_type":"email_opened","timestamp":1700000004,
  "data":{"email_address":"anna@EXAMPLE.com","customer_id":"user-A","variables":{"customer":{"id":"user-A"}}}},
 {"event_id":"a5","object_type":"email","metric":"sent","timestamp":1700000005,"data":{"recipient":"anna@example.com"}},
 {"event_id":"a6","object_type":"email","metric":"sent","timestamp":1700000006,"data":{"identifiers":{"cio_id":"cio-A"}}},
 {"event_id":"a7","object_type":"email","metric":"sent","timestamp":1700000007,"data":{"identifiers":{"id":"user-A"},"":"unnamable"}},
 {"object_type":"email","metric":"sent","data":{"identifiers":{"email":"anna@example.com"}}}
]`

// otherEvents belong to Bob and to Carl, whose email and id are prefixes of
// Anna's: exact matching keeps them.
const otherEvents = `[
 {"event_id":"b1","object_type":"email","metric":"opened","timestamp":1700000011,
  "data":{"customer_id":"user-B","identifiers":{"id":"user-B","email":"bob@example.com"},"recipient":"bob@example.com"}},
 {"event_id":"b2","object_type":"push","metric":"sent","timestamp":1700000012,
  "data":{"identifiers":{"id":"user-B"},"recipients":[{"device_id":"d3"}]}},
 {"event_id":"b3","object_type":"email","metric":"sent","timestamp":1700000013,"data":{"identifiers":{"id":"user-B"},"":"unnamable"}},
 {"event_id":"c1","object_type":"sms","metric":"sent","timestamp":1700000014,
  "data":{"identifiers":{"id":"user-","email":"anna@example.co"},"recipient":"+15550100"}},
 {"object_type":"email","metric":"sent","data":{"identifiers":{"email":"bob@example.com"}}}
]`

// tablesOf lists every table of schema.
func tablesOf(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY relname`, schema)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// rowsNaming counts, per table of schema, the rows whose text (every column)
// contains one of Anna's identifiers.
func rowsNaming(t *testing.T, conn *pgx.Conn, schema string, values ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range tablesOf(t, conn, schema) {
		var n int64
		q := fmt.Sprintf(`SELECT count(*) FROM %s AS t WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) v WHERE strpos(lower(t::text), lower(v)) > 0)`,
			pgx.Identifier{schema, table}.Sanitize())
		require.NoError(t, conn.QueryRow(context.Background(), q, values).Scan(&n))
		if n > 0 {
			out[table] = n
		}
	}
	return out
}

func keyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func TestErasureOverHTTP(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Erase Shop")
	conn := app.DB(t)
	path := "/v1/integrations/" + strconv.FormatInt(in.ID, 10) + "/erasures"
	anna := []string{"anna@example.com", "user-A", "cio-A"}

	status, body := app.Post(t, u.URL, annaEvents)
	require.Equal(t, http.StatusOK, status, string(body))
	require.JSONEq(t, `{"accepted":7,"rejected":1}`, string(body))
	status, body = app.Post(t, u.URL, otherEvents)
	require.Equal(t, http.StatusOK, status, string(body))
	require.Equal(t, map[string]int64{"data": 7, "rudder_rows": 7, "event_facts": 4, "_sdc_rejected": 2, "customer_facts": 1}, // event_facts keeps a bounce's email only
		rowsNaming(t, conn, in.Schema, anna...), "Anna is in every table before (her summary row too)")
	annaDevices := `SELECT count(*) FROM erase_shop.data__data__recipients WHERE _sdc_source_key_event_id LIKE 'a%'`
	var n int64
	require.NoError(t, conn.QueryRow(context.Background(), annaDevices).Scan(&n))
	require.Equal(t, int64(2), n, "the subtable holds Anna's push devices (they name her by event_id only)")

	status, body = app.Admin(t, http.MethodPost, path, map[string]any{
		"email": "  Anna@EXAMPLE.com ", "customer_id": "user-A", "cio_id": []string{"cio-A"},
	})
	require.Equal(t, http.StatusCreated, status, string(body))
	var er domain.Erasure
	require.NoError(t, json.Unmarshal(body, &er))
	require.Equal(t, map[string]int64{"data": 7, "rudder_events": 7, "event_facts": 7, "data__data__recipients": 2, "delivery_facts": 0, "_sdc_rejected": 2}, er.RowsDeleted)
	require.Equal(t, "api", er.RequestedBy)
	require.NotNil(t, er.CompletedAt)
	require.ElementsMatch(t, []string{keyHash("email:anna@example.com"), keyHash("id:user-A"), keyHash("cio_id:cio-A")}, er.IdentifierHashes)
	for _, v := range anna {
		require.NotContains(t, string(body), v, "the answer holds no plain identifier")
	}

	require.Empty(t, rowsNaming(t, conn, in.Schema, anna...), "no row names Anna after the erasure")
	require.NoError(t, conn.QueryRow(context.Background(), annaDevices).Scan(&n))
	require.Zero(t, n)
	require.Equal(t, int64(4), apptest.Count(t, conn, `erase_shop.data`), "Bob's and Carl's events stay")
	require.Equal(t, int64(4), apptest.Count(t, conn, `erase_shop.rudder_events`))
	require.Equal(t, int64(1), apptest.Count(t, conn, `erase_shop.data__data__recipients`))
	require.Equal(t, map[string]int64{"data": 3, "rudder_rows": 3, "event_facts": 3, "_sdc_rejected": 2, "customer_facts": 1},
		rowsNaming(t, conn, in.Schema, "bob@example.com", "user-B"))
	var controlNaming int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM cioloader.erasures e, cioloader.erasure_tombstones t
		WHERE e::text ILIKE '%anna%' OR t::text ILIKE '%anna%' OR e::text LIKE '%user-A%'`).Scan(&controlNaming))
	require.Zero(t, controlNaming, "the control tables keep hashes only")

	// Customer.io re-delivers the old events: 200, and nothing of Anna is stored.
	status, body = app.Post(t, u.URL, annaEvents)
	require.Equal(t, http.StatusOK, status, string(body))
	require.Empty(t, rowsNaming(t, conn, in.Schema, anna...), "re-delivered events are dropped")
	require.NoError(t, conn.QueryRow(context.Background(), annaDevices).Scan(&n))
	require.Zero(t, n)
	require.Equal(t, int64(4), apptest.Count(t, conn, `erase_shop.data`))
	var dropped int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM erase_shop._sdc_rejected
		WHERE reason = $1 AND record IS NULL`, fmt.Sprintf("Event of a person erased on request (erasure %d); not stored", er.ID)).Scan(&dropped))
	require.Equal(t, int64(8), dropped, "7 events and the object without event_id, counted without their record")
	require.Equal(t, 8.0, hostileMetric(t, app, `cioloader_events_dropped_tombstone_total{integration="erase_shop"}`))
	require.Equal(t, 7.0, hostileMetric(t, app, `cioloader_events_erased_total{integration="erase_shop"}`))

	// Bob's new events still arrive.
	status, _ = app.Post(t, u.URL, `{"event_id":"b9","object_type":"email","metric":"sent","data":{"identifiers":{"id":"user-B"}}}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, int64(5), apptest.Count(t, conn, `erase_shop.data`))

	status, body = app.Admin(t, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var list []domain.Erasure
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list, 1)
	require.Equal(t, er.ID, list[0].ID)
	require.Equal(t, er.RowsDeleted, list[0].RowsDeleted)
}

func TestErasureRequestErrors(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in := app.CreateIntegration(t, "Errors Shop")
	path := "/v1/integrations/" + strconv.FormatInt(in.ID, 10) + "/erasures"
	for name, tc := range map[string]struct {
		body   any
		status int
		want   string
	}{
		"no identifier":       {`{}`, http.StatusBadRequest, `give at least one`},
		"empty array":         {`{"email":[]}`, http.StatusBadRequest, `give at least one`},
		"empty email":         {`{"email":"  "}`, http.StatusBadRequest, `email is empty`},
		"NUL":                 {`{"customer_id":"a\u0000b"}`, http.StatusBadRequest, `NUL`},
		"not an email":        {`{"email":"anna"}`, http.StatusBadRequest, `not an email address`},
		"unknown field":       {`{"phone":"+1555"}`, http.StatusBadRequest, `unknown field`},
		"not JSON":            {`email=anna`, http.StatusBadRequest, `JSON object`},
		"number":              {`{"customer_id":42}`, http.StatusBadRequest, `JSON object`},
		"no such integration": {nil, http.StatusNotFound, `does not exist`},
	} {
		t.Run(name, func(t *testing.T) {
			p, body := path, tc.body
			if body == nil {
				p, body = "/v1/integrations/999/erasures", `{"email":"anna@example.com"}`
			}
			status, resp := app.Admin(t, http.MethodPost, p, body)
			require.Equal(t, tc.status, status, string(resp))
			require.Contains(t, string(resp), tc.want)
		})
	}
	status, _ := app.Do(t, http.MethodPost, path, `{"email":"anna@example.com"}`, nil)
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = app.Do(t, http.MethodGet, path, nil, nil)
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = app.Admin(t, http.MethodGet, "/v1/integrations/999/erasures", nil)
	require.Equal(t, http.StatusNotFound, status)
}

// Ingest of other people goes on while a person is erased, and of the
// erased person nothing survives: events committed before the erasure are
// deleted, the ones racing it or coming after are dropped.
func TestErasureDuringConcurrentIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, "Race Shop")
	conn := app.DB(t)
	event := func(id, person string) string {
		return fmt.Sprintf(`{"event_id":%q,"object_type":"push","metric":"sent","data":{"identifiers":{"id":%q,"email":"%s@example.com"},"recipients":[{"device_id":"x"}]}}`, id, person, person)
	}
	for i := range 50 {
		status, _ := app.Post(t, u.URL, event("pre-"+strconv.Itoa(i), "anna"))
		require.Equal(t, http.StatusOK, status)
	}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("[%s,%s]", event(fmt.Sprintf("bob-%d-%d", w, i), "bob"), event(fmt.Sprintf("anna-%d-%d", w, i), "anna"))
				status, resp := app.Post(t, u.URL, body)
				if status == http.StatusOK {
					acked.Add(1)
				} else {
					t.Errorf("ingest answered %d: %s", status, resp)
				}
			}
		})
	}
	for acked.Load() < 20 {
		runtimeGosched()
	}
	for range 3 { // erasing again while events keep arriving is safe too
		status, body := app.Admin(t, http.MethodPost, "/v1/integrations/"+strconv.FormatInt(in.ID, 10)+"/erasures", map[string]string{"email": "anna@example.com"})
		require.Equal(t, http.StatusCreated, status, string(body))
	}
	for n := acked.Load(); acked.Load() < n+20; {
		runtimeGosched()
	}
	close(stop)
	wg.Wait()

	var bob, anna int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE event_id LIKE 'bob-%'), count(*) FILTER (WHERE event_id NOT LIKE 'bob-%') FROM race_shop.data`).Scan(&bob, &anna))
	require.Equal(t, acked.Load(), bob, "every acknowledged event of Bob is stored")
	require.Zero(t, anna, "nothing of Anna survives")
	require.Equal(t, acked.Load(), apptest.Count(t, conn, "race_shop.rudder_events"))
	require.Equal(t, acked.Load(), apptest.Count(t, conn, "race_shop.data__data__recipients"))
	require.Empty(t, rowsNaming(t, conn, in.Schema, "anna@example.com"))
}

func runtimeGosched() { time.Sleep(5 * time.Millisecond) }
