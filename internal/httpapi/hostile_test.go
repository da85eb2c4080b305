package httpapi_test

// Hostile input over HTTP, against the real app on a fresh Postgres: every
// case is stored or refused exactly as SPEC 3.1, 5 and 10 say, nothing is
// half-written, and the server still answers normally afterwards.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/config"
)

// ---- helpers (prefixed: other test files of the package are edited in parallel)

type hostileRejection struct{ Table, Reason, Record string }

// hostileRejected returns _sdc_rejected's rows, oldest first.
func hostileRejected(t *testing.T, conn *pgx.Conn, schema string) []hostileRejection {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		`SELECT coalesce(table_name, ''), coalesce(reason, ''), coalesce(record, '') FROM %s ORDER BY _sdc_rejected_at, ctid`,
		pgx.Identifier{schema, "_sdc_rejected"}.Sanitize()))
	require.NoError(t, err)
	var out []hostileRejection
	var r hostileRejection
	_, err = pgx.ForEachRow(rows, []any{&r.Table, &r.Reason, &r.Record}, func() error { out = append(out, r); return nil })
	require.NoError(t, err)
	return out
}

// hostileReasons returns the reasons of the rows whose record mentions id.
func hostileReasons(rs []hostileRejection, id string) []string {
	var out []string
	for _, r := range rs {
		if strings.Contains(r.Record, `"event_id":"`+id+`"`) {
			out = append(out, r.Reason)
		}
	}
	return out
}

func hostileAnyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// hostileTables lists the tables of schema.
func hostileTables(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1`, schema)
	require.NoError(t, err)
	var out []string
	var n string
	_, err = pgx.ForEachRow(rows, []any{&n}, func() error { out = append(out, n); return nil })
	require.NoError(t, err)
	return out
}

// hostileText reads one text value: SELECT expr FROM schema.table WHERE event_id = id.
func hostileText(t *testing.T, conn *pgx.Conn, schema, table, expr, id string) string {
	t.Helper()
	var s *string
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT (%s)::text FROM %s WHERE event_id = $1`,
		expr, pgx.Identifier{schema, table}.Sanitize()), id).Scan(&s)
	require.NoError(t, err, "%s.%s %s for %q", schema, table, expr, id)
	if s == nil {
		return "<NULL>"
	}
	return *s
}

func hostileCol(name string) string { return pgx.Identifier{name}.Sanitize() }

// hostileMetric reads one series from /metrics (0 when absent).
func hostileMetric(t *testing.T, app *apptest.App, series string) float64 {
	t.Helper()
	status, body := app.Do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, status)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, line)
			return v
		}
	}
	return 0
}

// hostileHealthy checks the server still does its job: health, readiness and
// an ordinary event committed through url.
func hostileHealthy(t *testing.T, app *apptest.App, hookURL, schema string) {
	t.Helper()
	for _, p := range []string{"/healthz", "/readyz"} {
		status, body := app.Do(t, http.MethodGet, p, nil, nil)
		require.Equal(t, http.StatusOK, status, "%s after hostile input: %s", p, body)
	}
	id := fmt.Sprintf("healthy-%d", time.Now().UnixNano())
	status, body := app.Post(t, hookURL, `{"event_id":"`+id+`","object_type":"email","metric":"sent","timestamp":1700000000}`)
	require.Equal(t, http.StatusOK, status, "an ordinary event after hostile input: %s", body)
	var n int
	require.NoError(t, app.DB(t).QueryRow(context.Background(),
		fmt.Sprintf(`SELECT count(*) FROM %s WHERE event_id = $1`, pgx.Identifier{schema, "data"}.Sanitize()), id).Scan(&n))
	require.Equal(t, 1, n)
}

// hostileClient has its own timeout and no connection reuse surprises.
var hostileClient = &http.Client{Timeout: 30 * time.Second}

// hostileSend posts body with an explicit Content-Length, or chunked when chunked.
func hostileSend(t *testing.T, target string, body []byte, chunked bool) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = struct{ io.Reader }{r} // hides Len: length unknown
	}
	req, err := http.NewRequest(http.MethodPost, target, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	} else {
		req.ContentLength = int64(len(body))
	}
	resp, err := hostileClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, out
}

// ---- cases

