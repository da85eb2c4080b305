package admin

import (
	"context"

	"github.com/cioloader/cioloader/internal/domain"
)

// ListImports returns the integration's history imports, newest first, with
// the progress of each window or file. Unknown integration: ErrNotFound.
func (s *Service) ListImports(ctx context.Context, integrationID int64) ([]domain.Import, error) {
	if _, err := s.Store.FindIntegrationByID(ctx, integrationID); err != nil {
		return nil, err
	}
	return nonNil(s.Store.ListImports(ctx, integrationID))
}
