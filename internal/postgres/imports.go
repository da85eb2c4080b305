package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/history"
)

// imports keeps history imports' progress (cioloader.imports and
// import_progress, migration 000007) and answers the questions an import asks
// before and after it writes a page: which occurrences are stored already,
// whose person was erased, and which of its events a webhook copy made
// redundant meanwhile. The events themselves go through the writer, as a
// webhook body does.
type imports struct {
	pool    *pgxpool.Pool
	schemas *schemaCache
	log     *slog.Logger
}

const importCols = `id, integration_id, source, coalesce(region, ''), range_start, range_end, explicit_range, state,
	requests, deliveries, events_written, events_existing, events_replaced, skipped, last_error, started_at, updated_at, finished_at`

func scanImport(row pgx.Row) (domain.Import, error) {
	var im domain.Import
	var skipped []byte
	err := row.Scan(&im.ID, &im.IntegrationID, &im.Source, &im.Region, &im.RangeStart, &im.RangeEnd, &im.ExplicitRange, &im.State,
		&im.Requests, &im.Deliveries, &im.EventsWritten, &im.EventsExisting, &im.EventsReplaced, &skipped, &im.LastError,
		&im.StartedAt, &im.UpdatedAt, &im.FinishedAt)
	if err != nil {
		return im, err
	}
	err = json.Unmarshal(skipped, &im.Skipped)
	return im, err
}

// StartImport records a new import of in from source and returns it.
func (s *imports) StartImport(ctx context.Context, in domain.Integration, source, region string, start, end *time.Time, explicit bool) (domain.Import, error) {
	var nullRegion *string
	if region != "" {
		nullRegion = &region
	}
	im, err := scanImport(s.pool.QueryRow(ctx, `INSERT INTO cioloader.imports
		(integration_id, schema_name, source, region, range_start, range_end, explicit_range)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+importCols, in.ID, in.Schema, source, nullRegion, start, end, explicit))
	if err != nil {
		return im, fmt.Errorf("start import: %w", translate(err))
	}
	return im, nil
}

// ResumableImport is the newest import of integration from source that has not
// finished, with its units' progress, or nil.
func (s *imports) ResumableImport(ctx context.Context, integrationID int64, source string) (*domain.Import, error) {
	im, err := scanImport(s.pool.QueryRow(ctx, `SELECT `+importCols+` FROM cioloader.imports
		WHERE integration_id = $1 AND source = $2 AND state <> 'done' ORDER BY id DESC LIMIT 1`, integrationID, source))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find import: %w", translate(err))
	}
	if im.Units, err = s.units(ctx, im.ID); err != nil {
		return nil, err
	}
	return &im, nil
}

func (s *imports) units(ctx context.Context, importID int64) ([]domain.ImportUnit, error) {
	rows, _ := s.pool.Query(ctx, `SELECT unit, position, done, deliveries, events FROM cioloader.import_progress
		WHERE import_id = $1 ORDER BY unit DESC`, importID)
	units, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.ImportUnit, error) {
		var u domain.ImportUnit
		return u, r.Scan(&u.Unit, &u.Position, &u.Done, &u.Deliveries, &u.Events)
	})
	if err != nil {
		return nil, fmt.Errorf("import progress: %w", translate(err))
	}
	if units == nil {
		units = []domain.ImportUnit{}
	}
	return units, nil
}

// SaveImportProgress moves unit of import importID to position (done when the
// unit is finished) and adds delta to the import's counts, in one transaction.
func (s *imports) SaveImportProgress(ctx context.Context, importID int64, unit, position string, done bool, delta domain.ImportCounts) error {
	if delta.Skipped == nil {
		delta.Skipped = map[string]int64{}
	}
	skipped, err := json.Marshal(delta.Skipped)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO cioloader.import_progress AS p (import_id, unit, position, done, deliveries, events)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (import_id, unit) DO UPDATE SET position = EXCLUDED.position, done = EXCLUDED.done,
				deliveries = p.deliveries + EXCLUDED.deliveries, events = p.events + EXCLUDED.events`,
			importID, unit, position, done, delta.Deliveries, delta.EventsWritten); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE cioloader.imports SET requests = requests + $2, deliveries = deliveries + $3,
			events_written = events_written + $4, events_existing = events_existing + $5, events_replaced = events_replaced + $6,
			skipped = (SELECT coalesce(jsonb_object_agg(k, v), '{}') FROM (
				SELECT k, sum(v::bigint) AS v FROM (SELECT * FROM jsonb_each_text(skipped) UNION ALL SELECT * FROM jsonb_each_text($7::jsonb)) AS e(k, v)
				GROUP BY k) AS s),
			state = 'running', last_error = NULL, updated_at = now()
			WHERE id = $1`, importID, delta.Requests, delta.Deliveries, delta.EventsWritten, delta.EventsExisting, delta.EventsReplaced, skipped)
		return err
	})
	if err != nil {
		return fmt.Errorf("save import progress: %w", translate(err))
	}
	return nil
}

// SetImportRange records the creation times an import covers (its start is
// found as it walks back, when none was given).
func (s *imports) SetImportRange(ctx context.Context, importID int64, start, end *time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE cioloader.imports SET range_start = $2, range_end = $3, updated_at = now() WHERE id = $1`, importID, start, end)
	return translate(err)
}