// Ensure SQL-looking, quoted, keyword, spaced, dotted and non-ASCII keys are
// stored under cleaned, quoted column names; none is executed; keys that
// can't be named stay in _sdc_raw with a _sdc_rejected row.
func TestHostileSQLKeys(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	in, u := app.Setup(t, `Robert'); DROP TABLE students; --`)
	schema := in.Schema
	require.Equal(t, "robert_drop_table_students", schema)
	conn := app.DB(t)
	ctx := context.Background()
	// Targets a successful injection would hit.
	_, err := conn.Exec(ctx, `CREATE TABLE public.x (id int); CREATE TABLE public.y (id int); INSERT INTO public.y VALUES (1)`)
	require.NoError(t, err)

	const id = `sql-1'; DROP TABLE data; --`
	event := map[string]any{
		"event_id":                  id,
		`a"; DROP TABLE x; --`:      "v1",
		`"quoted"`:                  "v2",
		"timestamp":                 1700000000,
		"select":                    "v3",
		"from":                      "v4",
		"user":                      "v5",
		"order by":                  "v6",
		"key with spaces":           "v7",
		"dotted.key.name":           "v8",
		"ключ":                      "cyrillic only",
		"émoji😀key":                 "v10",
		"Mixed Case":                "v11",
		"123abc":                    "v12",
		`'`:                         "quote only",
		"data":                      map[string]any{"x; DELETE FROM y": "v13", `"); TRUNCATE y; --`: "v14"},
		`arr'); DROP SCHEMA public`: []any{map[string]any{`k"`: "e0"}, map[string]any{`k"`: "e1"}},
		"_sdc_sequence":             1,
		"_sdc_raw":                  "x",
		"x__st":                     "reserved suffix",
		"ab":                        "plain",
		"a.b":                       "collides with ab",
	}
	body, err := json.Marshal(event)
	require.NoError(t, err)
	status, resp := app.Post(t, u.URL, body)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp))

	// Nothing was executed.
	require.EqualValues(t, 1, apptest.Count(t, conn, "public.y"))
	require.EqualValues(t, 0, apptest.Count(t, conn, "public.x"))
	require.Contains(t, hostileTables(t, conn, "public"), "x")
	require.EqualValues(t, 1, apptest.Count(t, conn, pgx.Identifier{schema, "data"}.Sanitize()))
	require.EqualValues(t, 1, apptest.Count(t, conn, pgx.Identifier{schema, "rudder_events"}.Sanitize()))

	cols := columns(t, conn, schema, "data")
	want := map[string]string{
		"aDROPTABLEx": "v1", "quoted": "v2", "select": "v3", "from": "v4", "user": "v5", "orderby": "v6",
		"keywithspaces": "v7", "dottedkeyname": "v8", "mojikey": "v10", "MixedCase": "v11", "abc": "v12",
		"data__xDELETEFROMy": "v13", "data__TRUNCATEy": "v14",
	}
	for col, v := range want {
		require.Equal(t, "text", cols[col], "column %s (have %v)", col, cols)
		require.Equal(t, v, hostileText(t, conn, schema, "data", hostileCol(col), id), col)
	}
	require.Equal(t, "bigint", cols["timestamp"], "SQL keywords are fine as column names")
	require.Equal(t, "1700000000", hostileText(t, conn, schema, "data", `"timestamp"`, id))
	// "a.b" sorts before "ab", so it claims the name; "ab" is the collision.
	require.Equal(t, "collides with ab", hostileText(t, conn, schema, "data", "ab", id))
	for col := range cols {
		require.Regexp(t, `^[A-Za-z_][A-Za-z0-9_]*$`, col, "column names are cleaned")
	}
	require.NotEqual(t, "1", hostileText(t, conn, schema, "data", "_sdc_sequence", id), "a key named _sdc_sequence must not set the sequence")
	require.Equal(t, "object", hostileText(t, conn, schema, "data", "json_typeof(_sdc_raw)", id))
	require.Equal(t, "x", hostileText(t, conn, schema, "data", `_sdc_raw->>'_sdc_raw'`, id), "a key named _sdc_raw is only in the raw copy")

	// Every key is in _sdc_raw exactly as sent.
	var raw string
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(`SELECT _sdc_raw::text FROM %s WHERE event_id = $1`,
		pgx.Identifier{schema, "data"}.Sanitize()), id).Scan(&raw))
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &got))
	for k := range event {
		require.Contains(t, got, k)
	}

	// The array's subtable, with its cleaned name and cleaned column.
	require.Contains(t, hostileTables(t, conn, schema), "data__arrDROPSCHEMApublic")
	var elems []string
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT k FROM %s WHERE _sdc_source_key_event_id = $1 ORDER BY _sdc_level_0_id`,
		pgx.Identifier{schema, "data__arrDROPSCHEMApublic"}.Sanitize()), id)
	require.NoError(t, err)
	var e string
	_, err = pgx.ForEachRow(rows, []any{&e}, func() error { elems = append(elems, e); return nil })
	require.NoError(t, err)
	require.Equal(t, []string{"e0", "e1"}, elems)

	reasons := hostileReasons(hostileRejected(t, conn, schema), id)
	require.True(t, hostileAnyContains(reasons, `"ключ" has no characters usable`), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, `"'" has no characters usable`), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "_sdc_sequence uses a reserved prefix"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "_sdc_raw uses a reserved prefix"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "reserved datatype suffix: x__st"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "Field collision on ab"), "%q", reasons)
	require.Len(t, reasons, 6, "%q", reasons)

	// A redelivery with the same hostile keys takes the update path (SET … = EXCLUDED …).
	event[`a"; DROP TABLE x; --`] = "v1-new"
	body, err = json.Marshal(event)
	require.NoError(t, err)
	status, resp = app.Post(t, u.URL, body)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.Equal(t, "v1-new", hostileText(t, conn, schema, "data", hostileCol("aDROPTABLEx"), id))
	require.EqualValues(t, 2, apptest.Count(t, conn, pgx.Identifier{schema, "data__arrDROPSCHEMApublic"}.Sanitize()))
	require.EqualValues(t, 1, apptest.Count(t, conn, "public.y"))

	hostileHealthy(t, app, u.URL, schema)
}

