package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
)

// Ensure two keys that clean to one column name in different events do not
// share it: the first key keeps the column, the later one stays in _sdc_raw
// with a "Field collision" row (SPEC 5), whatever its type.
func TestColumnCollisionAcrossEvents(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Collisions")
	for _, body := range []string{
		`{"event_id":"c1","customer-id":"first","n":{"a__b":1}}`,
		`{"event_id":"c2","customerid":"second","n":{"a":{"b":2}}}`,
		`{"event_id":"c3","customerid":3}`,
		`{"event_id":"c4","customer-id":"again"}`,
	} {
		status, resp := app.Post(t, u.URL, body)
		require.Equal(t, http.StatusOK, status, string(resp))
	}
	conn := app.DB(t)
	got := map[string]*string{}
	rows, err := conn.Query(context.Background(), `SELECT event_id, customerid FROM collisions.data ORDER BY event_id`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var v *string
		require.NoError(t, rows.Scan(&id, &v))
		got[id] = v
	}
	require.NoError(t, rows.Err())
	str := func(s string) *string { return &s }
	require.Equal(t, map[string]*string{"c1": str("first"), "c2": nil, "c3": nil, "c4": str("again")}, got)
	cols := columns(t, conn, "collisions", "data")
	require.NotContains(t, cols, "customerid__bi", "a colliding key never creates a typed column")
	var a2 *int64
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT n__a__b FROM collisions.data WHERE event_id = 'c2'`).Scan(&a2))
	require.Nil(t, a2, `n.a.b collides with the literal key "n.a__b" that claimed n__a__b first`)
	var n int
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT count(*) FROM collisions._sdc_rejected WHERE reason LIKE 'Field collision on %'`).Scan(&n))
	require.Equal(t, 3, n)
	var raw string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT _sdc_raw->>'customerid' FROM collisions.data WHERE event_id = 'c2'`).Scan(&raw))
	require.Equal(t, "second", raw, "the value is kept in _sdc_raw")
}

// Ensure two array keys that clean to one subtable name in different events
// do not share the subtable: the first key path keeps it.
func TestSubtableCollisionAcrossEvents(t *testing.T) {
	t.Parallel()
	app := apptest.Start(t)
	_, u := app.Setup(t, "Table Collisions")
	for _, body := range []string{
		`{"event_id":"t1","my-list":[{"v":"first"}]}`,
		`{"event_id":"t2","mylist":[{"v":"second"}]}`,
		`{"event_id":"t3","my-list":[{"v":"again"}]}`,
	} {
		status, resp := app.Post(t, u.URL, body)
		require.Equal(t, http.StatusOK, status, string(resp))
	}
	conn := app.DB(t)
	rows, err := conn.Query(context.Background(), `SELECT _sdc_source_key_event_id, v FROM table_collisions.data__mylist ORDER BY 1`)
	require.NoError(t, err)
	got := map[string]string{}
	for rows.Next() {
		var id, v string
		require.NoError(t, rows.Scan(&id, &v))
		got[id] = v
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]string{"t1": "first", "t3": "again"}, got)
	var n int
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT count(*) FROM table_collisions._sdc_rejected WHERE reason LIKE 'Field collision on data__mylist%'`).Scan(&n))
	require.Equal(t, 1, n)
}
