package domain

import (
	"fmt"
	"time"
)

// ErrTooManyEvents is the ErrInvalid of a body with more events than one
// request may hold: still a 400, but counted apart from a body that is not
// JSON (errors.Is matches both).
var ErrTooManyEvents = fmt.Errorf("too many events: %w", ErrInvalid)

// RefusalReason says why a delivery whose token resolved was refused as a whole.
type RefusalReason string

// The refusal reasons, one per way a delivery can be refused.
const (
	RefusedSignature     RefusalReason = "signature"       // 401: signature missing, wrong or out of its window
	RefusedNotJSON       RefusalReason = "not_json"        // 400: not a JSON object or array of objects
	RefusedTooLarge      RefusalReason = "too_large"       // 413: body over the size limit
	RefusedTooManyEvents RefusalReason = "too_many_events" // 400: more events than one request may hold
	RefusedUnavailable   RefusalReason = "unavailable"     // 503: database or memory budget unavailable
)

// RefusalReasons lists every reason, in the order they are shown.
var RefusalReasons = []RefusalReason{RefusedSignature, RefusedNotJSON, RefusedTooLarge, RefusedTooManyEvents, RefusedUnavailable}

// Refusals counts the deliveries of one integration refused for one reason.
type Refusals struct {
	Count  int64     `json:"count"`
	LastAt time.Time `json:"last_at"`
}

// Rejection is one row of an integration's _sdc_rejected table.
type Rejection struct {
	RejectedAt      time.Time `json:"rejected_at"`
	TableName       string    `json:"table_name"`
	Reason          string    `json:"reason"`
	Record          string    `json:"record"`
	RecordTruncated bool      `json:"record_truncated"`
}
