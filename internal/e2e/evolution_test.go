package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// jsonType is one JSON value type, the column type it maps to (SPEC 5) and
// the suffix of its split column.
type jsonType struct {
	sqlType, suffix string
	value           func(n int) any
}

var jsonTypes = []jsonType{
	{"bigint", "bi", func(n int) any { return n }},
	{"text", "st", func(n int) any { return "v" + strconv.Itoa(n) }},
	{"double precision", "do", func(n int) any { return float64(n) + 0.5 }},
	{"boolean", "bo", func(n int) any { return n%2 == 0 }},
	{"numeric", "de", func(n int) any { return json.Number("123456789012345678901234567890" + strconv.Itoa(n)) }},
}

func suffixOf(sqlType string) string {
	for _, jt := range jsonTypes {
		if jt.sqlType == sqlType {
			return jt.suffix
		}
	}
	return "?"
}

const (
	evoRounds  = 4
	evoKeys    = 25 // new scalar keys per round
	evoSenders = 3  // concurrent senders per replica
	evoBatch   = 10 // events per request
)

// typesOf gives key k's JSON type on replica A and on replica B: always
// different, covering every ordered pair of types.
func typesOf(k int) (onA, onB jsonType) {
	i := k % len(jsonTypes)
	j := (i + 1 + (k/len(jsonTypes))%(len(jsonTypes)-1)) % len(jsonTypes)
	return jsonTypes[i], jsonTypes[j]
}

// evoEvent is one event of the evolution test: evoKeys new scalar keys, an
// array of scalars and an array of objects (new subtables), each with the
// side's types.
func evoEvent(side string, round, sender, i int) map[string]any {
	n := (round*evoSenders+sender)*evoBatch + i
	ev := emailEvent(fmt.Sprintf("evo-%s-r%d-s%d-%d", side, round, sender, i))
	for k := range evoKeys {
		ta, tb := typesOf(k)
		typ := ta
		if side == "b" {
			typ = tb
		}
		ev[fmt.Sprintf("r%dk%d", round, k)] = typ.value(n)
	}
	ta, tb := typesOf(round)
	typ := ta
	if side == "b" {
		typ = tb
	}
	ev[fmt.Sprintf("r%darr", round)] = []any{typ.value(n), typ.value(n + 1)}
	ev[fmt.Sprintf("r%dobjs", round)] = []any{map[string]any{"x": typ.value(n)}, map[string]any{"x": typ.value(n + 2), "y": n}}
	return ev
}

var evoKeyRE = regexp.MustCompile(`^r\d+k\d+$`)

// SPEC 4/5: schema evolution is serialised per table and safe with several
// replicas. Both replicas get, at the same moment, events with the same new
// keys (columns and subtables) but different JSON types; every post succeeds
// and every value lands in its own type's column (the first type keeps the
// bare name, the other gets its suffix), as _sdc_raw says.
func concurrentEvolution(t *testing.T, db string, a, b *server) {
	in, u := a.setup(t, "Replica Evolution")
	targets := map[string]string{"a": u.URL, "b": u.on(b)}
	sent := 0
	for round := range evoRounds {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for side, target := range targets {
			for sender := range evoSenders {
				events := make([]any, evoBatch)
				for i := range events {
					events[i] = evoEvent(side, round, sender, i)
				}
				body := mustJSON(events)
				sent += len(events)
				wg.Go(func() {
					<-start
					r := post(target, body, 15*time.Second)
					if r.Err != nil || r.Status != http.StatusOK {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("replica %s: %d %v %s", side, r.Status, r.Err, r.Body))
						mu.Unlock()
					}
				})
			}
		}
		close(start)
		wg.Wait()
		require.Empty(t, failures, "round %d: every post must be 200", round)
	}
	checkEvolution(t, db, in.Schema, sent)
}

// evoCheck reads one integration schema to compare columns with _sdc_raw.
type evoCheck struct {
	t      *testing.T
	ctx    context.Context
	conn   *pgx.Conn
	schema string
}

