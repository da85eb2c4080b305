// Package warehouse holds the rules of RudderStack's warehouse loader for a
// Postgres destination, as its warehouse transformer applies them to a track
// event (rudder-server, processor/internal/transformer/destination_transformer/
// embedded/warehouse): the event name → table name, property and context paths →
// column names, and each value → its warehouse type. It is pure (standard library
// only): internal/postgres turns what it computes into the `tracks` view and one
// view per event name over rudder_events.
//
// The settings are RudderStack's shipped defaults: underscoreDivideNumbers unset
// (digits stay with their word: "link2Url" → "link2_url"), no jsonPaths, source
// category "webhook" (objects are flattened at every depth).
package warehouse
