package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cioloader/cioloader/internal/cioapi"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/history"
	"github.com/cioloader/cioloader/internal/webhook"
)

// Messages is the App API route an import reads (cioapi.Client).
type Messages interface {
	Messages(ctx context.Context, q cioapi.Query) (cioapi.Page, error)
}

// CustomerIO is what `cioloader import customerio` was asked.
type CustomerIO struct {
	API    Messages
	Region string
	// Since and Until bound the deliveries' creation times. Without Since the
	// import walks back until a window is empty; without Until it stops at the
	// integration's first webhook event, or now.
	Since, Until *time.Time
	Limit        int // per page (default and at most 1000)
	// MaxWindows bounds the walk back without Since (default 30: 15 years).
	MaxWindows int
}

// window is one range of creation times, read page by page.
type window struct{ start, end time.Time }

func (w window) unit() string {
	return w.start.UTC().Format(time.RFC3339) + "/" + w.end.UTC().Format(time.RFC3339)
}

// windows are the six-month windows from end back to since (or, when since is
// nil, as many as max).
func windows(since *time.Time, end time.Time, max int) []window {
	var ws []window
	for len(ws) < max {
		start := end.AddDate(0, -cioapi.MaxWindow, 0)
		if since != nil && !start.After(*since) {
			start = *since
		}
		ws = append(ws, window{start: start, end: end})
		if since != nil && !start.After(*since) {
			break
		}
		end = start
	}
	return ws
}

// CustomerIO imports in's past deliveries from the App API. An unfinished
// Customer.io import of in is continued (when opt names no other range);
// otherwise a new one starts. A refused key stops it before anything is written.
func (im *Importer) CustomerIO(ctx context.Context, in domain.Integration, opt CustomerIO, progress func(Status)) (domain.Import, error) {
	if opt.Limit <= 0 || opt.Limit > cioapi.MaxLimit {
		opt.Limit = cioapi.MaxLimit
	}
	if opt.MaxWindows <= 0 {
		opt.MaxWindows = 30
	}
	explicit := opt.Since != nil || opt.Until != nil
	imp, err := im.Store.ResumableImport(ctx, in.ID, domain.ImportCustomerIO)
	if err != nil {
		return domain.Import{}, err
	}
	if imp != nil && explicit && !sameRange(imp, opt) {
		imp = nil // another range: a new import
	}
	var since *time.Time
	var until time.Time
	if imp != nil {
		until = *imp.RangeEnd
		if imp.ExplicitRange {
			since = imp.RangeStart
		}
	} else {
		if until, err = im.defaultUntil(ctx, in, opt.Until); err != nil {
			return domain.Import{}, err
		}
		since = opt.Since
		if in.RetentionDays != nil { // history the retention window would prune at once is not read
			floor := im.now().AddDate(0, 0, -*in.RetentionDays).Truncate(time.Second)
			if since == nil || since.Before(floor) {
				since = &floor
			}
		}
		if since != nil && !since.Before(until) {
			return domain.Import{}, domain.Errorf(domain.ErrInvalid, "nothing to import: --since %s is not before %s", since.Format(time.DateOnly), until.Format(time.RFC3339))
		}
	}
	ws := windows(since, until, opt.MaxWindows)
	done := map[string]domain.ImportUnit{}
	if imp != nil {
		for _, u := range imp.Units {
			done[u.Unit] = u
		}
	}
	// The first request, before anything is written: a wrong key or region
	// stops the import here.
	first, firstIdx, err := im.probe(ctx, opt, ws, done)
	if err != nil {
		return domain.Import{}, err
	}
	if err := im.Store.PrepareImport(ctx, in.Schema); err != nil {
		return domain.Import{}, err
	}
	if imp == nil {
		created, err := im.Store.StartImport(ctx, in, domain.ImportCustomerIO, opt.Region, since, &until, explicit)
		if err != nil {
			return domain.Import{}, err
		}
		imp = &created
	}
	run := &cioRun{im: im, in: in, imp: imp, opt: opt, progress: progress, known: since != nil, windows: len(ws)}
	err = run.walk(ctx, ws, done, first, firstIdx)
	return *imp, im.finish(ctx, imp, err)
}

