package postgres

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cioloader/cioloader/internal/stitch"
)

// column is one array parameter of an INSERT … SELECT FROM unnest(…): a whole
// batch's values for one column in a single bind parameter, so the statement
// text depends only on the table's shape and is prepared once per connection.
type column struct {
	name string // quoted target column
	cast string // array type of the parameter
	conv string // conversion applied in the select list ("" or "::jsonb" …)
	vals any    // []pgtype.Text, []pgtype.Int8, []pgtype.Float8, []pgtype.Bool, []pgtype.Timestamptz
	// hidden columns are unnested (as u.cN) but not inserted as themselves;
	// extra expressions use them.
	hidden bool
}

// userColumn makes the array for a Stitch-typed column with n rows.
func userColumn(name string, t stitch.ColType, n int) *column {
	c := &column{name: ident(name)}
	switch t {
	case stitch.BigInt:
		c.cast, c.vals = "bigint[]", make([]pgtype.Int8, n)
	case stitch.Double:
		c.cast, c.vals = "float8[]", make([]pgtype.Float8, n)
	case stitch.Boolean:
		c.cast, c.vals = "boolean[]", make([]pgtype.Bool, n)
	case stitch.Numeric:
		c.cast, c.conv, c.vals = "text[]", "::numeric", make([]pgtype.Text, n)
	default:
		c.cast, c.vals = "text[]", make([]pgtype.Text, n)
	}
	return c
}

func textColumn(name string, n int) *column {
	return &column{name: ident(name), cast: "text[]", vals: make([]pgtype.Text, n)}
}

func int8Column(name string, n int) *column {
	return &column{name: ident(name), cast: "bigint[]", vals: make([]pgtype.Int8, n)}
}

func timeColumn(name string, n int) *column {
	return &column{name: ident(name), cast: "timestamptz[]", vals: make([]pgtype.Timestamptz, n)}
}

// set stores v (a stitch Field value or a plain Go value) at row i.
func (c *column) set(i int, v any) {
	switch vals := c.vals.(type) {
	case []pgtype.Text:
		switch s := v.(type) {
		case string:
			vals[i] = pgtype.Text{String: s, Valid: true}
		case []byte:
			vals[i] = pgtype.Text{String: string(s), Valid: s != nil}
		}
	case []pgtype.Int8:
		if n, ok := v.(int64); ok {
			vals[i] = pgtype.Int8{Int64: n, Valid: true}
		}
	case []pgtype.Float8:
		if f, ok := v.(float64); ok {
			vals[i] = pgtype.Float8{Float64: f, Valid: true}
		}
	case []pgtype.Bool:
		if b, ok := v.(bool); ok {
			vals[i] = pgtype.Bool{Bool: b, Valid: true}
		}
	case []pgtype.Timestamptz:
		if t, ok := v.(time.Time); ok {
			vals[i] = pgtype.Timestamptz{Time: t, Valid: true}
		}
	}
}

// insertSQL renders INSERT INTO target (cols) SELECT … FROM unnest($1…) with
// extra (name, expression) pairs for constants, and returns the arguments.
// The caller appends ON CONFLICT / RETURNING.
func insertSQL(target string, cols []*column, extra [][2]string, firstParam int) (string, []any) {
	return insertSQLFrom(target, cols, extra, firstParam, "", "")
}

// insertSQLFrom is insertSQL with more FROM items after unnest (a LATERAL that
// parses a value once for several columns, a join) and an ORDER BY (see byKey).
// A statement of one row reads its values from one VALUES row of scalar
// parameters instead (see rowSource), and needs no ORDER BY.
func insertSQLFrom(target string, cols []*column, extra [][2]string, firstParam int, from, order string) (string, []any) {
	var names, selects []string
	for i, c := range cols {
		if !c.hidden {
			names = append(names, c.name)
			selects = append(selects, fmt.Sprintf("u.c%d%s", i, c.conv))
		}
	}
	for _, e := range extra {
		names = append(names, e[0])
		selects = append(selects, e[1])
	}
	if singleRow(cols) {
		order = ""
	}
	q := fmt.Sprintf("INSERT INTO %s AS t (%s) SELECT %s FROM %s%s%s",
		target, strings.Join(names, ", "), strings.Join(selects, ", "), rowSource(cols, firstParam), from, order)
	return q, insertArgs(cols)
}