// FinishImport sets an import's final state (done, failed or interrupted) and
// its last error.
func (s *imports) FinishImport(ctx context.Context, importID int64, state string, lastError string) error {
	var msg *string
	if lastError != "" {
		msg = &lastError
	}
	_, err := s.pool.Exec(ctx, `UPDATE cioloader.imports SET state = $2, last_error = $3, updated_at = now(),
		finished_at = CASE WHEN $2 = 'done' THEN now() END WHERE id = $1`, importID, state, msg)
	if err != nil {
		return fmt.Errorf("finish import: %w", translate(err))
	}
	return nil
}

// ListImports returns an integration's imports, newest first, with their units.
func (s *imports) ListImports(ctx context.Context, integrationID int64) ([]domain.Import, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+importCols+` FROM cioloader.imports WHERE integration_id = $1 ORDER BY id DESC`, integrationID)
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Import, error) { return scanImport(r) })
	if err != nil {
		return nil, fmt.Errorf("list imports: %w", translate(err))
	}
	for i := range list {
		if list[i].Units, err = s.units(ctx, list[i].ID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// deliveryIndex serves an import's look-ups of webhook events by delivery. It
// is built (concurrently) when a schema's first import starts and kept: an
// integration that never imports does not pay for it at ingest.
var deliveryIndex = lateIndex{name: "event_facts_occurrence", table: "event_facts", def: "(delivery_id, object_type, metric)"}

// PrepareImport builds what an import of schema needs before it writes: the
// index its look-ups use.
func (s *imports) PrepareImport(ctx context.Context, schema string) error {
	if err := deliveryIndex.ensure(ctx, s.pool, s.log, schema); err != nil {
		return fmt.Errorf("prepare import: %w", translate(err))
	}
	return nil
}

// FirstWebhookEvent is when schema's first event not imported from
// Customer.io's history was received, nil when there is none.
func (s *imports) FirstWebhookEvent(ctx context.Context, schema string) (*time.Time, error) {
	var at *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(received_at) FROM `+ident(schema, "event_facts")+` WHERE source IS NULL`).Scan(&at)
	if err != nil {
		return nil, fmt.Errorf("first webhook event: %w", translate(err))
	}
	return at, nil
}

// StoredOccurrences says which of the occurrences os are stored already in
// schema: by their imported event_id (an earlier import, or this one before a
// restart), or as a webhook event of the same delivery, object type, metric
// and time. It returns the imported event_ids of those found.
func (s *imports) StoredOccurrences(ctx context.Context, schema string, os []history.Occurrence) (map[string]bool, error) {
	n := len(os)
	ids, deliveries, types, metrics, times := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i, o := range os {
		ids[i], deliveries[i], types[i], metrics[i], times[i] = history.EventID(o), o.DeliveryID, o.ObjectType, o.Metric, o.Timestamp
	}
	rows, _ := s.pool.Query(ctx, fmt.Sprintf(`SELECT c.id FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
			AS c(id, delivery_id, object_type, metric, ts)
		WHERE EXISTS (SELECT 1 FROM %[1]s AS d WHERE d.event_id = c.id)
		   OR EXISTS (SELECT 1 FROM %[2]s AS w WHERE w.delivery_id = c.delivery_id AND w.object_type = c.object_type
		              AND w.metric = c.metric AND w.occurred_at = to_timestamp(c.ts) AND w.source IS NULL)`,
		ident(schema, "data"), ident(schema, "event_facts")), ids, deliveries, types, metrics, times)
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("stored occurrences: %w", translate(err))
	}
	set := make(map[string]bool, len(found))
	for _, id := range found {
		set[id] = true
	}
	return set, nil
}

// ErasedAmong returns the indexes of the events (JSON bodies) that name a
// person erased from integrationID by any erasure request, expired tombstones
// included: the matching rule is cioloader.erasure_keys, as for an erasure.
func (s *imports) ErasedAmong(ctx context.Context, integrationID int64, bodies [][]byte) (map[int]bool, error) {
	raws := make([]string, len(bodies))
	for i, b := range bodies {
		raws[i] = string(b)
	}
	rows, _ := s.pool.Query(ctx, `WITH erased AS (
			SELECT DISTINCT h FROM cioloader.erasures, unnest(identifier_hashes) AS h WHERE integration_id = $1)
		SELECT r.i - 1 FROM unnest($2::jsonb[]) WITH ORDINALITY AS r(raw, i)
		WHERE EXISTS (SELECT 1 FROM unnest(cioloader.erasure_keys(r.raw)) AS k(key)
		              JOIN erased ON erased.h = encode(cioloader.erasure_hash(k.key), 'hex'))`, integrationID, raws)
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("erased people: %w", translate(err))
	}
	set := make(map[int]bool, len(found))
	for _, i := range found {
		set[int(i)] = true
	}
	return set, nil
}

// DropReplacedImports deletes, from every table of schema, the imported events
// among ids whose occurrence is now stored as a webhook event too. It first
// waits, on the erasure lock every ingest transaction holds shared, until the
// ingest transactions that ran beside the import's last write have committed:
// one of them may have written a webhook copy without seeing the imported one
// (so without deleting it), and any that starts later sees it and deletes it
// itself. It returns how many events it deleted.
func (s *imports) DropReplacedImports(ctx context.Context, schema string, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+erasureLockKey+`)`, schema)
		return err // the barrier: released at once, at the commit
	})
	if err != nil {
		return 0, fmt.Errorf("import barrier: %w", translate(err))
	}
	tables, _, err := s.schemas.snapshot(ctx, schema)
	if err != nil {
		return 0, err
	}
	q := dropEventsSQL(schema, subtableNames(tables), `SELECT d.event_id FROM %[1]s AS d JOIN `+ident(schema, "event_facts")+` AS f ON f.event_id = d.event_id
		WHERE d.event_id = ANY($1::text[]) AND EXISTS (SELECT 1 FROM `+ident(schema, "event_facts")+` AS w
			WHERE w.delivery_id = f.delivery_id AND w.object_type = f.object_type AND w.metric = f.metric
			  AND w.occurred_at = f.occurred_at AND w.source IS NULL)`)
	var n int64
	if err := s.pool.QueryRow(ctx, q, ids).Scan(&n); err != nil {
		return 0, fmt.Errorf("drop replaced imports: %w", translate(err))
	}
	return n, nil
}

// ImportedEvents sums the events history imports have written, by schema and
// source (metrics.ImportTotals).
func (s *imports) ImportedEvents(ctx context.Context) (map[[2]string]float64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT schema_name, source, sum(events_written)::float8 FROM cioloader.imports GROUP BY 1, 2`)
	out := map[[2]string]float64{}
	var schema, source string
	var n float64
	_, err := pgx.ForEachRow(rows, []any{&schema, &source, &n}, func() error {
		out[[2]string{schema, source}] = n
		return nil
	})
	return out, translate(err)
}
