package stitch

import (
	"slices"
	"strings"
	"sync"

	"github.com/cioloader/cioloader/internal/naming"
)

// flattener is the working state of one Flatten call. It is pooled: its
// buffers are reused across events, and the Result is copied out of them into
// exactly sized slices, so nothing returned aliases pooled memory.
type flattener struct {
	lim   Limits
	spent int  // units counted against MaxKeys
	over  bool // MaxKeys reached and reported

	name    []byte            // the current row-relative column name being built
	nameKey string            // set when name is exactly one segment: that string
	tname   []byte            // scratch for a subtable's full name
	names   map[string]string // interned names from recent events; survives pooling
	keys    []string          // stack of sorted key frames, one per open object
	path    []string          // raw keys from the row to the current name
	altered int               // how many of them the name does not spell as they are
	claims  claimSet          // names claimed in the current row

	cur      rowSpan    // the row being built
	fields   []Field    // every row's fields, row after row
	levels   []int64    // every row's level ids, row after row
	rows     []rowSpan  // finished rows, in creation order
	tables   []tableDef // tables in creation order; [0] is "data"
	tableIdx map[string]int
	queue    []pending // arrays waiting to be expanded, first in first out
	problems []Problem
	order    []int // scratch for result: table indexes in output order
	next     []int // scratch for result: next row slot per table
}

// rowSpan locates one row's fields and level ids in the shared buffers.
type rowSpan struct {
	table  int
	f0, f1 int
	l0, l1 int
}

// tableDef is a table this event uses. parentLen is the length of its parent
// table's name, a prefix of name: two arrays reaching the same name from
// different parents would mix unrelated rows, so the second one is refused.
type tableDef struct {
	name      string
	parentLen int
	depth     int
	rows      int
	path      string // raw key path from the top ("" for data)
	altered   bool   // the name does not spell path unambiguously
}

// pending is an array queued for expansion into table, under the parent row
// whose level ids are levels[l0:l1]. depth is the array's own depth.
type pending struct {
	table  int
	elems  []any
	depth  int
	l0, l1 int
}

var flatteners = sync.Pool{New: func() any { return new(flattener) }}

// maxPooled caps the buffers kept for reuse, so one huge event does not pin
// its memory in the pool for the life of the process.
const maxPooled = 1 << 12

func getFlattener(lim Limits) *flattener {
	f := flatteners.Get().(*flattener)
	f.lim = lim
	return f
}

// putFlattener drops every reference into the event and returns f to the pool.
func putFlattener(f *flattener) {
	if cap(f.fields) > maxPooled || cap(f.keys) > maxPooled || cap(f.name) > maxPooled ||
		cap(f.levels) > maxPooled || cap(f.queue) > maxPooled || len(f.tables) > maxPooled ||
		cap(f.claims.names) > maxPooled {
		return
	}
	clear(f.fields)
	clear(f.tables)
	clear(f.queue)
	clear(f.problems)
	clear(f.tableIdx)
	f.claims.reset()
	*f = flattener{
		name: f.name[:0], tname: f.tname[:0], names: f.names, keys: f.keys[:0], claims: f.claims,
		fields: f.fields[:0], levels: f.levels[:0], rows: f.rows[:0], tables: f.tables[:0], tableIdx: f.tableIdx,
		queue: f.queue[:0], problems: f.problems[:0], order: f.order[:0], next: f.next[:0],
	}
	flatteners.Put(f)
}

// maxInterned bounds the intern table; it is emptied when full, which keeps
// memory bounded when senders vary their keys.
const maxInterned = 2048

// intern returns b as a string, reusing the string from an earlier event when
// there is one: the same column names recur in every event of a kind. Only
// identifiers (at most 63 bytes) are interned.
func (f *flattener) intern(b []byte) string {
	if len(b) > naming.MaxTableBytes {
		return string(b)
	}
	if s, ok := f.names[string(b)]; ok {
		return s
	}
	if f.names == nil || len(f.names) >= maxInterned {
		f.names = make(map[string]string, 64)
	}
	s := string(b)
	f.names[s] = s
	return s
}

// addTable registers a table and returns its index.
func (f *flattener) addTable(name string, parentLen, parent int) int {
	depth := 0
	if parent >= 0 {
		depth = f.tables[parent].depth + 1
	}
	f.tables = append(f.tables, tableDef{name: name, parentLen: parentLen, depth: depth})
	if len(f.tableIdx) > 0 {
		f.tableIdx[name] = len(f.tables) - 1
	}
	return len(f.tables) - 1
}

// linearTables is how many tables are searched by scanning before an index
// map is built: events rarely have more than a handful of arrays.
const linearTables = 8