// sameRange: opt asks for the range imp was started with.
func sameRange(imp *domain.Import, opt CustomerIO) bool {
	eq := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	return imp.ExplicitRange && eq(imp.RangeStart, opt.Since) && (opt.Until == nil || eq(imp.RangeEnd, opt.Until))
}

// defaultUntil is until, else the integration's first webhook event, else now.
func (im *Importer) defaultUntil(ctx context.Context, in domain.Integration, until *time.Time) (time.Time, error) {
	if until != nil {
		return *until, nil
	}
	first, err := im.Store.FirstWebhookEvent(ctx, in.Schema)
	if err != nil {
		return time.Time{}, err
	}
	if first != nil {
		return first.Truncate(time.Second), nil
	}
	return im.now().Truncate(time.Second), nil
}

// probe fetches the first page the import needs: the first window not done.
func (im *Importer) probe(ctx context.Context, opt CustomerIO, ws []window, done map[string]domain.ImportUnit) (*cioapi.Page, int, error) {
	for i, w := range ws {
		u, seen := done[w.unit()]
		if seen && u.Done {
			continue
		}
		p, err := opt.API.Messages(ctx, cioapi.Query{Start: w.start, End: w.end, Cursor: u.Position, Limit: opt.Limit})
		if err != nil {
			return nil, 0, err
		}
		return &p, i, nil
	}
	return nil, len(ws), nil
}

// cioRun is one run of a Customer.io import.
type cioRun struct {
	im       *Importer
	in       domain.Integration
	imp      *domain.Import
	opt      CustomerIO
	progress func(Status)
	known    bool // the number of windows is known (a --since was given)
	windows  int
	status   Status
}

// walk reads every window not done, newest first, page by page; without a
// Since it stops after the first window that holds no delivery.
func (r *cioRun) walk(ctx context.Context, ws []window, done map[string]domain.ImportUnit, first *cioapi.Page, firstIdx int) error {
	r.status.ImportCounts = r.imp.ImportCounts
	for i, w := range ws {
		u := done[w.unit()]
		if u.Done {
			if !r.known && u.Deliveries == 0 {
				return r.reachedStart(ctx, w)
			}
			continue
		}
		var page *cioapi.Page
		if i == firstIdx {
			page = first
		}
		found, err := r.window(ctx, i, w, u, page)
		if err != nil {
			return err
		}
		if !r.known && found+u.Deliveries == 0 {
			return r.reachedStart(ctx, w)
		}
	}
	if !r.known && len(ws) > 0 {
		return r.reachedStart(ctx, ws[len(ws)-1])
	}
	return nil
}

// reachedStart records where a walk without Since stopped.
func (r *cioRun) reachedStart(ctx context.Context, w window) error {
	start := w.start
	r.imp.RangeStart = &start
	return r.im.Store.SetImportRange(ctx, r.imp.ID, &start, r.imp.RangeEnd)
}

// window reads one window from its saved cursor; page, when set, is its first
// page, already fetched. It returns the deliveries it read.
func (r *cioRun) window(ctx context.Context, i int, w window, u domain.ImportUnit, page *cioapi.Page) (int64, error) {
	cursor := u.Position
	var found int64
	for {
		if page == nil {
			p, err := r.opt.API.Messages(ctx, cioapi.Query{Start: w.start, End: w.end, Cursor: cursor, Limit: r.opt.Limit})
			if err != nil {
				return found, err
			}
			page = &p
		}
		delta, err := r.page(ctx, page.Messages)
		if err != nil {
			return found, err
		}
		delta.Requests = int64(1 + page.Retries)
		found += delta.Deliveries
		last := page.Next == ""
		if err := r.im.Store.SaveImportProgress(ctx, r.imp.ID, w.unit(), page.Next, last, delta); err != nil {
			return found, err
		}
		r.status.ImportCounts.Add(delta)
		r.imp.ImportCounts = r.status.ImportCounts
		r.status.Unit, r.status.UnitNo = w.unit(), i+1
		if r.known {
			r.status.Units = r.windows
		}
		if r.progress != nil {
			r.progress(r.status)
		}
		if last {
			return found, nil
		}
		cursor, page = page.Next, nil
	}
}

