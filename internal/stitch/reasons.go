package stitch

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/cioloader/cioloader/internal/naming"
)

// Problem reasons. Stitch's wording is kept where Stitch has one (collision,
// too long, reserved suffix); the others follow its style. Names in reasons
// are relative to Problem.Table, and are cut to maxReasonName bytes: keys come
// from the sender and may be megabytes long.

const maxReasonName = 200

func collisionReason(name string) string {
	return "Field collision on " + shorten(name)
}

func tooLongColumnReason(name string) string {
	return "Column name " + shorten(name) + " is too long for PostgreSQL"
}

func tooLongTableReason(name string) string {
	return "Table name " + shorten(name) + " is too long for PostgreSQL"
}

func tooManyKeysReason(n int) string {
	return "Event has more than " + strconv.Itoa(n) + " keys"
}

// reservedReason returns why name may not be used, or "" when it may.
func reservedReason(name string) string {
	switch {
	case naming.HasReservedPrefix(name):
		return "Column name " + shorten(name) + " uses a reserved prefix"
	case naming.HasReservedSuffix(name):
		return "column names from client should not include reserved datatype suffix: " + shorten(name)
	}
	return ""
}

func (f *flattener) tooDeepReason() string {
	return fmt.Sprintf("Key %s is nested deeper than %d levels", shorten(string(f.name)), f.lim.MaxDepth)
}

// emptyKeyReason names the raw key (quoted: it may hold anything) and where it
// sits, since its cleaned form is empty.
func (f *flattener) emptyKeyReason(key string) string {
	if len(f.name) == 0 {
		return fmt.Sprintf("Key %s has no characters usable in a column name", strconv.Quote(shorten(key)))
	}
	return fmt.Sprintf("Key %s under %s has no characters usable in a column name", strconv.Quote(shorten(key)), shorten(string(f.name)))
}

// unsupportedReason explains a scalar classify gave no type: a number beyond
// numeric's range, or a Go type the decoder never produces.
func (f *flattener) unsupportedReason(v any) string {
	name := shorten(string(f.name))
	if n, ok := v.(json.Number); ok {
		return fmt.Sprintf("Number %s for column %s is out of range for PostgreSQL", shorten(string(n)), name)
	}
	return fmt.Sprintf("Value for column %s has unsupported type %T", name, v)
}

// shorten cuts s to maxReasonName bytes at a character boundary.
func shorten(s string) string {
	if len(s) <= maxReasonName {
		return s
	}
	cut := maxReasonName
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