// subtable finds or registers the table full, a child of table parent whose
// name is full[:parentLen]. ok is false when full is already taken by an
// array under a different parent.
func (f *flattener) subtable(full string, parentLen, parent int) (idx int, ok bool) {
	idx = f.findTable(full)
	if idx < 0 {
		return f.addTable(full, parentLen, parent), true
	}
	return idx, f.tables[idx].parentLen == parentLen
}

func (f *flattener) findTable(name string) int {
	if len(f.tables) <= linearTables {
		return slices.IndexFunc(f.tables, func(t tableDef) bool { return t.name == name })
	}
	if len(f.tableIdx) == 0 {
		if f.tableIdx == nil {
			f.tableIdx = make(map[string]int, 2*linearTables)
		}
		for i, t := range f.tables {
			f.tableIdx[t.name] = i
		}
	}
	if i, ok := f.tableIdx[name]; ok {
		return i
	}
	return -1
}

// beginRow starts a row of table whose level ids are levels[l0:l1].
func (f *flattener) beginRow(table, l0, l1 int) {
	f.cur = rowSpan{table: table, f0: len(f.fields), l0: l0, l1: l1}
	f.claims.reset()
	f.name = f.name[:0]
	f.nameKey = ""
}

// endRow sorts the row's fields by name and records the row.
func (f *flattener) endRow() {
	f.cur.f1 = len(f.fields)
	row := f.fields[f.cur.f0:f.cur.f1]
	if !slices.IsSortedFunc(row, compareFields) {
		slices.SortFunc(row, compareFields)
	}
	f.rows = append(f.rows, f.cur)
	f.tables[f.cur.table].rows++
}

func compareFields(a, b Field) int { return strings.Compare(a.Name, b.Name) }

// result copies the rows out of the pooled buffers: one allocation each for
// all fields, all level ids and all rows. Tables keep "data" first, then
// subtables sorted by name, dropping any that got no rows.
func (f *flattener) result() Result {
	fields := slices.Clone(f.fields) // rows without fields keep nil, whatever the pool held
	var levels []int64
	if len(f.levels) > 0 {
		levels = slices.Clone(f.levels)
	}
	order := f.tableOrder()
	tables := make([]Table, len(order))
	next := slices.Grow(f.next[:0], len(f.tables))[:len(f.tables)] // next free slot in rows, per table
	f.next = next
	offset := 0
	for i, ti := range order {
		t := f.tables[ti]
		tables[i] = Table{Name: t.name, Depth: t.depth}
		if t.altered {
			tables[i].Source = t.path
		}
		next[ti] = offset
		offset += t.rows
	}
	rows := make([]Row, offset)
	for _, r := range f.rows {
		var row Row
		if r.f1 > r.f0 {
			row.Fields = fields[r.f0:r.f1:r.f1]
		}
		if r.l1 > r.l0 {
			row.Levels = levels[r.l0:r.l1:r.l1]
		}
		rows[next[r.table]] = row
		next[r.table]++
	}
	for i, ti := range order {
		end := next[ti]
		tables[i].Rows = rows[end-f.tables[ti].rows : end : end]
	}
	var problems []Problem
	if len(f.problems) > 0 {
		problems = slices.Clone(f.problems)
	}
	return Result{Tables: tables, Problems: problems}
}

// tableOrder lists the indexes of tables with rows: "data" first, then the
// subtables by name (parents before children, whatever the walk order was).
func (f *flattener) tableOrder() []int {
	order := f.order[:0]
	for i, t := range f.tables {
		if t.rows > 0 {
			order = append(order, i)
		}
	}
	slices.SortFunc(order[1:], func(a, b int) int { return strings.Compare(f.tables[a].name, f.tables[b].name) })
	f.order = order
	return order
}

// claimSet holds the names claimed in one row: fields and arrays alike, since
// two keys that clean to the same name collide whatever their values are.
// Rows are usually small, so a scan beats a map until linearClaims names.
type claimSet struct {
	names []string
	m     map[string]struct{}
}

const linearClaims = 32

// add claims name; false means another key already holds it.
func (c *claimSet) add(name string) bool {
	if len(c.names) < linearClaims {
		if slices.Contains(c.names, name) {
			return false
		}
		c.names = append(c.names, name)
		return true
	}
	if len(c.m) == 0 {
		if c.m == nil {
			c.m = make(map[string]struct{}, 4*linearClaims)
		}
		for _, n := range c.names {
			c.m[n] = struct{}{}
		}
	}
	if _, ok := c.m[name]; ok {
		return false
	}
	c.m[name] = struct{}{}
	c.names = append(c.names, name)
	return true
}

func (c *claimSet) reset() {
	clear(c.names)
	c.names = c.names[:0]
	if len(c.m) > 0 {
		clear(c.m)
	}
}
