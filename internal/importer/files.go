package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/cioloader/cioloader/internal/domain"
)

// Stdin names standard input among an import's files.
const Stdin = "-"

// Files imports files of reporting-webhook bodies into in: each holds one
// object, a JSON array of objects, or objects one after another (NDJSON). Every
// file is checked whole before anything is written, so a malformed file writes
// nothing; standard input ("-") is checked chunk by chunk, as it cannot be
// read twice, and cannot be resumed. An unfinished file import of in for the
// same files is continued from each file's saved offset.
func (im *Importer) Files(ctx context.Context, in domain.Integration, paths []string, stdin io.Reader, progress func(Status)) (domain.Import, error) {
	units, total, err := fileUnits(paths)
	if err != nil {
		return domain.Import{}, err
	}
	for _, u := range units {
		if err := validateFile(ctx, u); err != nil {
			return domain.Import{}, err // nothing of a malformed file is written, nor of the others
		}
	}
	imp, err := im.Store.ResumableImport(ctx, in.ID, domain.ImportFile)
	if err != nil {
		return domain.Import{}, err
	}
	done := map[string]domain.ImportUnit{}
	if imp != nil && sameFiles(imp, units) {
		for _, u := range imp.Units {
			done[u.Unit] = u
		}
	} else {
		imp = nil
	}
	if imp == nil {
		created, err := im.Store.StartImport(ctx, in, domain.ImportFile, "", nil, nil, false)
		if err != nil {
			return domain.Import{}, err
		}
		imp = &created
		for _, u := range units { // the set of files is how a restart finds this import
			if err := im.Store.SaveImportProgress(ctx, imp.ID, u, "0", false, domain.ImportCounts{}); err != nil {
				return *imp, im.finish(ctx, imp, err)
			}
		}
	}
	st := Status{Units: len(units), Total: total, ImportCounts: imp.ImportCounts}
	for i, u := range units {
		st.Unit, st.UnitNo = u, i+1
		if err := im.file(ctx, in, imp, u, done[u], stdin, &st, progress); err != nil {
			return *imp, im.finish(ctx, imp, fmt.Errorf("%s: %w", u, err))
		}
	}
	return *imp, im.finish(ctx, imp, nil)
}

