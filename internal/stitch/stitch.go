// Package stitch flattens one decoded Customer.io event into rows laid out the
// way Stitch loads JSON into PostgreSQL (SPEC 5): objects become "__"-joined
// columns of the same row, arrays become subtables keyed by level ids, and
// each value's column type follows its JSON type.
//
// It is pure (standard library only) and does no I/O: it decides names, types
// and rows; the writer decides which physical columns exist (see Resolve).
// Whatever cannot be mapped is reported as a Problem and is otherwise skipped;
// the writer keeps the whole event as raw JSON, so nothing is lost.
package stitch

// ColType is the Postgres type of a data column. The zero value is no type.
type ColType uint8

// The five column types Stitch produces for schemaless JSON. Stitch's integer
// and timestamp types are never produced: JSON has no such distinction, and
// ISO-8601 strings stay text.
const (
	Text ColType = iota + 1
	BigInt
	Numeric
	Double
	Boolean
)

// SQL returns the Postgres type name, or "" for the zero ColType.
func (t ColType) SQL() string {
	switch t {
	case Text:
		return "text"
	case BigInt:
		return "bigint"
	case Numeric:
		return "numeric"
	case Double:
		return "double precision"
	case Boolean:
		return "boolean"
	}
	return ""
}

// Suffix returns Stitch's type-split suffix (without the "__"), or "".
func (t ColType) Suffix() string {
	switch t {
	case Text:
		return "st"
	case BigInt:
		return "bi"
	case Numeric:
		return "de"
	case Double:
		return "do"
	case Boolean:
		return "bo"
	}
	return ""
}

// String returns the SQL type name, for messages and test output.
func (t ColType) String() string { return t.SQL() }

// Field is one value of a row, named by its base column (before any type
// split; see Resolve).
type Field struct {
	Name  string  // e.g. "data__customer_id"; relative to its table in subtables
	Type  ColType // never zero
	Value any     // Text: string; BigInt: int64; Numeric: string (the exact JSON literal); Double: float64; Boolean: bool
	// Source is the key path (keys joined by ".", relative like Name) when
	// Name does not spell it unambiguously: a key lost characters to
	// cleaning, or holds "__" itself. It is "" when Name is the path's own
	// rendering. Two fields with one Name and different Sources come from
	// different keys: the writer lets the first one keep the column.
	Source string
}

// Row is one row of a table.
type Row struct {
	Levels []int64 // _sdc_level_0_id, _sdc_level_1_id, …; nil for the top-level row
	Fields []Field // sorted by Name; names are unique within a row; nil when none
}

// Table is one destination table and the rows this event gives it.
type Table struct {
	Name  string // "data", or e.g. "data__data__recipients" for push data.recipients
	Depth int    // number of level ids each row carries (0 for "data")
	Rows  []Row
	// Source is the array's full key path (keys joined by ".") when Name does
	// not spell it unambiguously, as Field.Source; "" otherwise.
	Source string
}

// Problem is a value that could not be mapped to a column or table. The value
// is skipped; it still lives in the event's raw JSON copy.
type Problem struct {
	Table  string // a valid table name: where the value would have gone, or its parent when the subtable itself is refused
	Reason string // Stitch's wording where it has one, e.g. "Field collision on X"
}

// Limits bounds the work one event can cause. The values come from the
// caller (internal/config holds the defaults). A zero bound maps nothing past
// it: with MaxDepth 0 no key becomes a column, with MaxKeys 0 the first unit
// is already over; the event is still kept whole as raw JSON by the writer.
type Limits struct {
	MaxDepth int // deepest key path mapped, counted in path segments from the top
	MaxKeys  int // most units written per event: fields, subtable rows and problems
}

// Result is one event, flattened.
type Result struct {
	Tables   []Table   // Tables[0] is "data" with exactly one row; then subtables sorted by name, only those with rows
	Problems []Problem // every value that could not be mapped, in a deterministic order
}

// Resolve picks the physical column for a base name and type, given the
// columns a table already has (existing maps column name to type). This is the
// Stitch type split without renaming (SPEC 5): the first type keeps the bare
// name; every other type goes to base+"__"+suffix. isNew reports that the
// returned column is absent from existing and must be added.
//
// Only the split path allocates; the common case (the column exists with the
// same type) does not.
func Resolve(existing map[string]ColType, base string, t ColType) (column string, isNew bool) {
	have, ok := existing[base]
	if !ok {
		return base, true
	}
	if have == t {
		return base, false
	}
	column = base + "__" + t.Suffix()
	_, ok = existing[column]
	return column, !ok
}