// rowSource is the FROM item u(c0, c1, …) that yields the rows of cols, bound
// from parameter firstParam on: unnest of one array per column, or, for one
// row, a VALUES row of one scalar per column. Starting an unnest of a hundred
// arrays under the ORDER BY (a function scan and a sort, each with its tuple
// descriptor) was a tenth of Postgres's CPU when each transaction held one
// event (perf, c=1), and Postgres receives a hundred arrays of one element.
func rowSource(cols []*column, firstParam int) string {
	params, aliases := make([]string, len(cols)), make([]string, len(cols))
	single := singleRow(cols)
	for i, c := range cols {
		cast := c.cast
		if single {
			cast = strings.TrimSuffix(cast, "[]")
		}
		params[i], aliases[i] = fmt.Sprintf("$%d::%s", firstParam+i, cast), fmt.Sprintf("c%d", i)
	}
	if single {
		return fmt.Sprintf("(VALUES (%s)) AS u(%s)", strings.Join(params, ", "), strings.Join(aliases, ", "))
	}
	return fmt.Sprintf("unnest(%s) AS u(%s)", strings.Join(params, ", "), strings.Join(aliases, ", "))
}

// singleRow reports that cols hold one row: the statement then takes scalar
// parameters (rowSource, insertArgs), so its text is cached apart (textKey.single).
func singleRow(cols []*column) bool { return len(cols) > 0 && cols[0].rows() == 1 }

// insertArgs is insertSQLFrom's arguments alone (the text cached, see
// statementTexts): one array per column, or its one value (see rowSource).
func insertArgs(cols []*column) []any {
	args := make([]any, len(cols))
	single := singleRow(cols)
	for i, c := range cols {
		if single {
			args[i] = c.first()
		} else {
			args[i] = c.arg()
		}
	}
	return args
}

// byKey is the ORDER BY that makes an upsert take its row locks in key order,
// the order every statement of the writer keeps (see groupBySchema): u.c0 is
// the event_id, compared bytewise as Go's sort does, and u.c1…u.c<levels> are
// a subtable row's array indexes. Without it a join may emit rows in any
// order, and two transactions locking shared keys in different orders
// deadlock.
func byKey(levels int) string {
	parts := []string{`u.c0 COLLATE "C"`}
	for l := 1; l <= levels; l++ {
		parts = append(parts, fmt.Sprintf("u.c%d", l))
	}
	return " ORDER BY " + strings.Join(parts, ", ")
}

// setAll renders "a = EXCLUDED.a, …" for every named column.
func setAll(names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " = EXCLUDED." + n
	}
	return strings.Join(parts, ", ")
}

// rows is how many rows the column holds.
func (c *column) rows() int {
	switch v := c.vals.(type) {
	case []pgtype.Text:
		return len(v)
	case []pgtype.Int8:
		return len(v)
	case []pgtype.Float8:
		return len(v)
	case []pgtype.Bool:
		return len(v)
	case []pgtype.Timestamptz:
		return len(v)
	}
	return -1
}

// first is the column's first value, as a scalar parameter.
func (c *column) first() any {
	switch v := c.vals.(type) {
	case []pgtype.Text:
		return v[0]
	case []pgtype.Int8:
		return v[0]
	case []pgtype.Float8:
		return v[0]
	case []pgtype.Bool:
		return v[0]
	case []pgtype.Timestamptz:
		return v[0]
	}
	return nil
}

// arg is vals as a textParam (see textParamCodec) or a pgtype.FlatArray, which
// pgx encodes through its ArrayGetter path instead of wrapping an unknown
// slice type by reflection.
func (c *column) arg() any {
	switch v := c.vals.(type) {
	case []pgtype.Text:
		return textParam(v)
	case []pgtype.Int8:
		return pgtype.FlatArray[pgtype.Int8](v)
	case []pgtype.Float8:
		return pgtype.FlatArray[pgtype.Float8](v)
	case []pgtype.Bool:
		return pgtype.FlatArray[pgtype.Bool](v)
	case []pgtype.Timestamptz:
		return pgtype.FlatArray[pgtype.Timestamptz](v)
	}
	return c.vals
}