// Ensure over-long keys are kept in _sdc_raw with a "too long" row, that names
// are measured in bytes over the whole path, that multibyte keys can't produce
// invalid text in reasons or records, and that event_id is measured in characters.
func TestHostileLongKeys(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Long Keys")
	conn := app.DB(t)
	r := strings.Repeat
	event := map[string]any{
		"event_id":              "long-1",
		r("k", 300):             "kept in raw",
		r("c", 59):              "fits exactly",
		r("d", 60):              "one byte too long",
		r("é", 40) + r("m", 59): "multibyte removed: 59 ASCII bytes left",
		r("é", 30) + r("q", 60): "multibyte removed: 60 ASCII bytes left",
		r("日", 100):             "nothing nameable in 300 bytes",
		"n":                     map[string]any{r("p", 56): "n__ + 56 = 59", r("o", 57): "n__ + 57 = 60"},
		r("t", 57):              []any{"data__ + 57 = 63"},
		r("w", 58):              []any{"data__ + 58 = 64"},
		"pad":                   r("日", 3000), // the event is over 8 KiB: problem rows keep a cut copy
	}
	body, err := json.Marshal(event)
	require.NoError(t, err)
	status, resp := app.Post(t, u.URL, body)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp))

	cols := columns(t, conn, "long_keys", "data")
	require.Contains(t, cols, r("c", 59))
	require.Contains(t, cols, r("m", 59))
	require.Contains(t, cols, "n__"+r("p", 56))
	require.NotContains(t, cols, r("d", 60))
	require.NotContains(t, cols, r("q", 60))
	require.NotContains(t, cols, "n__"+r("o", 57))
	for c := range cols {
		require.LessOrEqual(t, len(c), 59, c)
	}
	tables := hostileTables(t, conn, "long_keys")
	require.Contains(t, tables, "data__"+r("t", 57))
	require.NotContains(t, tables, "data__"+r("w", 58))
	require.Equal(t, "kept in raw", hostileText(t, conn, "long_keys", "data", "_sdc_raw->>'"+r("k", 300)+"'", "long-1"))
	require.Equal(t, "one byte too long", hostileText(t, conn, "long_keys", "data", "_sdc_raw->>'"+r("d", 60)+"'", "long-1"))
	require.Equal(t, r("日", 3000), hostileText(t, conn, "long_keys", "data", "_sdc_raw->>'pad'", "long-1"))

	rej := hostileRejected(t, conn, "long_keys")
	var reasons []string
	for _, x := range rej {
		reasons = append(reasons, x.Reason)
		require.Equal(t, "data", x.Table)
		require.True(t, utf8.ValidString(x.Reason) && utf8.ValidString(x.Record))
		require.LessOrEqual(t, len(x.Record), 8<<10, "problem rows keep at most 8 KiB of the event")
		require.LessOrEqual(t, len(x.Reason), 400, "reasons name keys shortened")
		require.True(t, strings.HasPrefix(x.Record, `{"`), x.Record[:20])
	}
	require.True(t, hostileAnyContains(reasons, "Column name "+r("k", 200)+"… is too long"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "Column name "+r("d", 60)+" is too long"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "Column name "+r("q", 60)+" is too long"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "Column name n__"+r("o", 57)+" is too long"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, "Table name data__"+r("w", 58)+" is too long"), "%q", reasons)
	require.True(t, hostileAnyContains(reasons, `"`+r("日", 66)+`…" has no characters usable`), "cut at a character boundary: %q", reasons)
	require.Len(t, rej, 6, "%q", reasons)

	// event_id: at most 255 characters, however many bytes.
	status, resp = app.Post(t, u.URL, `[{"event_id":"`+r("é", 255)+`"},{"event_id":"`+r("é", 256)+`"},{"event_id":"`+r("x", 256)+`"}]`)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":1,"rejected":2}`, string(resp))
	require.Equal(t, r("é", 255), hostileText(t, conn, "long_keys", "data", "event_id", r("é", 255)))

	// A rejected object over 1 MiB keeps a cut copy that is still valid text.
	status, resp = app.Post(t, u.URL, `{"no_event_id":"`+r("日", 400_000)+`"}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":0,"rejected":1}`, string(resp))
	var n, bytesLen int
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT count(*), max(octet_length(record)) FROM long_keys._sdc_rejected WHERE reason LIKE '%missing%'`).Scan(&n, &bytesLen))
	require.Equal(t, 1, n)
	require.LessOrEqual(t, bytesLen, 1<<20)

	hostileHealthy(t, app, u.URL, "long_keys")
}

// Ensure NUL, invalid UTF-8 and lone surrogates, in keys and values, become
// U+FFFD in columns, subtables and _sdc_raw (200), and are counted.
func TestHostileText(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Text Hygiene")
	conn := app.DB(t)
	const series = "cioloader_text_replacements_total"
	before := hostileMetric(t, app, series)

	body := "{\"event_id\":\"text-\\u0000-id\"," + // NUL escape in event_id (1)
		"\"k\\u0000ey\":\"v\\u0000al\"," + // in a key and a value (2)
		"\"lone_hi\":\"a\\ud800b\",\"lone_lo\":\"\\uDC00\"," + // lone surrogates (2)
		"\"pair\":\"\\ud83d\\ude00\"," + // a valid pair stays
		"\"raw\xffkey\":\"raw\xfe\xffval\"," + // invalid UTF-8 bytes (3)
		"\"cesu\":\"\xed\xa0\x80\"," + // a UTF-8-encoded surrogate is invalid UTF-8 (3)
		"\"nested\":{\"in\\u0000ner\":[\"x\\u0000y\",\"ok\"]}," + // (2)
		"\"esc\":\"\\\\u0000 is text\"}" // an escaped backslash: not a NUL
	status, resp := app.Post(t, u.URL, body)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp))

	const id = "text-\uFFFD-id"
	for col, want := range map[string]string{
		"key":     "v\uFFFDal",
		"lone_hi": "a\uFFFDb",
		"lone_lo": "\uFFFD",
		"pair":    "\U0001F600",
		"rawkey":  "raw\uFFFD\uFFFDval",
		"cesu":    "\uFFFD\uFFFD\uFFFD",
		"esc":     `\u0000 is text`,
	} {
		require.Equal(t, want, hostileText(t, conn, "text_hygiene", "data", hostileCol(col), id), "column %s", col)
	}
	for key, want := range map[string]string{
		"k\uFFFDey":    "v\uFFFDal",
		"raw\uFFFDkey": "raw\uFFFD\uFFFDval",
		"lone_hi":      "a\uFFFDb",
		"esc":          `\u0000 is text`,
	} {
		require.Equal(t, want, hostileText(t, conn, "text_hygiene", "data", "_sdc_raw->>'"+key+"'", id), "_sdc_raw key %q", key)
	}
	require.Equal(t, "x\uFFFDy", hostileText(t, conn, "text_hygiene", "data", `_sdc_raw#>>'{nested,in`+"\uFFFD"+`ner,0}'`, id))
	var vals []string
	rows, err := conn.Query(context.Background(), `SELECT value FROM text_hygiene.data__nested__inner ORDER BY _sdc_level_0_id`)
	require.NoError(t, err)
	var v string
	_, err = pgx.ForEachRow(rows, []any{&v}, func() error { vals = append(vals, v); return nil })
	require.NoError(t, err)
	require.Equal(t, []string{"x\uFFFDy", "ok"}, vals)
	require.EqualValues(t, 1, apptest.Count(t, conn, "text_hygiene.rudder_events"))
	require.Equal(t, "1", hostileText(t, conn, "text_hygiene", "rudder_events", "1", id))

	// NUL (5) + invalid UTF-8 bytes (6) at least; lone surrogates are checked in
	// TestHostileTextCountsLoneSurrogates.
	require.GreaterOrEqual(t, hostileMetric(t, app, series)-before, 11.0, series)

	// A raw NUL byte (or any raw control character) inside a string is not
	// JSON (RFC 8259 §7): 400, nothing written.
	for _, bad := range []string{"{\"event_id\":\"rawnul\",\"v\":\"a\x00b\"}", "{\"event_id\":\"rawnul\",\"k\x00\":1}", "{\"event_id\":\"rawnul\"}\x00"} {
		status, resp = app.Post(t, u.URL, bad)
		require.Equal(t, http.StatusBadRequest, status, "%q: %s", bad, resp)
		require.True(t, json.Valid(resp))
	}
	require.EqualValues(t, 1, apptest.Count(t, conn, "text_hygiene.data"))
	require.EqualValues(t, 0, apptest.Count(t, conn, "text_hygiene._sdc_rejected"))

	// A rejected object (no event_id) with bad text is sanitised too.
	status, resp = app.Post(t, u.URL, "{\"nope\\u0000\":\"a\xffb\"}")
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":0,"rejected":1}`, string(resp))
	var record string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT record FROM text_hygiene._sdc_rejected`).Scan(&record))
	require.JSONEq(t, `{"nope\ufffd":"a\ufffdb"}`, record)

	hostileHealthy(t, app, u.URL, "text_hygiene")
}

// Ensure a lone surrogate escape, which becomes U+FFFD like NUL and invalid
// UTF-8 do, is counted by cioloader_text_replacements_total (SPEC 5 "a metric
// counts replacements"; the metric's help and webhook.Batch.Replaced say
// "NUL, invalid UTF-8, lone surrogates").
func TestHostileTextCountsLoneSurrogates(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Surrogates")
	const series = "cioloader_text_replacements_total"
	before := hostileMetric(t, app, series)
	status, resp := app.Post(t, u.URL, `{"event_id":"s1","hi":"\ud800","lo":"x\udfff"}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.Equal(t, "\uFFFD", hostileText(t, app.DB(t), "surrogates", "data", "hi", "s1"))
	require.Equal(t, 2.0, hostileMetric(t, app, series)-before,
		"two lone surrogates were replaced by U+FFFD, so %s must count two", series)
}

