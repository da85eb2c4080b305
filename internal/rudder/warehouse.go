package rudder

// WarehouseInput is what RudderStack's warehouse loader reads from the event besides
// its fixed fields: properties and context as encoding/json would decode them
// (objects as map[string]any; nil properties when the event has none), and the
// userId and anonymousId values as the event holds them (nil when absent).
func (e *Event) WarehouseInput() (properties, context map[string]any, userID, anonymousID any) {
	c := e.w.Context
	context = map[string]any{
		"library":     map[string]any{"name": c.Library.Name, "version": c.Library.Version},
		"integration": map[string]any{"name": c.Integration.Name},
	}
	if len(c.Traits) > 0 {
		context["traits"] = c.Traits.toMap()
	}
	if len(e.w.Properties) > 0 {
		properties = e.w.Properties.toMap()
	}
	return properties, context, e.w.UserID, e.w.AnonymousID
}

// toMap is o as a map, nested objects included.
func (o object) toMap() map[string]any {
	m := make(map[string]any, len(o))
	for _, mem := range o {
		if inner, ok := mem.value.(object); ok {
			m[mem.key] = inner.toMap()
		} else {
			m[mem.key] = mem.value
		}
	}
	return m
}

// AppendShape appends to dst a description of the event's shape as the warehouse
// layout sees it: its name, then every property and trait key with kind(value) for
// each leaf (objects are entered, their keys bracketed), then kind of the userId and
// anonymousId. Two events with the same shape give the same warehouse columns, so
// a caller can skip events of a shape it has seen. It does not allocate beyond dst.
func (e *Event) AppendShape(dst []byte, kind func(v any) byte) []byte {
	dst = append(dst, e.w.Event...)
	dst = append(dst, 0)
	dst = appendShape(dst, e.w.Properties, kind)
	dst = appendShape(dst, e.w.Context.Traits, kind)
	return append(dst, kind(e.w.UserID), kind(e.w.AnonymousID))
}

func appendShape(dst []byte, o object, kind func(v any) byte) []byte {
	dst = append(dst, '{')
	for _, m := range o {
		dst = append(dst, m.key...)
		dst = append(dst, 0)
		switch v := m.value.(type) {
		case object:
			dst = appendShape(dst, v, kind)
		case map[string]any:
			dst = appendMapShape(dst, v, kind)
		default:
			dst = append(dst, kind(v))
		}
	}
	return append(dst, '}')
}

// appendMapShape is appendShape for a decoded object (its keys in no fixed order:
// the shape of such a map may differ between equal events, which only costs a
// second look).
func appendMapShape(dst []byte, m map[string]any, kind func(v any) byte) []byte {
	dst = append(dst, '{')
	for k, v := range m {
		dst = append(dst, k...)
		dst = append(dst, 0)
		if inner, ok := v.(map[string]any); ok {
			dst = appendMapShape(dst, inner, kind)
		} else {
			dst = append(dst, kind(v))
		}
	}
	return append(dst, '}')
}
