package rudder

import (
	"crypto/sha1"
	"encoding/hex"
)

// uuid is an RFC 9562 UUID.
type uuid [16]byte

// namespaceURL is RFC 9562's predefined namespace for URLs.
var namespaceURL = uuid{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// MessageIDNamespace is the UUID namespace of every messageId:
// UUIDv5(NamespaceURL, "https://github.com/cioloader/cioloader/rudder_events/message_id").
// It is fixed forever, so anyone can recompute a messageId, e.g. in Postgres with
// uuid-ossp: uuid_generate_v5('5de21e76-d99b-583c-8167-c0816d46cdc7', schema || '/' || event_id).
const MessageIDNamespace = "5de21e76-d99b-583c-8167-c0816d46cdc7"

// messageNamespace is MessageIDNamespace as bytes.
var messageNamespace = uuid{0x5d, 0xe2, 0x1e, 0x76, 0xd9, 0x9b, 0x58, 0x3c, 0x81, 0x67, 0xc0, 0x81, 0x6d, 0x46, 0xcd, 0xc7}

// MessageID is the deterministic messageId of the event with this event_id in the
// integration whose schema is namespace: UUIDv5(MessageIDNamespace, namespace + "/" +
// eventID). eventID is the event_id text: a string as is, a number as its JSON literal.
func MessageID(namespace, eventID string) string {
	return newSHA1(messageNamespace, namespace+"/"+eventID).String()
}

// newSHA1 is the name-based, SHA-1 UUID (version 5) of name in ns (RFC 9562 5.5).
func newSHA1(ns uuid, name string) uuid {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u uuid
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // variant 10xx (RFC 9562)
	return u
}

// String is the canonical 8-4-4-4-12 lower-case hex form.
func (u uuid) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
