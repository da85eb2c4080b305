package warehouse

import (
	"encoding/json"
	"slices"
	"strings"
)

// Source says where a column's value is read from in a RudderStack event.
type Source string

// The sources of a column's value.
const (
	FromProperties  Source = "properties"
	FromContext     Source = "context"
	FromUserID      Source = "userId"
	FromAnonymousID Source = "anonymousId"
)

// Column is one column a track event gives its rows: its name, where its value
// is (Source and the keys under it), and the type RudderStack gives that value.
type Column struct {
	Name   string
	Source Source
	Path   []string
	Type   Type
}

// reservedTrackColumns are the columns RudderStack fills itself in a track's rows;
// a property or context value that would land in one of them is dropped. (Its
// rules fill context_ip and context_request_ip from the request; channel and
// record_id do not apply to a webhook source.)
var reservedTrackColumns = map[string]bool{
	"id": true, "anonymous_id": true, "user_id": true, "sent_at": true, "timestamp": true,
	"received_at": true, "original_timestamp": true, "channel": true, "context_ip": true,
	"context_request_ip": true, "context_passed_ip": true, "event_text": true, "record_id": true,
}

// Columns lists the columns one track event gives: its context's under context_
// (for tracks and the event's table) and its properties' (for the event's table
// only), each flattened the way RudderStack flattens them: nested objects key by
// key at any depth, the raw keys joined by "_" and then named by ColumnName;
// arrays kept whole (typed string, their JSON text); null, "" and empty arrays
// left out. Keys are visited in byte order, so when two paths name one column the
// later one is the one RudderStack keeps; Columns lists both, in that order.
// Values are what encoding/json decodes (numbers as json.Number or float64).
func Columns(properties, context map[string]any) (ctx, props []Column) {
	var n Namer
	return n.Columns(properties, context)
}

// Namer is Columns with the column names it has computed remembered, for a caller
// that flattens many events of the same shapes. The zero value is ready; it is not
// safe for concurrent use.
type Namer struct {
	names map[string]string
}

// Columns is the package's Columns.
func (n *Namer) Columns(properties, context map[string]any) (ctx, props []Column) {
	ctx = n.flatten(nil, FromContext, "context_", nil, context)
	props = n.flatten(nil, FromProperties, "", nil, properties)
	return ctx, props
}

// maxRemembered bounds a Namer's memory: past it, it starts afresh.
const maxRemembered = 10000

// name is ColumnName(joined), remembered.
func (n *Namer) name(joined string) string {
	if name, ok := n.names[joined]; ok {
		return name
	}
	if n.names == nil || len(n.names) >= maxRemembered {
		n.names = map[string]string{}
	}
	name := ColumnName(joined)
	n.names[joined] = name
	return name
}

// IDColumn is the column of a userId or anonymousId (FromUserID, FromAnonymousID),
// typed as RudderStack types it; false when the event has none.
func IDColumn(src Source, v any) (Column, bool) {
	if _, isArray := v.([]any); isArray || isEmpty(v) || isObject(v) {
		return Column{}, false
	}
	name := "user_id"
	if src == FromAnonymousID {
		name = "anonymous_id"
	}
	return Column{Name: name, Source: src, Type: TypeOf(v)}, true
}

func (n *Namer) flatten(out []Column, src Source, prefix string, path []string, obj map[string]any) []Column {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := obj[k]
		if isEmpty(v) {
			continue
		}
		p := append(slices.Clip(path), k)
		if m, ok := v.(map[string]any); ok {
			out = n.flatten(out, src, prefix+k+"_", p, m)
			continue
		}
		name := n.name(prefix + k)
		if name == "" || reservedTrackColumns[name] {
			continue
		}
		out = append(out, Column{Name: name, Source: src, Path: p, Type: TypeOf(v)})
	}
	return out
}

// Blank reports whether RudderStack leaves v out as blank (see isEmpty).
func Blank(v any) bool { return isEmpty(v) }

// isEmpty is RudderStack's blank value: null, "", an empty array, or an array of
// one blank value other than null.
func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case json.Number:
		return t == ""
	case []any:
		switch len(t) {
		case 0:
			return true
		case 1:
			return t[0] != nil && isEmpty(t[0])
		}
	}
	return false
}

func isObject(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

// PathString is a column's path as one string (its keys joined by "."), for messages.
func (c Column) PathString() string { return strings.Join(c.Path, ".") }
