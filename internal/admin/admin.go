// Package admin is the one code path behind both the admin API and the CLI:
// integrations and their webhook URLs, whichever front end asks.
package admin

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/token"
)

// Store is what admin needs from the database (postgres.Store).
type Store interface {
	CreateIntegration(ctx context.Context, name string) (domain.Integration, error)
	ListIntegrations(ctx context.Context) ([]domain.Integration, error)
	FindIntegrationByID(ctx context.Context, id int64) (domain.Integration, error)
	FindIntegration(ctx context.Context, ref string) (domain.Integration, error)
	DisableIntegration(ctx context.Context, id int64) error
	IntegrationStats(ctx context.Context, in domain.Integration) (domain.IntegrationStats, error)
	CreateURL(ctx context.Context, integrationID int64, tokenHash []byte, prefix string) (domain.WebhookURL, error)
	ListURLs(ctx context.Context, integrationID int64) ([]domain.WebhookURL, error)
	RevokeURL(ctx context.Context, integrationID, urlID int64) error
	SetSigningKey(ctx context.Context, id int64, key *string) error
	Erase(ctx context.Context, in domain.Integration, ids []domain.PersonIdentifier, requestedBy string, ttl time.Duration) (domain.Erasure, error)
	ListErasures(ctx context.Context, integrationID int64) ([]domain.Erasure, error)
	EnsureIntegrationObjects(ctx context.Context) error
	ListRefusals(ctx context.Context, integrationID int64) (map[domain.RefusalReason]domain.Refusals, error)
	ListRejections(ctx context.Context, in domain.Integration, limit, maxChars int) ([]domain.Rejection, error)
	ListActivity(ctx context.Context, integrationID int64, since time.Time) ([]domain.ActivityCount, error)
	ActivitySummaries(ctx context.Context, since time.Time) (map[int64]domain.ActivitySummary, error)
	ActivitySummary(ctx context.Context, integrationID int64, since time.Time) (domain.ActivitySummary, error)
	ListImports(ctx context.Context, integrationID int64) ([]domain.Import, error)
	ReaderStore
	SetRetention(ctx context.Context, id int64, days *int) (domain.Integration, error)
	OldestEvent(ctx context.Context, in domain.Integration) (*time.Time, error)
}

// Service performs admin actions.
type Service struct {
	Store   Store
	BaseURL string // e.g. https://cioloader.example.com
	// TombstoneTTL is how long an erasure's tombstones drop re-delivered
	// events (config.Config.TombstoneTTL).
	TombstoneTTL time.Duration
	// Migrations runs the control-schema migrations; only the migrate
	// actions need it.
	Migrations Migrations
	// Now is the clock of the activity windows (time.Now when nil).
	Now func() time.Time
}

// GeneratedURL is a new webhook URL; Token and URL are shown this once.
type GeneratedURL struct {
	ID            int64     `json:"id"`
	IntegrationID int64     `json:"integration_id"`
	URL           string    `json:"url"`
	Token         string    `json:"token"`
	CreatedAt     time.Time `json:"created_at"`
}

// Listed is an integration as the list shows it: with its events of the
// last 24 hours and its last-received time, from the activity counters.
type Listed struct {
	domain.Integration
	domain.ActivitySummary
}

// Detail is one integration with its URLs (no tokens) and counts.
type Detail struct {
	domain.Integration
	domain.ActivitySummary
	URLs  []domain.WebhookURL     `json:"webhook_urls"`
	Stats domain.IntegrationStats `json:"stats"`
	// Refused counts deliveries refused as a whole, by reason (only the
	// reasons that happened).
	Refused map[domain.RefusalReason]domain.Refusals `json:"refused"`
	// OldestEventAt is the time of the oldest event kept (its timestamp, else
	// its arrival) while a retention window is set; null otherwise.
	OldestEventAt *time.Time `json:"oldest_event_at"`
}

// CreateIntegration validates name and creates the integration.
func (s *Service) CreateIntegration(ctx context.Context, name string) (domain.Integration, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return domain.Integration{}, domain.Errorf(domain.ErrInvalid, `"name" is required: give the integration a name such as "Stitch Customer.io"`)
	}
	if err := storableText("name", name); err != nil {
		return domain.Integration{}, err
	}
	return s.Store.CreateIntegration(ctx, name)
}

// FindIntegration resolves an INTEGRATION argument: an integration's id,
// name or schema (ErrNotFound when none has it).
func (s *Service) FindIntegration(ctx context.Context, ref string) (domain.Integration, error) {
	return s.Store.FindIntegration(ctx, ref)
}

// ListIntegrations lists every integration, deleted ones too (never nil).
func (s *Service) ListIntegrations(ctx context.Context) ([]domain.Integration, error) {
	return nonNil(s.Store.ListIntegrations(ctx))
}