// page turns one page's deliveries into events and writes those not stored yet.
func (r *cioRun) page(ctx context.Context, messages []map[string]any) (domain.ImportCounts, error) {
	delta := domain.ImportCounts{Deliveries: int64(len(messages)), Skipped: map[string]int64{}}
	var mapped []history.Mapped
	var rejected []webhook.Rejection
	for _, d := range messages {
		m, err := history.Map(d)
		var inv *history.InvalidError
		if errors.As(err, &inv) {
			rec, _ := json.Marshal(d)
			rejected = append(rejected, webhook.Rejection{Reason: "App API delivery not imported: " + inv.Msg, Record: truncate(rec)})
			delta.Skipped["invalid"]++
			continue
		}
		if m.Skip != history.SkipNone {
			delta.Skipped[string(m.Skip)]++
			continue
		}
		mapped = append(mapped, m)
	}
	mapped, err := r.withoutErased(ctx, mapped, &delta)
	if err != nil {
		return delta, err
	}
	var os []history.Occurrence
	for _, m := range mapped {
		for _, e := range m.Events {
			os = append(os, e.Occurrence)
		}
	}
	stored := map[string]bool{}
	if len(os) > 0 {
		if stored, err = r.im.Store.StoredOccurrences(ctx, r.in.Schema, os); err != nil {
			return delta, err
		}
	}
	var bodies [][]byte
	var ids []string
	for _, m := range mapped {
		for _, e := range m.Events {
			id := history.EventID(e.Occurrence)
			if stored[id] {
				delta.EventsExisting++
				continue
			}
			bodies, ids = append(bodies, e.Body), append(ids, id)
		}
	}
	if len(bodies) == 0 && len(rejected) == 0 {
		return delta, nil
	}
	n, err := r.im.write(ctx, r.in, bodies, rejected, true)
	if err != nil {
		return delta, err
	}
	delta.EventsWritten = int64(n)
	replaced, err := r.im.Store.DropReplacedImports(ctx, r.in.Schema, ids)
	if err != nil {
		return delta, err
	}
	delta.EventsWritten -= replaced
	delta.EventsExisting += replaced
	delta.EventsReplaced = replaced
	return delta, nil
}

// withoutErased drops the deliveries of people erased from the integration
// (by any erasure request, however old: its tombstones may have expired, but
// its history must not come back).
func (r *cioRun) withoutErased(ctx context.Context, mapped []history.Mapped, delta *domain.ImportCounts) ([]history.Mapped, error) {
	if len(mapped) == 0 {
		return mapped, nil
	}
	firsts := make([][]byte, len(mapped))
	for i, m := range mapped {
		firsts[i] = m.Events[0].Body // every event of a delivery names the same person
	}
	erased, err := r.im.Store.ErasedAmong(ctx, r.in.ID, firsts)
	if err != nil {
		return nil, err
	}
	if len(erased) == 0 {
		return mapped, nil
	}
	kept := mapped[:0]
	for i, m := range mapped {
		if erased[i] {
			delta.Skipped["erased"]++
			continue
		}
		kept = append(kept, m)
	}
	return kept, nil
}

// truncate bounds a rejected record as _sdc_rejected keeps it.
func truncate(b []byte) string {
	const max = 8 << 10
	if len(b) > max {
		return string(b[:max])
	}
	return string(b)
}

// Summary is a one-line summary of an import's counts.
func Summary(imp domain.Import) string {
	var b strings.Builder
	if imp.Source == domain.ImportFile {
		fmt.Fprintf(&b, "%d objects read", imp.Deliveries)
	} else {
		fmt.Fprintf(&b, "%d requests, %d deliveries", imp.Requests, imp.Deliveries)
	}
	fmt.Fprintf(&b, ", %d events written, %d already stored", imp.EventsWritten, imp.EventsExisting)
	if imp.EventsReplaced > 0 {
		fmt.Fprintf(&b, ", %d replaced by webhook copies", imp.EventsReplaced)
	}
	for _, k := range slices.Sorted(maps.Keys(imp.Skipped)) {
		fmt.Fprintf(&b, ", %d skipped (%s)", imp.Skipped[k], strings.ReplaceAll(k, "_", " "))
	}
	return b.String()
}
