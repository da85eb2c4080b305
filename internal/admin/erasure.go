package admin

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/cioloader/cioloader/internal/domain"
)

// Who asked for an erasure, as recorded in its audit row.
const (
	ByAPI = "api"
	ByCLI = "cli"
)

// ErasureRequest names one person by any number of identifiers; an event is
// theirs when it names any of them (see postgres.Store.Erase for the rule).
type ErasureRequest struct {
	Emails      []string
	CustomerIDs []string // Customer.io's identifiers.id (and the deprecated customer_id)
	CioIDs      []string
}

const (
	maxIdentifiers   = 100
	maxIdentifierLen = 1024
)

// identifiers validates the request and returns its identifiers, trimmed of
// surrounding white space and deduplicated.
func (r ErasureRequest) identifiers() ([]domain.PersonIdentifier, error) {
	var out []domain.PersonIdentifier
	seen := map[domain.PersonIdentifier]bool{}
	add := func(kind, name string, values []string) error {
		for _, v := range values {
			v = strings.TrimSpace(v)
			switch {
			case v == "":
				return domain.Errorf(domain.ErrInvalid, "%s is empty: give the value Customer.io knows the person by", name)
			case strings.ContainsRune(v, 0):
				return domain.Errorf(domain.ErrInvalid, "%s contains a NUL character", name)
			case !utf8.ValidString(v):
				return domain.Errorf(domain.ErrInvalid, "%s must be valid UTF-8", name)
			case len(v) > maxIdentifierLen:
				return domain.Errorf(domain.ErrInvalid, "%s is longer than %d bytes", name, maxIdentifierLen)
			case kind == domain.KindEmail && !strings.Contains(v, "@"):
				return domain.Errorf(domain.ErrInvalid, "email %q is not an email address (no @)", v)
			}
			id := domain.PersonIdentifier{Kind: kind, Value: v}
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return nil
	}
	err := errors.Join(add(domain.KindEmail, "email", r.Emails), add(domain.KindID, "customer_id", r.CustomerIDs), add(domain.KindCioID, "cio_id", r.CioIDs))
	if err != nil {
		var de *domain.Error
		errors.As(err, &de) // the first problem is enough to act on
		return nil, de
	}
	switch {
	case len(out) == 0:
		return nil, domain.Errorf(domain.ErrInvalid, `name the person to erase: give at least one "email", "customer_id" or "cio_id"`)
	case len(out) > maxIdentifiers:
		return nil, domain.Errorf(domain.ErrInvalid, "at most %d identifiers per erasure request", maxIdentifiers)
	}
	return out, nil
}

// Erase deletes every stored event of the person from the integration's
// tables and keeps tombstones (hashes) for TombstoneTTL so re-delivered
// events of theirs are dropped. by is ByAPI or ByCLI. Unknown integration:
// ErrNotFound; no or bad identifiers: ErrInvalid.
func (s *Service) Erase(ctx context.Context, integrationID int64, req ErasureRequest, by string) (domain.Erasure, error) {
	ids, err := req.identifiers()
	if err != nil {
		return domain.Erasure{}, err
	}
	in, err := s.Store.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return domain.Erasure{}, err
	}
	if s.TombstoneTTL <= 0 {
		return domain.Erasure{}, errors.New("admin: TombstoneTTL is not configured")
	}
	return s.Store.Erase(ctx, in, ids, by, s.TombstoneTTL)
}

// ListErasures returns the integration's erasure audit rows, newest first.
func (s *Service) ListErasures(ctx context.Context, integrationID int64) ([]domain.Erasure, error) {
	return nonNil(s.Store.ListErasures(ctx, integrationID))
}
