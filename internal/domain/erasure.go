package domain

import "time"

// Identifier kinds a person can be erased by. KindID covers Customer.io's
// identifiers.id and the deprecated customer_id (they hold the same value).
const (
	KindEmail = "email"
	KindID    = "id"
	KindCioID = "cio_id"
)

// PersonIdentifier is one identifier of a person to erase, as given by the admin.
type PersonIdentifier struct {
	Kind  string // KindEmail, KindID or KindCioID
	Value string
}

// Erasure is the audit record of one erasure request. It never holds the
// identifiers themselves: only SHA-256 hashes of their normalised form
// ("email:" + lower-cased address, "id:" + id, "cio_id:" + cio_id).
type Erasure struct {
	ID               int64            `json:"id"`
	IntegrationID    int64            `json:"integration_id"`
	RequestedAt      time.Time        `json:"requested_at"`
	RequestedBy      string           `json:"requested_by"` // "api" or "cli"
	IdentifierHashes []string         `json:"identifier_hashes"`
	TombstonesUntil  time.Time        `json:"tombstones_until"`
	CompletedAt      *time.Time       `json:"completed_at"` // nil: the deletion failed or is still running
	RowsDeleted      map[string]int64 `json:"rows_deleted"` // per table of the integration's schema
}
