// Package importer is the history-import use case (SPEC 11): it reads past
// events, from Customer.io's App API or from files of reporting-webhook
// bodies, and writes them through the ingest path (decode, flatten, transform,
// group commit), so they land in every table exactly as webhook events do.
// Progress is kept in the database per unit (a window of creation times, a
// file), so an interrupted import started again continues where it stopped.
package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/history"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/stitch"
	"github.com/cioloader/cioloader/internal/webhook"
)

// Store is what an import keeps and asks of the database (postgres.Store).
type Store interface {
	StartImport(ctx context.Context, in domain.Integration, source, region string, start, end *time.Time, explicit bool) (domain.Import, error)
	ResumableImport(ctx context.Context, integrationID int64, source string) (*domain.Import, error)
	SaveImportProgress(ctx context.Context, importID int64, unit, position string, done bool, delta domain.ImportCounts) error
	SetImportRange(ctx context.Context, importID int64, start, end *time.Time) error
	FinishImport(ctx context.Context, importID int64, state, lastError string) error
	PrepareImport(ctx context.Context, schema string) error
	FirstWebhookEvent(ctx context.Context, schema string) (*time.Time, error)
	StoredOccurrences(ctx context.Context, schema string, os []history.Occurrence) (map[string]bool, error)
	ErasedAmong(ctx context.Context, integrationID int64, bodies [][]byte) (map[int]bool, error)
	DropReplacedImports(ctx context.Context, schema string, ids []string) (int64, error)
	RecordActivity(integrationID int64, at time.Time, counts map[domain.ActivityKey]int64)
}

// Importer runs imports. Submit is the group commit (ingest.Batcher).
type Importer struct {
	Store  Store
	Submit ingest.Submitter
	Limits stitch.Limits
	Log    *slog.Logger
	Now    func() time.Time // time.Now when nil
	// ChunkEvents bounds the events of one write (default 2000).
	ChunkEvents int
	// Retries of a write the database could not take (unavailable, deadline),
	// with a pause of RetryPause doubled each time (defaults 5 and 1 s).
	Retries    int
	RetryPause time.Duration
}

// BatcherConfig is the group commit an import writes through: one
// transaction at a time (an import is one writer, and a server's ingest must
// keep its share of the database), and a deadline long enough for a large
// chunk on a busy database, since nobody is waiting on the other end.
func BatcherConfig(maxEvents int, stall time.Duration) ingest.BatcherConfig {
	return ingest.BatcherConfig{Workers: 1, Stall: stall, MaxEvents: maxEvents, QueueLen: 4, Deadline: 2 * time.Minute}
}

// Status is an import's progress, for a progress bar.
type Status struct {
	Unit          string // the window or file being read
	Units, UnitNo int    // how many (0: not known yet) and which, from 1
	Bytes, Total  int64  // files: bytes read and their total size
	domain.ImportCounts
}

func (im *Importer) now() time.Time {
	if im.Now == nil {
		return time.Now()
	}
	return im.Now()
}

func (im *Importer) chunk() int {
	if im.ChunkEvents <= 0 {
		return 2000
	}
	return im.ChunkEvents
}

// write submits events (reporting-webhook objects as JSON) and rejected
// objects for in, through the ingest path, in chunks, retrying what the
// database could not take for the moment. It returns the ids written.
func (im *Importer) write(ctx context.Context, in domain.Integration, objects [][]byte, rejected []webhook.Rejection, imported bool) (int, error) {
	written := 0
	for start := 0; start < len(objects) || (start == 0 && len(rejected) > 0); start += im.chunk() {
		end := min(start+im.chunk(), len(objects))
		body := joinArray(objects[start:end])
		batch, err := webhook.Decode(body, end-start+1)
		if err != nil {
			return written, fmt.Errorf("decode: %w", err)
		}
		if start == 0 {
			batch.Rejected = append(batch.Rejected, rejected...)
		}
		at := im.now()
		var req *ingest.Request
		if imported {
			req = ingest.PrepareImported(in.Schema, at, batch, im.Limits)
		} else {
			req = ingest.Prepare(in.Schema, at, batch, ingest.NewSequencer(im.Now), im.Limits)
		}
		if err := im.submit(ctx, req); err != nil {
			return written, err
		}
		im.Store.RecordActivity(in.ID, at, ingest.Activity(req))
		written += len(req.Events)
		if end == len(objects) {
			break
		}
	}
	return written, nil
}

// submit commits req, retrying while the database is unavailable: the
// events are idempotent (an upsert on event_id), so a write that did commit
// after its deadline is harmless to repeat.
func (im *Importer) submit(ctx context.Context, req *ingest.Request) error {
	pause := im.RetryPause
	if pause <= 0 {
		pause = time.Second
	}
	retries := im.Retries
	if retries <= 0 {
		retries = 5
	}
	for attempt := 0; ; attempt++ {
		err := im.Submit.Submit(ctx, req)
		if err == nil || !errors.Is(err, domain.ErrUnavailable) || attempt >= retries || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if im.Log != nil {
			im.Log.Warn("import: write not taken; retrying", "err", err, "attempt", attempt+1)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// joinArray is the JSON array of objects.
func joinArray(objects [][]byte) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, o := range objects {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(o)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// finish records how an import ended: done, interrupted (ctx cancelled) or
// failed with err's message.
func (im *Importer) finish(ctx context.Context, imp *domain.Import, err error) error {
	state, msg := domain.ImportDone, ""
	if err != nil && ctx.Err() != nil {
		err = ctx.Err() // what failed failed because the import was stopped
	}
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		state, msg = domain.ImportInterrupted, "interrupted: run the same command again to continue"
	default:
		state, msg = domain.ImportFailed, err.Error()
	}
	// The caller's ctx may be what ended it: the final state is written anyway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := im.Store.FinishImport(ctx, imp.ID, state, msg); ferr != nil && err == nil {
		return ferr
	}
	imp.State = state
	if msg != "" {
		imp.LastError = &msg
	}
	return err
}