// Ensure 200-deep objects and arrays are stored (200): the deep part stays in
// _sdc_raw with a problem row. Deeper still (up to the JSON decoder's limit)
// is stored too; past it the body is refused whole.
func TestHostileDeepNesting(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Deep")
	conn := app.DB(t)
	r := strings.Repeat

	obj := `{"event_id":"deep-obj","top":"t","a":` + r(`{"a":`, 199) + `{"leaf":1}` + r(`}`, 199) + `}`
	arr := `{"event_id":"deep-arr","b":` + r(`[`, 200) + `1` + r(`]`, 200) + `}`
	mixed := `{"event_id":"deep-mixed","c":` + r(`[{"c":`, 100) + `1` + r(`}]`, 100) + `}`
	status, resp := app.Post(t, u.URL, "["+obj+","+arr+","+mixed+"]")
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":3,"rejected":0}`, string(resp))

	require.Equal(t, "t", hostileText(t, conn, "deep", "data", "top", "deep-obj"))
	path := "{" + strings.TrimSuffix(r("a,", 200), ",") + ",leaf}"
	require.Equal(t, "1", hostileText(t, conn, "deep", "data", "_sdc_raw#>>'"+path+"'", "deep-obj"), "the deep part is kept in _sdc_raw")
	require.Equal(t, "1", hostileText(t, conn, "deep", "data", "_sdc_raw#>>'{b"+r(",0", 200)+"}'", "deep-arr"))
	require.Equal(t, "1", hostileText(t, conn, "deep", "data", "_sdc_raw#>>'{c"+r(",0,c", 100)+"}'", "deep-mixed"))
	for col := range columns(t, conn, "deep", "data") {
		require.LessOrEqual(t, strings.Count(col, "__")+1, 10, "no column deeper than the depth bound: %s", col)
	}
	rej := hostileRejected(t, conn, "deep")
	for _, id := range []string{"deep-obj", "deep-arr", "deep-mixed"} {
		reasons := hostileReasons(rej, id)
		require.NotEmpty(t, reasons, "%s: the skipped deep part has a problem row", id)
		require.LessOrEqual(t, len(reasons), 50, id)
	}
	require.True(t, hostileAnyContains(hostileReasons(rej, "deep-obj"), "nested deeper than 10 levels"), "%q", hostileReasons(rej, "deep-obj"))
	require.EqualValues(t, 3, apptest.Count(t, conn, "deep.rudder_events"))

	// 9,000 levels: still JSON the decoder takes, still stored.
	status, resp = app.Post(t, u.URL, `{"event_id":"deep-9000","z":`+r(`[`, 9000)+r(`]`, 9000)+`}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.Equal(t, "array", hostileText(t, conn, "deep", "data", "json_typeof(_sdc_raw->'z')", "deep-9000"))
	// Past encoding/json's 10,000-level limit the body is refused whole.
	status, resp = app.Post(t, u.URL, `[{"event_id":"ok-neighbour"},{"event_id":"deep-10001","z":`+r(`[`, 10001)+r(`]`, 10001)+`}]`)
	require.Equal(t, http.StatusBadRequest, status, string(resp))
	require.EqualValues(t, 0, apptest.Count(t, conn, `deep.data WHERE event_id IN ('ok-neighbour', 'deep-10001')`))

	hostileHealthy(t, app, u.URL, "deep")
}

// Ensure an event with 3,000 keys is stored (200): the columns stop at the
// bounds, every key stays in _sdc_raw, problem rows are bounded per event,
// and values_unmapped_total counts what was left out.
func TestHostileManyKeys(t *testing.T) {
	t.Parallel()
	// Each of these events adds hundreds of columns in one transaction; under
	// -race beside the other parallel tests that can take longer than the
	// default 3 s commit deadline, and a 503 here would say nothing about caps.
	app := apptest.Start(t, func(c *config.Config) { c.CommitDeadline = 20 * time.Second })
	_, u := app.Setup(t, "Many Keys")
	conn := app.DB(t)
	const series = `cioloader_values_unmapped_total{integration="many_keys"}`

	mk := func(id string, from int) string {
		var b strings.Builder
		b.WriteString(`{"event_id":"` + id + `"`)
		for i := from; i < from+3000; i++ {
			fmt.Fprintf(&b, `,"k%05d":"v%d"`, i, i)
		}
		b.WriteString("}")
		return b.String()
	}
	status, resp := app.Post(t, u.URL, mk("many-1", 0))
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp))

	cols := columns(t, conn, "many_keys", "data")
	require.Len(t, cols, 1000, "the column cap (default 1,000, system columns included)")
	require.Equal(t, "3001", hostileText(t, conn, "many_keys", "data", "(SELECT count(*) FROM jsonb_object_keys(_sdc_raw::jsonb))", "many-1"))
	require.Equal(t, "v2999", hostileText(t, conn, "many_keys", "data", "_sdc_raw->>'k02999'", "many-1"))
	require.Equal(t, "v0", hostileText(t, conn, "many_keys", "data", "k00000", "many-1"))
	rej := hostileRejected(t, conn, "many_keys")
	reasons := hostileReasons(rej, "many-1")
	require.NotEmpty(t, reasons)
	require.LessOrEqual(t, len(reasons), 50, "problem rows per event are bounded")
	require.True(t, hostileAnyContains(reasons, "more than 1000 keys"), "%q", reasons)
	require.Positive(t, hostileMetric(t, app, series))

	// A second such event with 3,000 new keys: everything is past the cap.
	before := hostileMetric(t, app, series)
	status, resp = app.Post(t, u.URL, mk("many-2", 3000))
	require.Equal(t, http.StatusOK, status, string(resp))
	reasons = hostileReasons(hostileRejected(t, conn, "many_keys"), "many-2")
	require.Len(t, reasons, 50, "problem rows per event are bounded")
	require.True(t, hostileAnyContains(reasons, "Further unmapped values"), "%q", reasons)
	require.Len(t, columns(t, conn, "many_keys", "data"), 1000)
	require.GreaterOrEqual(t, hostileMetric(t, app, series)-before, 1000.0, "every unmapped value is counted, listed or not")
	require.Equal(t, "v5999", hostileText(t, conn, "many_keys", "data", "_sdc_raw->>'k05999'", "many-2"))

	hostileHealthy(t, app, u.URL, "many_keys")
}

// Ensure an event that fills the default 1,000-column cap still fits one
// Postgres row. A heap tuple is at most ~8,160 bytes: ~994 bigint columns
// (8 bytes each) do not fit, nor do ~994 short text values (too small to be
// moved out of line by TOAST). Either way the request must not fail whole.
func TestHostileWideRow(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	for _, tc := range []struct {
		name  string
		id    string
		value func(i int) string
	}{
		{"Wide Bigint", strings.Repeat("w", 200), func(i int) string { return strconv.Itoa(1_000_000_000_000 + i) }},
		{"Wide Text", "wide", func(i int) string { return fmt.Sprintf(`"value number %05d"`, i) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, u := app.Setup(t, tc.name)
			var b strings.Builder
			b.WriteString(`{"event_id":"` + tc.id + `"`)
			for i := range 1200 {
				fmt.Fprintf(&b, `,"n%04d":%s`, i, tc.value(i))
			}
			b.WriteString("}")
			status, resp := app.Post(t, u.URL, b.String())
			require.Equal(t, http.StatusOK, status,
				"a row past Postgres's 8,160-byte heap tuple limit must keep the excess in _sdc_raw, "+
					"not fail the request on every retry: %s", resp)
			require.EqualValues(t, 1, apptest.Count(t, app.DB(t), pgx.Identifier{in.Schema, "data"}.Sanitize()))
			hostileHealthy(t, app, u.URL, in.Schema)
		})
	}
}

// Ensure the 10,000-event bound: 10,001 is a 400 with nothing written; 10,000 is committed.
func TestHostileEventCount(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Event Count")
	conn := app.DB(t)
	arr := func(n int) string {
		var b strings.Builder
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"event_id":"e%d"}`, i)
		}
		b.WriteByte(']')
		return b.String()
	}
	status, resp := app.Post(t, u.URL, arr(10_001))
	require.Equal(t, http.StatusBadRequest, status, string(resp))
	require.Contains(t, string(resp), "at most 10000")
	for _, table := range []string{"data", "rudder_events", "_sdc_rejected"} {
		require.EqualValues(t, 0, apptest.Count(t, conn, "event_count."+table), table)
	}
	status, resp = app.Post(t, u.URL, arr(10_000))
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":10000,"rejected":0}`, string(resp))
	require.EqualValues(t, 10_000, apptest.Count(t, conn, "event_count.data"))
	require.EqualValues(t, 10_000, apptest.Count(t, conn, "event_count.rudder_events"))
	var ordered bool
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT bool_and(s.next > s._sdc_sequence) FROM (
		SELECT _sdc_sequence, lead(_sdc_sequence) OVER (ORDER BY substr(event_id, 2)::int) AS next FROM event_count.data) s
		WHERE s.next IS NOT NULL`).Scan(&ordered))
	require.True(t, ordered, "array order is kept in _sdc_sequence")
	hostileHealthy(t, app, u.URL, "event_count")
}

// Ensure a body over the limit is a 413 with nothing written, whether its
// length is announced (Content-Length) or not (chunked).
func TestHostileBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	app := apptest.Start(t, func(c *config.Config) { c.MaxBodyBytes = limit })
	_, u := app.Setup(t, "Body Limit")
	conn := app.DB(t)
	sized := func(id string, size int) []byte {
		head := `{"event_id":"` + id + `","pad":"`
		return []byte(head + strings.Repeat("x", size-len(head)-2) + `"}`)
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		chunked bool
		status  int
	}{
		{"content-length-over", sized("cl-over", limit+1), false, 413},
		{"chunked-over", sized("chunked-over", limit+1), true, 413},
		{"chunked-far-over", sized("chunked-far-over", 3*limit), true, 413},
		{"content-length-far-over", sized("cl-far-over", 3*limit), false, 413},
		{"content-length-at-limit", sized("cl-at", limit), false, 200},
		{"chunked-at-limit", sized("chunked-at", limit), true, 200},
	} {
		resp, body := hostileSend(t, u.URL, tc.body, tc.chunked)
		require.Equal(t, tc.status, resp.StatusCode, "%s: %s", tc.name, body)
		if tc.status == 413 {
			require.Contains(t, string(body), fmt.Sprintf("larger than %d bytes", limit), tc.name)
			require.True(t, json.Valid(body), tc.name)
		}
	}
	require.EqualValues(t, 2, apptest.Count(t, conn, "body_limit.data"), "only the two bodies at the limit")
	require.EqualValues(t, 2, apptest.Count(t, conn, "body_limit.rudder_events"))
	require.EqualValues(t, 0, apptest.Count(t, conn, "body_limit._sdc_rejected"))
	require.Equal(t, 0.0, hostileMetric(t, app, "cioloader_inflight_bytes"), "every reservation is released")
	hostileHealthy(t, app, u.URL, "body_limit")
}