func checkEvolution(t *testing.T, db, schema string, sent int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	c := &evoCheck{t: t, ctx: ctx, conn: conn, schema: schema}

	// data: every scalar key has exactly its two types' columns, and every
	// value is in its type's column.
	dataCols := c.columns("data")
	for round := range evoRounds {
		for k := range evoKeys {
			ta, tb := typesOf(k)
			c.requireSplit(dataCols, "data", fmt.Sprintf("r%dk%d", round, k), ta.sqlType, tb.sqlType)
		}
	}
	raws := map[string]map[string]any{}
	rows := c.rows("data", "event_id LIKE 'evo-%'")
	require.Equal(t, sent, len(rows), "rows in data")
	for _, row := range rows {
		id := row["event_id"].(string)
		raw := row["_sdc_raw"].(map[string]any)
		raws[id] = raw
		keys := 0
		for key, v := range raw {
			if evoKeyRE.MatchString(key) {
				keys++
				c.requireValue(dataCols, "data", id, row, key, v)
			}
		}
		require.Equal(t, evoKeys, keys, "%s: raw keys", id)
	}

	// Subtables: created by both replicas at once; the scalar array's value
	// and the objects' x split by type too; one row per element.
	for round := range evoRounds {
		ta, tb := typesOf(round)
		arr, objs := fmt.Sprintf("r%darr", round), fmt.Sprintf("r%dobjs", round)
		for _, sub := range []struct{ key, base string }{{arr, "value"}, {objs, "x"}} {
			table := "data__" + sub.key
			cols := c.columns(table)
			c.requireSplit(cols, table, sub.base, ta.sqlType, tb.sqlType)
			rows := c.rows(table, "_sdc_source_key_event_id LIKE 'evo-%'")
			require.Equal(t, 2*sent/evoRounds, len(rows), "rows in %s (two elements per event of the round)", table)
			for _, row := range rows {
				id := row["_sdc_source_key_event_id"].(string)
				idx, err := row["_sdc_level_0_id"].(json.Number).Int64()
				require.NoError(t, err)
				elem := raws[id][sub.key].([]any)[idx]
				where := fmt.Sprintf("%s[%d]", id, idx)
				if obj, ok := elem.(map[string]any); ok {
					for k, v := range obj {
						c.requireValue(cols, table, where, row, k, v)
					}
				} else {
					c.requireValue(cols, table, where, row, "value", elem)
				}
			}
		}
	}

	var rejected, rudder int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "_sdc_rejected"}.Sanitize()).Scan(&rejected))
	require.Zero(t, rejected, "nothing rejected or unmapped")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "rudder_events"}.Sanitize()+
		" WHERE event_id LIKE 'evo-%'").Scan(&rudder))
	require.Equal(t, sent, rudder, "rows in rudder_events")
}

// columns returns table's column names and types.
func (c *evoCheck) columns(table string) map[string]string {
	rows, err := c.conn.Query(c.ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2`, c.schema, table)
	require.NoError(c.t, err)
	cols := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error { cols[name] = typ; return nil })
	require.NoError(c.t, err)
	require.NotEmpty(c.t, cols, "table %s.%s", c.schema, table)
	return cols
}

// rows returns table's rows matching where, each as JSON (numbers exact).
func (c *evoCheck) rows(table, where string) []map[string]any {
	rows, err := c.conn.Query(c.ctx, "SELECT to_jsonb(t)::text FROM "+pgx.Identifier{c.schema, table}.Sanitize()+" t WHERE "+where)
	require.NoError(c.t, err)
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(c.t, err)
	out := make([]map[string]any, len(texts))
	for i, s := range texts {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		require.NoError(c.t, dec.Decode(&out[i]))
	}
	return out
}

// requireSplit checks that base has exactly two columns, of types x and y:
// one named base, the other base__<suffix of its type>.
func (c *evoCheck) requireSplit(cols map[string]string, table, base, x, y string) {
	var got []string
	for col, typ := range cols {
		if col == base || strings.HasPrefix(col, base+"__") {
			got = append(got, col+" "+typ)
		}
	}
	sort.Strings(got)
	require.Len(c.t, got, 2, "%s.%s (%s on A, %s on B): columns %v", table, base, x, y, got)
	for _, typ := range []string{x, y} {
		if cols[base] != typ {
			require.Equal(c.t, typ, cols[base+"__"+suffixOf(typ)], "%s.%s: no %s column among %v", table, base, typ, got)
		}
	}
}

// requireValue checks that v, the raw value of key, is in the column of its
// type and in no other column of that key.
func (c *evoCheck) requireValue(cols map[string]string, table, where string, row map[string]any, key string, v any) {
	want := sqlTypeOf(v)
	col := key
	if cols[key] != want {
		col = key + "__" + suffixOf(want)
	}
	require.Equal(c.t, want, cols[col], "%s %s: no %s column for %s", table, where, want, key)
	require.Equal(c.t, canonical(v), canonical(row[col]), "%s %s: %s in column %s", table, where, key, col)
	for other := range cols {
		if other != col && (other == key || strings.HasPrefix(other, key+"__")) {
			require.Nil(c.t, row[other], "%s %s: %s's value also in %s", table, where, key, other)
		}
	}
}

// sqlTypeOf is the column type SPEC 5 gives a JSON value.
func sqlTypeOf(v any) string {
	switch v := v.(type) {
	case string:
		return "text"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return "bigint"
		}
		if _, ok := new(big.Int).SetString(v.String(), 10); ok {
			return "numeric"
		}
		return "double precision"
	}
	return fmt.Sprintf("%T", v)
}

// canonical makes equal values compare equal whatever their JSON spelling
// (1.5 and 1.50, 1e2 and 100).
func canonical(v any) string {
	if n, ok := v.(json.Number); ok {
		if f, ok := new(big.Float).SetPrec(200).SetString(n.String()); ok {
			return f.Text('g', 60)
		}
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	return buf.String()
}