// ListWithActivity lists every integration, deleted ones too, each with its
// recent activity (never nil).
func (s *Service) ListWithActivity(ctx context.Context) ([]Listed, error) {
	list, err := s.Store.ListIntegrations(ctx)
	if err != nil {
		return nil, err
	}
	sums, err := s.Store.ActivitySummaries(ctx, s.recentSince())
	if err != nil {
		return nil, err
	}
	out := make([]Listed, len(list))
	for i, in := range list {
		out[i] = Listed{Integration: in, ActivitySummary: sums[in.ID]}
	}
	return out, nil
}

// DeleteIntegration disables an integration and revokes its URLs (its schema
// and data stay) and returns it as it now is. Deleting twice is no error.
func (s *Service) DeleteIntegration(ctx context.Context, id int64) (domain.Integration, error) {
	if err := s.Store.DisableIntegration(ctx, id); err != nil {
		return domain.Integration{}, err
	}
	return s.Store.FindIntegrationByID(ctx, id)
}

// ListURLs lists an integration's webhook URLs (token prefixes only), newest
// first (never nil).
func (s *Service) ListURLs(ctx context.Context, integrationID int64) ([]domain.WebhookURL, error) {
	return nonNil(s.Store.ListURLs(ctx, integrationID))
}

// RevokeURL revokes a webhook URL; integrationID 0 matches any integration.
func (s *Service) RevokeURL(ctx context.Context, integrationID, urlID int64) error {
	return s.Store.RevokeURL(ctx, integrationID, urlID)
}

// nonNil makes an empty list [] rather than null in JSON.
func nonNil[T any](list []T, err error) ([]T, error) {
	if list == nil {
		list = []T{}
	}
	return list, err
}

// Detail returns an integration with its URLs and event counts.
func (s *Service) Detail(ctx context.Context, id int64) (Detail, error) {
	in, err := s.Store.FindIntegrationByID(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	urls, err := s.Store.ListURLs(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	st, err := s.Store.IntegrationStats(ctx, in)
	if err != nil {
		return Detail{}, err
	}
	refused, err := s.Store.ListRefusals(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	recent, err := s.Store.ActivitySummary(ctx, id, s.recentSince())
	if err != nil {
		return Detail{}, err
	}
	oldest, err := s.Store.OldestEvent(ctx, in)
	if err != nil {
		return Detail{}, err
	}
	return Detail{Integration: in, ActivitySummary: recent, URLs: urls, Stats: st, Refused: refused, OldestEventAt: oldest}, nil
}

// GenerateURL makes a token, stores only its hash and returns the URL once.
func (s *Service) GenerateURL(ctx context.Context, integrationID int64) (GeneratedURL, error) {
	tok, err := token.New()
	if err != nil {
		return GeneratedURL{}, err
	}
	u, err := s.Store.CreateURL(ctx, integrationID, token.Hash(tok), token.Display(tok))
	if err != nil {
		return GeneratedURL{}, err
	}
	return GeneratedURL{
		ID:            u.ID,
		IntegrationID: integrationID,
		URL:           strings.TrimRight(s.BaseURL, "/") + "/v1/webhooks/" + tok,
		Token:         tok,
		CreatedAt:     u.CreatedAt,
	}, nil
}

// SetSigningKey sets the Customer.io signing key (empty is refused: use ClearSigningKey).
func (s *Service) SetSigningKey(ctx context.Context, id int64, key string) error {
	key = strings.TrimSpace(key)
	if key == "" {
		return domain.Errorf(domain.ErrInvalid, `"key" is required: paste the signing key from Customer.io's reporting webhook settings`)
	}
	if len(key) > 1024 {
		return domain.Errorf(domain.ErrInvalid, "key is longer than 1024 bytes")
	}
	if err := storableText("key", key); err != nil {
		return err
	}
	return s.Store.SetSigningKey(ctx, id, &key)
}

// storableText refuses what Postgres cannot keep in a text column, as a bad
// request rather than a database error: invalid UTF-8 and NUL (U+0000).
func storableText(field, s string) error {
	if !utf8.ValidString(s) {
		return domain.Errorf(domain.ErrInvalid, "%s must be valid UTF-8", field)
	}
	if strings.ContainsRune(s, 0) {
		return domain.Errorf(domain.ErrInvalid, `%s must not contain NUL characters (\u0000)`, field)
	}
	return nil
}

// ClearSigningKey removes the signing key: requests are no longer checked.
func (s *Service) ClearSigningKey(ctx context.Context, id int64) error {
	return s.Store.SetSigningKey(ctx, id, nil)
}
