package stitch

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/cioloader/cioloader/internal/naming"
)

// Flatten maps one event (decoded with json.Decoder.UseNumber, so values are
// map[string]any, []any, string, json.Number, bool or nil) to Stitch rows
// (SPEC 5). The output depends only on the event's content: map keys are
// visited in sorted order, so "first" in a collision is well defined.
//
//   - The top-level key "event_id" is skipped: the writer fills that column
//     from the validated id, and no other key may claim the name.
//   - Objects flatten into the same row, their cleaned key segments joined by
//     "__" (data.identifiers.email → data__identifiers__email). Empty objects
//     and nulls produce nothing.
//   - A non-empty array becomes subtable parentTable+"__"+name, one row per
//     element with Levels = parent levels + the 0-based index. Object
//     elements flatten inside that row (names relative to the subtable);
//     other elements are the field "value" (an array element becomes
//     subtable+"__value"). Every element makes a row, a null one too, so the
//     level ids always match the array's indexes.
//   - Depth counts name segments from the top, "value" included
//     (data.identifiers.email is 3; data.tags[i] is data.tags.value, 3).
//     A subtree deeper than MaxDepth is skipped with one Problem.
//   - MaxKeys bounds the units one event produces: each field, subtable row
//     and Problem counts one. Past it the rest is skipped with one Problem.
//
// A value that can't be mapped (name empty after cleaning, over 59 bytes,
// reserved, already claimed in the row, subtable name over 63 bytes, or a
// number no Postgres type holds) is skipped with a Problem whose Reason uses
// Stitch's wording where it has one.
func Flatten(event map[string]any, lim Limits) Result {
	f := getFlattener(lim)
	defer putFlattener(f)
	f.addTable("data", 0, -1)
	f.beginRow(0, 0, 0)
	f.claims.add("event_id")
	f.object(event, 0, true)
	f.endRow()
	// Arrays are expanded breadth first, after the row that holds them, so
	// every row is built whole (contiguous fields, one claim set at a time).
	for i := 0; i < len(f.queue) && !f.over; i++ {
		f.expand(f.queue[i])
	}
	return f.result()
}

// object flattens obj into the current row under the name prefix in f.name.
// depth is obj's own depth; its keys are at depth+1.
func (f *flattener) object(obj map[string]any, depth int, root bool) {
	base := len(f.keys)
	for k := range obj {
		f.keys = append(f.keys, k)
	}
	keys := f.keys[base:]
	slices.Sort(keys)
	for _, k := range keys {
		if f.over {
			break
		}
		if root && k == "event_id" {
			continue
		}
		f.member(k, obj[k], depth+1)
	}
	clear(f.keys[base:])
	f.keys = f.keys[:base]
}

// member maps one key (at depth) and its value into the current row.
func (f *flattener) member(key string, v any, depth int) {
	if v == nil {
		return // null never creates a column
	}
	prefix := len(f.name)
	if !f.pushSegment(key) {
		if hasContent(v) {
			f.problem(f.emptyKeyReason(key))
		}
		return
	}
	// Cleaning only removes bytes: a shorter segment, or a key holding the
	// separator, means the name no longer spells the path unambiguously.
	seg := len(f.name) - prefix
	if prefix > 0 {
		seg -= 2
	}
	alt := seg != len(key) || strings.Contains(key, "__")
	f.path = append(f.path, key)
	if alt {
		f.altered++
	}
	if depth > f.lim.MaxDepth {
		if hasContent(v) {
			f.problem(f.tooDeepReason())
		}
	} else {
		f.value(v, depth)
	}
	if alt {
		f.altered--
	}
	f.path = f.path[:len(f.path)-1]
	f.name = f.name[:prefix]
}

// source is Field.Source for the current name.
func (f *flattener) source() string {
	if f.altered == 0 {
		return ""
	}
	return strings.Join(f.path, ".")
}

// value maps v, whose name is in f.name, at depth.
func (f *flattener) value(v any, depth int) {
	switch v := v.(type) {
	case map[string]any:
		f.object(v, depth, false)
	case []any:
		if len(v) > 0 {
			f.arrayMember(v, depth)
		}
	default:
		f.leaf(v)
	}
}

// pushSegment appends the cleaned key (naming.Segment) to the name being
// built, after "__" unless it is the first segment. It returns false, leaving
// the name as it was, when the key cleans to nothing.
func (f *flattener) pushSegment(key string) bool {
	prefix := len(f.name)
	if prefix > 0 {
		f.name = append(f.name, "__"...)
	}
	start := len(f.name)
	f.name = naming.AppendSegment(f.name, key)
	if len(f.name) == start {
		f.name = f.name[:prefix]
		return false
	}
	// Cleaning only removes bytes, so an unchanged length means the key was
	// already clean: a one-segment name is then the key itself.
	f.nameKey = ""
	if prefix == 0 && len(f.name) == len(key) {
		f.nameKey = key
	}
	return true
}

