// Package naming derives Postgres identifiers the way Stitch does: an
// integration's schema name from the name an admin gives it, and column-name
// segments from JSON keys. It is pure and imports only the standard library.
//
// Every name it returns is ASCII ([a-z0-9_] for schemas, [A-Za-z0-9_] for
// columns), so byte length equals character length and any cut is clean.
package naming

import (
	"fmt"
	"strings"
)

const (
	// MaxColumnBytes bounds a data column name: Postgres's 63-byte identifier
	// limit minus 4, which leaves room for a "__xx" type-split suffix.
	MaxColumnBytes = 59
	// MaxTableBytes is Postgres's identifier limit (NAMEDATALEN-1). Names are
	// never left to Postgres's silent truncation.
	MaxTableBytes = 63
	// maxSchemaBytes is the same identifier limit, applied to schema names.
	maxSchemaBytes = 63
)

// reservedSchemas are schema names an integration may not take: Postgres's
// own and cioloader's control schema. Names starting "pg_" are refused too.
var reservedSchemas = map[string]bool{
	"public":             true,
	"information_schema": true,
	"cioloader":          true,
}

// SchemaName derives an integration's schema name (SPEC 2): lower-case;
// remove '.', '(' and ')'; every run of other characters outside [a-z0-9_]
// becomes one '_'; trim leading and trailing '_'; cut to 63 bytes and trim
// again. Lower-casing comes first and is Unicode-aware, so non-ASCII letters
// are "other characters" (they become '_'). The result is stable for a given
// name, which is what lets the schema never change.
//
// It refuses, with a message a person can act on, a name whose schema would be
// empty, start with a digit, or be reserved (public, information_schema,
// cioloader, pg_*).
func SchemaName(name string) (string, error) {
	s := strings.Trim(schemaChars(name), "_")
	if len(s) > maxSchemaBytes {
		s = strings.TrimRight(s[:maxSchemaBytes], "_")
	}
	switch {
	case s == "":
		return "", fmt.Errorf("integration name %q gives an empty schema name: it needs at least one letter a-z or digit", name)
	case s[0] >= '0' && s[0] <= '9':
		return "", fmt.Errorf("integration name %q gives schema %q which starts with a digit: start the name with a letter", name, s)
	case reservedSchemas[s] || strings.HasPrefix(s, "pg_"):
		return "", fmt.Errorf("schema name %q is reserved: choose another integration name", s)
	}
	return s, nil
}

// schemaChars applies the character rules of SchemaName, before trimming.
// Removed characters ('.', '(', ')') are transparent: "a . b" gives "a_b".
func schemaChars(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	inRun := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r == '.' || r == '(' || r == ')':
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_':
			b.WriteRune(r)
			inRun = false
		case !inRun:
			b.WriteByte('_')
			inRun = true
		}
	}
	return b.String()
}

// Segment cleans one JSON key for use in a column name (SPEC 5): it removes
// every character outside [A-Za-z0-9_] (so every byte of a multibyte
// character), keeps case, and strips leading characters that are not letters
// or '_' ("123customerid" → "customerid", "_987ID" stays). The result may be
// empty: such a key can't be named. A key that is already clean is returned
// as is, without allocating.
func Segment(key string) string {
	if isCleanSegment(key) {
		return key
	}
	return string(AppendSegment(make([]byte, 0, len(key)), key))
}

// AppendSegment appends Segment(key) to dst and returns the extended buffer,
// so callers building longer names need not allocate the segment on its own.
func AppendSegment(dst []byte, key string) []byte {
	start := len(dst)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !isWordByte(c) || len(dst) == start && isDigit(c) {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// isCleanSegment reports whether Segment would return key unchanged.
func isCleanSegment(key string) bool {
	if key == "" || isDigit(key[0]) {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !isWordByte(key[i]) {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '_'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// reservedSuffixes are Stitch's type-split suffixes for Postgres ("__fl" is
// reserved for other destinations, and reserved here as well). A source name
// may not end with one, so it can never collide with a split column.
var reservedSuffixes = [...]string{"__bi", "__bo", "__de", "__do", "__fl", "__it", "__st", "__ti"}

// IsReservedColumn reports whether name is reserved for the loader: it starts
// with _sdc or _rjm, or ends with a type suffix. Postgres compares quoted
// identifiers case-sensitively, so only these exact lower-case forms can clash
// with system or split columns; "_SDC_x" is an ordinary name.
func IsReservedColumn(name string) bool {
	return HasReservedPrefix(name) || HasReservedSuffix(name)
}

// HasReservedPrefix reports whether name starts with _sdc or _rjm.
func HasReservedPrefix(name string) bool {
	return strings.HasPrefix(name, "_sdc") || strings.HasPrefix(name, "_rjm")
}

// HasReservedSuffix reports whether name ends with a type suffix such as "__st".
func HasReservedSuffix(name string) bool {
	if len(name) < 4 || name[len(name)-4] != '_' || name[len(name)-3] != '_' {
		return false
	}
	tail := name[len(name)-4:]
	for _, s := range reservedSuffixes {
		if tail == s {
			return true
		}
	}
	return false
}
