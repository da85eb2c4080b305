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
