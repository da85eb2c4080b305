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
		checkName(t, tb.Name, naming.MaxTableBytes)
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
		checkName(t, p.Table, naming.MaxTableBytes)
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
			checkName(t, f.Name, naming.MaxColumnBytes)
			require.False(t, tb.Depth == 0 && f.Name == "event_id")
			if i > 0 {
				require.NotEqual(t, row.Fields[i-1].Name, f.Name, "duplicate field")
			}
			checkValue(t, f)
		}
	}
}

func checkName(t testing.TB, name string, max int) {
	t.Helper()
	require.True(t, utf8.ValidString(name))
	require.Regexp(t, identPattern, name)
	require.LessOrEqual(t, len(name), max, name)
	require.False(t, naming.IsReservedColumn(name), name)
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