// Ensure numbers Postgres can't store send their object to _sdc_rejected
// while neighbours are stored; numbers it can store (however odd) are kept.
func TestHostileNumbers(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Numbers")
	conn := app.DB(t)
	status, resp := app.Post(t, u.URL, `[
		{"event_id":"num-bad","v":1e200000},
		{"event_id":"num-ok","v":1},
		{"event_id":"num-nested","a":{"b":[1,-1e200000]}},
		{"event_id":"num-frac","v":1e-20000},
		{"event_id":"num-odd","big":123456789012345678901234567890,"inf":1e400,"tiny":1e-400,"negzero":-0.0,"edge":1e131071,"small":1e-16383}
	]`)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":2,"rejected":3}`, string(resp))
	rej := hostileRejected(t, conn, "numbers")
	require.Len(t, rej, 3)
	for _, r := range rej {
		require.Contains(t, r.Reason, "outside the range Postgres can store")
		require.LessOrEqual(t, len(r.Reason), 200, "the number is cut in the reason")
	}
	require.Equal(t, "1", hostileText(t, conn, "numbers", "data", "v", "num-ok"))
	require.Equal(t, "123456789012345678901234567890", hostileText(t, conn, "numbers", "data", "big", "num-odd"))
	require.Equal(t, "numeric", columns(t, conn, "numbers", "data")["inf"], "1e400 overflows a double: numeric holds it")
	require.Equal(t, "0", hostileText(t, conn, "numbers", "data", "tiny", "num-odd"))
	require.Equal(t, "true", hostileText(t, conn, "numbers", "data", "(_sdc_raw::jsonb->'small')::numeric = 1e-16383", "num-odd"))
	require.Equal(t, "true", hostileText(t, conn, "numbers", "data", "(_sdc_raw::jsonb->'edge')::numeric = 1e131071", "num-odd"))
	require.EqualValues(t, 2, apptest.Count(t, conn, "numbers.rudder_events"))
	hostileHealthy(t, app, u.URL, "numbers")
}

