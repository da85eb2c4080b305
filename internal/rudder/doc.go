// Package rudder turns one Customer.io reporting-webhook object into the RudderStack
// track event that RudderStack's Customer.io source (rudder-transformer v1.145.0,
// src/sources/customerio) makes from it, for the rudder_events table and
// `cioloader transform` (SPEC 6). It is pure: no I/O except TransformStream's reader
// and writer, standard library only.
//
// Compatibility is the default: for every object, the event is identical as JSON (key
// order aside) to the transformer's, apart from the messageId and receivedAt keys that
// rudder-server's gateway would add. The event name comes from a fixed table
// (object_type lower-cased, metric case-sensitive, anything else "Unknown Event"); each
// destination field takes the first non-null source in the transformer's mapping order;
// values keep their JSON type; empty properties and traits are left out.
//
// Deliberate differences from rudder-transformer:
//
//   - A timestamp that is a date string, or so large that JavaScript's Date rejects it,
//     makes the transformer fail (HTTP 500); we keep the event and leave the timestamp out.
//   - A non-string object_type makes the transformer fail; we give "Unknown Event".
//   - A timestamp is read only from a JSON number of Unix seconds. Numeric strings such
//     as "2020" (read upstream as 2020 seconds) and arrays are left out.
//   - A timestamp whose instant falls outside the years 0001–9999 is left out, so a
//     millisecond value is not turned into the year 52204: no date outside that range
//     is a real send time, and none has a four-digit ISO-8601 form.
//   - The event name is a plain (object_type, metric) lookup: a metric such as
//     "constructor" or "opened.length" gives "Unknown Event", not a JavaScript prototype
//     member or path artefact, and a non-string metric is never stringified.
//   - Numbers keep their full precision: JavaScript rounds integers beyond 2^53.
//   - messageId is deterministic, a UUIDv5 of the integration's schema and event_id (see
//     MessageID), so a redelivered webhook is the same message; RudderStack makes a
//     random one per delivery. receivedAt is the request's arrival time.
//   - A body that is a JSON array is a list of events (SPEC 3.1), not one event with
//     nothing mapped; an element that is not an object (null, a string, …) is an error
//     line in TransformStream, where the transformer fails on null and copies a string
//     into every field.
//
// Kept as upstream does it, though odd: a non-string recipient or email (an object, a
// number) is copied as is into context.traits.email and anonymousId; a customer_id of
// "" or of spaces is kept verbatim as userId, so no anonymousId is derived from the email.
package rudder
