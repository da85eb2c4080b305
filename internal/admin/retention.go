package admin

import (
	"context"

	"github.com/cioloader/cioloader/internal/domain"
)

// SetRetention sets (days != nil) or clears (nil: keep everything) an
// integration's retention window and returns the integration. The server's
// pruner deletes the events older than the window in the background
// (postgres.Store.PruneExpired), deleted integrations' too: their data stays,
// and so does the policy it is kept under.
func (s *Service) SetRetention(ctx context.Context, id int64, days *int) (domain.Integration, error) {
	if err := domain.CheckRetentionDays(days); err != nil {
		return domain.Integration{}, err
	}
	return s.Store.SetRetention(ctx, id, days)
}
