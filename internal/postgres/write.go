package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/stitch"
)

// WriteBatch commits every request of reqs in one transaction (ingest.Writer).
// Schema changes the batch needs are made first, each in its own short
// transaction under the table's advisory lock; the data transaction then
// upserts data, rudder_events and the subtables together.
func (s *Store) WriteBatch(ctx context.Context, reqs []*ingest.Request) error {
	err := s.writeBatch(ctx, reqs)
	var pgErr *pgconn.PgError
	if err == nil || len(reqs) != 1 || !errors.As(err, &pgErr) || !dataError(pgErr.Code) {
		return err
	}
	// Postgres refused this request's values (the batcher has already isolated
	// it from its neighbours). Rather than answer 503 forever and block the
	// Customer.io webhook, keep each event whole in _sdc_raw and say why.
	s.log.Warn("Postgres refused a request's columns; storing its events in _sdc_raw only", "schema", reqs[0].Schema, "err", err)
	return s.writeBatch(ctx, []*ingest.Request{rawOnly(reqs[0], pgErr.Message)})
}

// dataError: data exceptions (22) and program limits such as "row is too big" (54).
func dataError(code string) bool {
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "54")
}

// rawOnly is r with every event's flattened values dropped: only the system
// columns, _sdc_raw and the RudderStack copy are written.
func rawOnly(r *ingest.Request, reason string) *ingest.Request {
	c := *r
	c.Events = make([]ingest.Event, len(r.Events))
	for i, e := range r.Events {
		e.Flat = stitch.Result{
			Tables:   []stitch.Table{{Name: "data", Rows: []stitch.Row{{}}}},
			Problems: []stitch.Problem{{Table: "data", Reason: "Postgres refused this event's columns (" + reason + "); the event is kept in _sdc_raw only"}},
		}
		c.Events[i] = e
	}
	return &c
}
