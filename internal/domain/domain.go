// Package domain holds cioloader's domain types and the few errors every adapter
// translates into: the HTTP layer maps them to status codes in one place.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// The domain errors. Wrap them with context; test with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrUnavailable  = errors.New("unavailable")
	ErrUnauthorized = errors.New("unauthorized")
	ErrTooLarge     = errors.New("too large")
	// ErrDataRefused: the database refused the values themselves (a data
	// exception or a program limit), not the request as a whole; the
	// message is the database's. The ingest batcher answers it by storing
	// the request raw-only.
	ErrDataRefused = errors.New("data refused")
)

// Error is a domain error with a message a person can act on.
type Error struct {
	Kind    error  // one of the Err* sentinels
	Message string // safe to show to the client
}

func (e *Error) Error() string { return e.Message }

// Unwrap lets errors.Is match the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf builds a domain error of kind with a formatted, client-safe message.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Integration is a named source of Customer.io events with its own schema.
type Integration struct {
	ID            int64      `json:"id"`
	Name          string     `json:"name"`
	Schema        string     `json:"schema"`
	CreatedAt     time.Time  `json:"created_at"`
	DisabledAt    *time.Time `json:"disabled_at,omitempty"`
	HasSigningKey bool       `json:"has_signing_key"`
	// RetentionDays is how many days of events the integration keeps (by
	// each event's own time); nil keeps everything. See retention.go.
	RetentionDays *int `json:"retention_days"`
}

// WebhookURL is one generated URL; the token itself is never stored.
type WebhookURL struct {
	ID            int64      `json:"id"`
	IntegrationID int64      `json:"integration_id"`
	TokenPrefix   string     `json:"token_prefix"`
	CreatedAt     time.Time  `json:"created_at"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
}

// Active reports whether the URL still accepts events.
func (u WebhookURL) Active() bool { return u.RevokedAt == nil }

// IntegrationStats are the event counts shown with an integration.
type IntegrationStats struct {
	Events         int64      `json:"events"`
	RudderEvents   int64      `json:"rudder_events"`
	Rejected       int64      `json:"rejected"`
	LastReceivedAt *time.Time `json:"last_received_at"`
}

// Target is what a valid webhook token opens: one URL of one enabled integration.
type Target struct {
	URLID         int64
	IntegrationID int64
	Schema        string
	SigningKey    []byte // nil when the integration has none
}

// MaxActiveURLs is how many unrevoked webhook URLs an integration may have (Stitch's rule).
const MaxActiveURLs = 2
