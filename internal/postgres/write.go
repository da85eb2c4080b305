package postgres

import (
	"context"
	"strings"

	"github.com/cioloader/cioloader/internal/ingest"
)

// WriteBatch commits every request of reqs in one transaction, all or none
// (ingest.Writer). Schema changes the batch needs are made first, each in its
// own short transaction under the table's advisory lock; the data transaction
// then upserts data, rudder_events and the subtables together. Values
// Postgres refuses come back as domain.ErrDataRefused (see translate): what
// to do about them is the batcher's decision, not the store's.
func (s *Store) WriteBatch(ctx context.Context, reqs []*ingest.Request) error {
	return s.writeBatch(ctx, reqs)
}

// dataError: data exceptions (22) and program limits such as "row is too big" (54).
func dataError(code string) bool {
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "54")
}