// fileUnits are the absolute paths of paths (Stdin as is), checked readable,
// and their total size.
func fileUnits(paths []string) ([]string, int64, error) {
	var units []string
	var total int64
	for _, p := range paths {
		if p == Stdin {
			if slices.Contains(units, Stdin) {
				return nil, 0, domain.Errorf(domain.ErrInvalid, "standard input (-) is named twice")
			}
			units = append(units, Stdin)
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, 0, domain.Errorf(domain.ErrInvalid, "%s: %v", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, 0, domain.Errorf(domain.ErrInvalid, "%s: %v", p, errors.Unwrap(err))
		}
		if fi.IsDir() {
			return nil, 0, domain.Errorf(domain.ErrInvalid, "%s is a directory", p)
		}
		if !slices.Contains(units, abs) {
			units = append(units, abs)
			total += fi.Size()
		}
	}
	return units, total, nil
}

// sameFiles: imp was started for exactly units (standard input is never resumed).
func sameFiles(imp *domain.Import, units []string) bool {
	if slices.Contains(units, Stdin) || len(imp.Units) != len(units) {
		return false
	}
	for _, u := range imp.Units {
		if !slices.Contains(units, u.Unit) {
			return false
		}
	}
	return true
}

// file imports one file from its saved offset.
func (im *Importer) file(ctx context.Context, in domain.Integration, imp *domain.Import, unit string, saved domain.ImportUnit, stdin io.Reader, st *Status, progress func(Status)) error {
	if saved.Done {
		st.Bytes += mustAtoi(saved.Position)
		return nil
	}
	var r io.Reader
	var offset int64
	if unit == Stdin {
		r = stdin
	} else {
		f, err := os.Open(unit)
		if err != nil {
			return err
		}
		defer f.Close()
		if offset = mustAtoi(saved.Position); offset > 0 {
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if offset > fi.Size() {
				return domain.Errorf(domain.ErrInvalid, "the file is shorter than when its import was interrupted (offset %d): it changed; import it under another name", offset)
			}
		}
		r = f
	}
	st.Bytes += offset
	objs := newObjectReader(bufio.NewReaderSize(r, 1<<20), offset)
	for {
		chunk, end, err := objs.next(ctx, im.chunk())
		if err != nil {
			return err
		}
		n, werr := im.write(ctx, in, chunk, nil, false)
		if werr != nil {
			return werr
		}
		last := len(chunk) < im.chunk()
		delta := domain.ImportCounts{Deliveries: int64(len(chunk)), EventsWritten: int64(n)}
		if err := im.Store.SaveImportProgress(ctx, imp.ID, unit, strconv.FormatInt(end, 10), last, delta); err != nil {
			return err
		}
		st.ImportCounts.Add(delta)
		imp.ImportCounts = st.ImportCounts
		st.Bytes += end - offset
		offset = end
		if progress != nil {
			progress(*st)
		}
		if last {
			return nil
		}
	}
}

func mustAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// validateFile reads a whole file as the object reader will, writing
// nothing (standard input is checked as it is read).
func validateFile(ctx context.Context, unit string) error {
	if unit == Stdin {
		return nil
	}
	f, err := os.Open(unit)
	if err != nil {
		return domain.Errorf(domain.ErrInvalid, "%s: %v", unit, errors.Unwrap(err))
	}
	defer f.Close()
	objs := newObjectReader(bufio.NewReaderSize(f, 1<<20), 0)
	for {
		chunk, _, err := objs.next(ctx, 10000)
		if err != nil {
			return fmt.Errorf("%s: %w", unit, err)
		}
		if len(chunk) < 10000 {
			return nil
		}
	}
}

// objectReader reads the objects of a file of reporting-webhook bodies: one
// object, an array of objects, or a stream of objects (NDJSON). Offsets are of
// the byte after an object, where a restart resumes.
type objectReader struct {
	dec     *json.Decoder
	skip    int64 // objects ending at or before this offset were imported already
	started bool
	inArray bool
	ended   bool
}

func newObjectReader(r io.Reader, skip int64) *objectReader {
	return &objectReader{dec: json.NewDecoder(r), skip: skip}
}

// next returns up to n objects and the offset after the last one. Fewer than
// n means the file ended.
func (o *objectReader) next(ctx context.Context, n int) ([][]byte, int64, error) {
	var out [][]byte
	if err := o.start(); err != nil {
		return nil, 0, err
	}
	for len(out) < n && !o.ended {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if o.inArray && !o.dec.More() {
			if _, err := o.dec.Token(); err != nil { // the closing ]
				return nil, 0, o.syntax(err)
			}
			o.ended = true
			if err := o.trailing(); err != nil {
				return nil, 0, err
			}
			break
		}
		var raw json.RawMessage
		err := o.dec.Decode(&raw)
		if err == io.EOF && !o.inArray {
			o.ended = true
			break
		}
		if err != nil {
			return nil, 0, o.syntax(err)
		}
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
			return nil, 0, domain.Errorf(domain.ErrInvalid, "at byte %d: an element is not a JSON object (%.40s)", o.dec.InputOffset()-int64(len(raw)), raw)
		}
		if o.dec.InputOffset() <= o.skip {
			continue // imported before the restart
		}
		out = append(out, raw)
	}
	return out, max(o.dec.InputOffset(), o.skip), nil
}

// start reads past an opening [ when the file is an array.
func (o *objectReader) start() error {
	if o.started {
		return nil
	}
	o.started = true
	tok, err := peekDelim(o.dec)
	if err != nil {
		return err
	}
	o.inArray = tok
	return nil
}

// peekDelim reports whether the next value opens an array, consuming the [.
func peekDelim(dec *json.Decoder) (bool, error) {
	// Token would consume an object's {, so arrays are told apart by the
	// decoder's view of the first byte: More on a fresh decoder reads ahead.
	if !dec.More() {
		return false, nil
	}
	buf, _ := io.ReadAll(dec.Buffered()) // More leaves the white space before the value buffered
	if t := bytes.TrimLeft(buf, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		if _, err := dec.Token(); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// trailing refuses anything but white space after an array's ].
func (o *objectReader) trailing() error {
	var extra json.RawMessage
	if err := o.dec.Decode(&extra); err != io.EOF {
		return domain.Errorf(domain.ErrInvalid, "at byte %d: more after the array's closing ]", o.dec.InputOffset())
	}
	return nil
}

func (o *objectReader) syntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return domain.Errorf(domain.ErrInvalid, "at byte %d: not JSON: %v", se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return domain.Errorf(domain.ErrInvalid, "the file ends inside a JSON value (truncated?)")
	}
	return err
}