// Ensure a zero written with a long negative exponent (0e-16384: its value is
// 0, but Postgres's numeric input refuses its 16,384-digit scale) is stored
// or rejected like any other number, never a request-wide failure: a 503
// here is answered again on every one of Customer.io's retries, and holds
// back every later event of the webhook for 7 days.
func TestHostileZeroWithHugeExponent(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Zero Exponent")
	conn := app.DB(t)
	for _, lit := range []string{"0e-16384", "0.0e-99999", "-0e2000000000"} {
		status, resp := app.Post(t, u.URL, `[{"event_id":"zero","v":`+lit+`},{"event_id":"neighbour"}]`)
		require.Equal(t, http.StatusOK, status,
			"%s must go to _sdc_rejected (Postgres's jsonb refuses it), not fail the whole request: %s", lit, resp)
		require.EqualValues(t, 1, apptest.Count(t, conn, `zero_exponent.data WHERE event_id = 'neighbour'`))
	}
	hostileHealthy(t, app, u.URL, "zero_exponent")
}

// Ensure a client that sends its headers slowly is cut off by the header
// timeout. SLOW: ~5 s (HTTPServer's ReadHeaderTimeout); it runs in parallel.
// The whole-request ReadTimeout (30 s) is too slow to wait for here: see
// TestHostileSlowBody, which checks the same mechanism with a short timeout.
func TestHostileSlowHeaders(t *testing.T) {
	skipShort(t)
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Slow Headers")
	target, err := url.Parse(u.URL)
	require.NoError(t, err)

	hs := app.Server.HTTPServer("")
	require.Equal(t, 5*time.Second, hs.ReadHeaderTimeout)
	require.Positive(t, hs.ReadTimeout)
	require.Positive(t, hs.WriteTimeout)
	require.Positive(t, hs.IdleTimeout)

	conn, err := net.Dial("tcp", target.Host)
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	// Trickle the headers, one byte every 200 ms: the timeout is for all of them.
	head := "POST " + target.Path + " HTTP/1.1\r\nHost: " + target.Host + "\r\nContent-Type: application/json\r\nContent-Length: 20\r\nX-Padding: " + strings.Repeat("p", 100)
	go func() {
		for i := range len(head) {
			if _, err := conn.Write([]byte{head[i]}); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	require.NoError(t, conn.SetReadDeadline(start.Add(9*time.Second)))
	got, err := io.ReadAll(conn)
	elapsed := time.Since(start)
	require.NoError(t, err, "the server must close the connection (got %q after %v)", got, elapsed)
	require.Less(t, elapsed, 6500*time.Millisecond, "closed within ~ReadHeaderTimeout")
	require.GreaterOrEqual(t, elapsed, 4*time.Second)
	t.Logf("connection closed after %v; server wrote %q", elapsed, got)
	require.EqualValues(t, 0, apptest.Count(t, app.DB(t), "slow_headers.data"))
	hostileHealthy(t, app, u.URL, "slow_headers")
}

// Ensure a client that trickles its body is cut off by the body timeout
// (CIOLOADER_BODY_TIMEOUT, shortened to 1 s here: the mechanism, not the
// value), nothing is written and its budget comes back.
func TestHostileSlowBody(t *testing.T) {
	skipShort(t)
	t.Parallel()
	app := apptest.Start(t, func(c *config.Config) { c.BodyTimeout = time.Second })
	_, u := app.Setup(t, "Slow Body")
	target, err := url.Parse(u.URL)
	require.NoError(t, err)

	conn, err := net.Dial("tcp", target.Host)
	require.NoError(t, err)
	defer conn.Close()
	body := `{"event_id":"slow-body","pad":"` + strings.Repeat("x", 100) + `"}`
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", target.Path, len(body))
	require.NoError(t, err)
	start := time.Now()
	go func() {
		for i := range len(body) {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	require.NoError(t, conn.SetReadDeadline(start.Add(8*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	elapsed := time.Since(start)
	if err == nil {
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("after %v the server answered %d %s", elapsed, resp.StatusCode, out)
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
		require.NotEqual(t, http.StatusInternalServerError, resp.StatusCode)
	} else {
		t.Logf("after %v the server closed the connection: %v", elapsed, err)
	}
	require.Less(t, elapsed, 3*time.Second, "cut off by the 1 s body timeout")
	require.EqualValues(t, 0, apptest.Count(t, app.DB(t), "slow_body.data"))
	require.Equal(t, 0.0, hostileMetric(t, app, "cioloader_inflight_bytes"), "the slow request's reservation is released")
	hostileHealthy(t, app, u.URL, "slow_body")
}

// Ensure the in-flight budget: memory is charged by bytes actually read (the
// gauge shows what a slow request sent, not what it declared; its declared
// length only admits it); a request that would exceed the budget gets 503
// with Retry-After (before it is read when its length is declared) and
// nothing is written; once the slow one finishes, the budget is free again.
func TestHostileInflightBudget(t *testing.T) {
	t.Parallel()
	// Factor 1 and a 6,144-byte budget keep the arithmetic visible: the
	// largest request costs 4,096 body bytes + 2 events × 1 KiB.
	app := apptest.Start(t, func(c *config.Config) {
		c.MaxBodyBytes, c.MaxEvents, c.InflightBytes = 4096, 2, 6144
		c.MemoryFactor, c.IntegrationPct, c.BodyTimeout = 1, 100, 20*time.Second
	})
	_, u := app.Setup(t, "Budget")
	db := app.DB(t)
	target, err := url.Parse(u.URL)
	require.NoError(t, err)

	// The slow request announces 3,000 bytes and sends 2,500 of them.
	slowBody := `{"event_id":"slow","pad":"` + strings.Repeat("s", 3000-len(`{"event_id":"slow","pad":""}`)) + `"}`
	require.Len(t, slowBody, 3000)
	conn, err := net.Dial("tcp", target.Host)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 3000\r\n\r\n%s",
		target.Path, target.Host, slowBody[:2500])
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hostileMetric(t, app, "cioloader_inflight_bytes") == 2500 },
		5*time.Second, 20*time.Millisecond, "the slow request is charged the 2,500 bytes it sent, not the 3,000 it declared")

	over := func(id string, size int) []byte {
		head := `{"event_id":"` + id + `","pad":"`
		return []byte(head + strings.Repeat("o", size-len(head)-2) + `"}`)
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		chunked bool
	}{
		{"over-budget", over("over-budget", 4000), false},                // refused from its Content-Length
		{"over-budget-chunked", over("over-budget-chunked", 3700), true}, // refused while it is read
	} {
		resp, body := hostileSend(t, u.URL, tc.body, tc.chunked)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s: %s", tc.name, body)
		require.NotEmpty(t, resp.Header.Get("Retry-After"), tc.name)
		var e map[string]string
		require.NoError(t, json.Unmarshal(body, &e), tc.name)
		require.Contains(t, e["error"], "retry", tc.name)
	}
	// Within the budget: fine even now (3,000 admitted + 1,000 + one event's 1 KiB).
	resp, body := hostileSend(t, u.URL, over("within-budget", 1000), false)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	// The slow request completes and is committed.
	_, err = io.WriteString(conn, slowBody[2500:])
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	slowResp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	out, _ := io.ReadAll(slowResp.Body)
	slowResp.Body.Close()
	require.Equal(t, http.StatusOK, slowResp.StatusCode, string(out))

	require.Eventually(t, func() bool { return hostileMetric(t, app, "cioloader_inflight_bytes") == 0 },
		5*time.Second, 20*time.Millisecond, "every reservation is released")
	resp, body = hostileSend(t, u.URL, over("after", 4000), false)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	var ids []string
	rows, err := db.Query(context.Background(), `SELECT event_id FROM budget.data ORDER BY 1`)
	require.NoError(t, err)
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error { ids = append(ids, id); return nil })
	require.NoError(t, err)
	require.Equal(t, []string{"after", "slow", "within-budget"}, ids, "nothing from the 503s")
	hostileHealthy(t, app, u.URL, "budget")
}

// Ensure every method but POST on both ingest paths is a 405 (HEAD too, with
// no body), and writes nothing even with a valid token and body.
func TestHostileMethods(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Methods")
	good := `{"event_id":"by-method"}`
	for _, target := range []string{u.URL, app.URL + "/v1/webhook?writeKey=" + u.Token} {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodTrace, "PROPFIND", "FOO"} {
			req, err := http.NewRequest(m, target, strings.NewReader(good))
			require.NoError(t, err)
			resp, err := hostileClient.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s: %s", m, target, body)
			if m == http.MethodHead {
				require.Empty(t, body)
			} else {
				require.True(t, json.Valid(body), "%s: %s", m, body)
				require.Contains(t, string(body), `"error"`, m)
			}
			switch m {
			case http.MethodTrace, "PROPFIND", "FOO":
			default:
				require.Equal(t, http.MethodPost, resp.Header.Get("Allow"), m)
			}
		}
	}
	require.EqualValues(t, 0, apptest.Count(t, app.DB(t), "methods.data"))
	hostileHealthy(t, app, u.URL, "methods")
}

// Ensure the column and subtable caps: past them new keys and arrays stay in
// _sdc_raw only, with problem rows, and the request is a 200.
func TestHostileCaps(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t, func(c *config.Config) { c.MaxColumns = 10; c.MaxSubtables = 2 })
	_, u := app.Setup(t, "Caps")
	conn := app.DB(t)
	const series = `cioloader_values_unmapped_total{integration="caps"}`
	elems := `[{"x":1,"y":2,"z1":3,"z2":4,"z3":5,"z4":6,"z5":7,"z6":8,"z7":9}]`
	status, resp := app.Post(t, u.URL, `{"event_id":"caps-1","c1":"1","c2":"2","c3":"3","c4":"4","c5":"5","c6":"6","c7":"7","c8":"8",
		"a1":`+elems+`,"a2":`+elems+`,"a3":`+elems+`,"a4":[1,2]}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.JSONEq(t, `{"accepted":1,"rejected":0}`, string(resp))

	dataCols := columns(t, conn, "caps", "data")
	require.Len(t, dataCols, 10, "data: 6 system columns + 4 keys")
	for _, c := range []string{"c1", "c2", "c3", "c4"} {
		require.Contains(t, dataCols, c)
	}
	tables := hostileTables(t, conn, "caps")
	require.Equal(t, []string{"_sdc_rejected", "bounce_facts", "customer_facts", "data", "data__a1", "data__a2", "delivery_facts", "event_facts",
		"message_facts", "rudder_rows"}, tables, "two subtables")
	require.Len(t, columns(t, conn, "caps", "data__a1"), 10, "subtables have the column cap too")
	require.EqualValues(t, 1, apptest.Count(t, conn, "caps.data__a1"))
	require.Equal(t, "8", hostileText(t, conn, "caps", "data", "_sdc_raw->>'c8'", "caps-1"))
	require.Equal(t, "[1, 2]", hostileText(t, conn, "caps", "data", "_sdc_raw::jsonb->'a4'", "caps-1"))

	reasons := hostileReasons(hostileRejected(t, conn, "caps"), "caps-1")
	for _, want := range []string{
		"Table data has reached its column limit; c5", "Table data has reached its column limit; c8",
		"limit of array subtables; data__a3", "limit of array subtables; data__a4",
		"Table data__a1 has reached its column limit; z7",
	} {
		require.True(t, hostileAnyContains(reasons, want), "%s in %q", want, reasons)
	}
	require.LessOrEqual(t, len(reasons), 50)
	require.EqualValues(t, len(reasons), hostileMetric(t, app, series))

	// Later events: new keys and arrays still go to _sdc_raw only.
	status, resp = app.Post(t, u.URL, `{"event_id":"caps-2","c9":"9","a5":[{"x":1}],"a1":[{"x":10}]}`)
	require.Equal(t, http.StatusOK, status, string(resp))
	require.Equal(t, "9", hostileText(t, conn, "caps", "data", "_sdc_raw->>'c9'", "caps-2"))
	require.Len(t, hostileTables(t, conn, "caps"), 10)
	require.Len(t, columns(t, conn, "caps", "data"), 10)
	require.EqualValues(t, 2, apptest.Count(t, conn, "caps.data__a1"), "existing subtables still get rows")
	hostileHealthy(t, app, u.URL, "caps")
}

// Ensure names that collide after cleaning, or subtables that would need two
// nestings under one name, are kept in _sdc_raw with a problem row (200),
// within one event, one request, or across requests.
func TestHostileNameCollisions(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Collisions")
	conn := app.DB(t)
	for _, tc := range []struct{ body, want string }{
		{`{"event_id":"c1","a__b":[1],"a":[{"b":[2]}]}`, `{"accepted":1,"rejected":0}`},
		{`{"event_id":"c2","p__q":[1]}`, `{"accepted":1,"rejected":0}`},
		{`{"event_id":"c3","p":[{"q":[2]}]}`, `{"accepted":1,"rejected":0}`},
		{`[{"event_id":"c4","m__n":[1]},{"event_id":"c5","m":[{"n":[2]}]}]`, `{"accepted":2,"rejected":0}`},
		{`{"event_id":"c6","x":{"y":1},"x__y":2,"x.y":3,"event_id ":"dup","Email":"A","email":"b"}`, `{"accepted":1,"rejected":0}`},
		{`{"event_id":"c7","a__":{"b":1},"a":{"__b":2},"v":[1,{"value":2},[3]]}`, `{"accepted":1,"rejected":0}`},
	} {
		status, resp := app.Post(t, u.URL, tc.body)
		require.Equal(t, http.StatusOK, status, "%s: %s", tc.body, resp)
		require.JSONEq(t, tc.want, string(resp), tc.body)
	}
	require.EqualValues(t, 7, apptest.Count(t, conn, "collisions.data"))
	require.EqualValues(t, 7, apptest.Count(t, conn, "collisions.rudder_events"))
	rej := hostileRejected(t, conn, "collisions")
	for _, id := range []string{"c1", "c3", "c6", "c7"} {
		require.NotEmpty(t, hostileReasons(rej, id), id)
	}
	require.NotEmpty(t, append(hostileReasons(rej, "c4"), hostileReasons(rej, "c5")...))
	cols := columns(t, conn, "collisions", "data")
	require.Contains(t, cols, "Email")
	require.Contains(t, cols, "email")
	require.Equal(t, "A", hostileText(t, conn, "collisions", "data", `"Email"`, "c6"))
	require.Equal(t, "b", hostileText(t, conn, "collisions", "data", `"email"`, "c6"))
	require.Equal(t, "dup", hostileText(t, conn, "collisions", "data", `_sdc_raw->>'event_id '`, "c6"))
	hostileHealthy(t, app, u.URL, "collisions")
}

// Ensure one request that fails to write (here a number Postgres refuses; see
// TestHostileZeroWithHugeExponent) cannot fail the requests that shared its
// group-commit transaction: each of them is committed and answered 200.
func TestHostilePoisonIsolated(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Isolation")
	const n, poison = 40, 7
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"event_id":"iso-%d","object_type":"email","metric":"sent"}`, i)
			if i == poison {
				body = `{"event_id":"iso-poison","v":0e-16384}`
			}
			statuses[i], _ = app.Post(t, u.URL, body)
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if i != poison {
			require.Equal(t, http.StatusOK, s, "request %d shared a batch with a failing one", i)
		}
	}
	t.Logf("the failing request got %d", statuses[poison])
	require.EqualValues(t, n-1, apptest.Count(t, app.DB(t), `isolation.data WHERE event_id LIKE 'iso-%' AND event_id <> 'iso-poison'`))
	hostileHealthy(t, app, u.URL, "isolation")
}
