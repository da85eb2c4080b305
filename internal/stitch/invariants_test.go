package stitch

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/naming"
)

var identPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// checkInvariants asserts what the writer relies on, for any input: valid,
// bounded, unreserved names; unique sorted fields; Levels matching Depth and
// unique per table; values typed as their ColType says.
func checkInvariants(t testing.TB, r Result) {
	t.Helper()
	require.NotEmpty(t, r.Tables)
	top := r.Tables[0]
	require.Equal(t, "data", top.Name)
	require.Zero(t, top.Depth)
	require.Len(t, top.Rows, 1)
	require.Nil(t, top.Rows[0].Levels)
	names := map[string]bool{}
	for i, tb := range r.Tables {
		checkTableName(t, tb.Name)
		require.False(t, names[tb.Name], "duplicate table %s", tb.Name)
		names[tb.Name] = true
		if i > 0 {
			require.True(t, strings.HasPrefix(tb.Name, "data__"), tb.Name)
			require.Less(t, r.Tables[i-1].Name, tb.Name, "subtables sorted")
			require.NotEmpty(t, tb.Rows, "tables without rows are left out")
		}
		checkRows(t, tb)
	}
	for _, p := range r.Problems {
		checkTableName(t, p.Table)
		require.NotEmpty(t, p.Reason)
		require.True(t, utf8.ValidString(p.Reason))
	}
}

func checkRows(t testing.TB, tb Table) {
	t.Helper()
	keys := map[string]bool{}
	for _, row := range tb.Rows {
		require.Len(t, row.Levels, tb.Depth, tb.Name)
		k := fmt.Sprint(row.Levels)
		require.False(t, keys[k], "duplicate levels %s in %s", k, tb.Name)
		keys[k] = true
		require.True(t, slices.IsSortedFunc(row.Fields, compareFields))
		for i, f := range row.Fields {
			checkIdent(t, f.Name, naming.MaxColumnBytes)
			require.False(t, naming.IsReservedColumn(f.Name), f.Name)
			require.False(t, tb.Depth == 0 && f.Name == "event_id")
			if i > 0 {
				require.NotEqual(t, row.Fields[i-1].Name, f.Name, "duplicate field")
			}
			checkValue(t, f)
		}
	}
}

// checkTableName: Stitch reserves the _sdc/_rjm prefixes for table names too,
// but the type suffixes only end column names, so "data__bi" is a fine table.
func checkTableName(t testing.TB, name string) {
	t.Helper()
	checkIdent(t, name, naming.MaxTableBytes)
	require.False(t, naming.HasReservedPrefix(name), name)
}

func checkIdent(t testing.TB, name string, max int) {
	t.Helper()
	require.True(t, utf8.ValidString(name))
	require.Regexp(t, identPattern, name)
	require.LessOrEqual(t, len(name), max, name)
}

func checkValue(t testing.TB, f Field) {
	t.Helper()
	var ok bool
	switch f.Type {
	case Text, Numeric:
		_, ok = f.Value.(string)
	case BigInt:
		_, ok = f.Value.(int64)
	case Double:
		_, ok = f.Value.(float64)
	case Boolean:
		_, ok = f.Value.(bool)
	}
	require.True(t, ok, "%s: %T for %s", f.Name, f.Value, f.Type)
}