// nameString returns the name being built as a string, without allocating
// for a one-segment name or a name seen in a recent event.
func (f *flattener) nameString() string {
	if f.nameKey != "" && string(f.name) == f.nameKey {
		return f.nameKey
	}
	return f.intern(f.name)
}

// leaf maps a scalar to a field of the current row, or reports why it can't.
func (f *flattener) leaf(v any) {
	t, val := classify(v)
	if t == 0 {
		f.problem(f.unsupportedReason(v))
		return
	}
	if len(f.name) > naming.MaxColumnBytes {
		f.problem(tooLongColumnReason(string(f.name)))
		return
	}
	name := f.nameString()
	if reason := reservedReason(name); reason != "" {
		f.problem(reason)
		return
	}
	if !f.claims.add(name) {
		f.problem(collisionReason(name))
		return
	}
	if f.spend() {
		f.fields = append(f.fields, Field{Name: name, Type: t, Value: val, Source: f.source()})
	}
}

// classify gives a scalar's column type and value; 0 when none fits. Strings,
// booleans and floats are returned as the interface value they came in, since
// boxing them again would allocate.
func classify(v any) (ColType, any) {
	switch n := v.(type) {
	case string:
		return Text, v
	case json.Number:
		return ClassifyNumber(n)
	case bool:
		return Boolean, v
	case float64: // not from UseNumber; accepted as the double it already is
		return Double, v
	}
	return 0, nil
}

// arrayMember claims the array's name in the current row and queues it for
// expansion into its subtable, or reports why it can't.
func (f *flattener) arrayMember(arr []any, depth int) {
	parent := f.tables[f.cur.table].name
	if len(parent)+2+len(f.name) > naming.MaxTableBytes {
		f.problem(tooLongTableReason(parent + "__" + string(f.name)))
		return
	}
	rel := f.nameString()
	if reason := reservedReason(rel); reason != "" {
		f.problem(reason)
		return
	}
	if !f.claims.add(rel) {
		f.problem(collisionReason(rel))
		return
	}
	f.tname = append(append(append(f.tname[:0], parent...), "__"...), f.name...)
	full := f.intern(f.tname)
	pt := f.tables[f.cur.table]
	path := strings.Join(f.path, ".")
	if pt.path != "" {
		path = pt.path + "." + path
	}
	altered := pt.altered || f.altered > 0
	ti, ok := f.subtable(full, len(parent), f.cur.table)
	if ok && f.tables[ti].path == "" { // made just now
		f.tables[ti].path, f.tables[ti].altered = path, altered
	} else if ok && f.tables[ti].path != path {
		ok = false // another key path already made this table in this event
	}
	if !ok {
		f.problem(collisionReason(full))
		return
	}
	f.queue = append(f.queue, pending{table: ti, elems: arr, depth: depth, l0: f.cur.l0, l1: f.cur.l1})
}

// expand makes one row per element of a queued array.
func (f *flattener) expand(p pending) {
	for i, el := range p.elems {
		l0 := len(f.levels)
		f.levels = append(f.levels, f.levels[p.l0:p.l1]...)
		f.levels = append(f.levels, int64(i))
		f.beginRow(p.table, l0, len(f.levels))
		if !f.spend() { // the row counts as a unit; refused, it is never recorded
			return
		}
		if obj, ok := el.(map[string]any); ok {
			f.object(obj, p.depth, false)
		} else {
			f.member("value", el, p.depth+1)
		}
		f.endRow()
	}
}

// hasContent reports whether skipping v loses anything: a non-null scalar, a
// non-empty array (its elements make rows), or an object holding either.
func hasContent(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		for _, c := range v {
			if hasContent(c) {
				return true
			}
		}
		return false
	case []any:
		return len(v) > 0
	}
	return true
}

// spend counts one unit against MaxKeys. The first refusal records the one
// "too many keys" Problem and stops the walk.
func (f *flattener) spend() bool {
	if f.over {
		return false
	}
	if f.spent >= f.lim.MaxKeys {
		f.over = true
		f.problems = append(f.problems, Problem{Table: f.tables[f.cur.table].name, Reason: tooManyKeysReason(f.lim.MaxKeys)})
		return false
	}
	f.spent++
	return true
}

// problem records an unmapped value in the current table; it counts as a unit.
func (f *flattener) problem(reason string) {
	if f.spend() {
		f.problems = append(f.problems, Problem{Table: f.tables[f.cur.table].name, Reason: reason})
	}
}
