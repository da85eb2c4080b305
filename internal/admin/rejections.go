package admin

import (
	"context"
	"unicode/utf8"

	"github.com/cioloader/cioloader/internal/domain"
)

// Rejection list bounds: the default and largest page, and how much of each
// record is shown (the table keeps up to 8 KiB of it).
const (
	DefaultRejections = 50
	MaxRejections     = 500
	MaxRecordBytes    = 2048
)

// Rejections returns the newest limit rows of an integration's _sdc_rejected
// (limit 0: DefaultRejections), each record cut to MaxRecordBytes on a UTF-8
// boundary (never nil).
func (s *Service) Rejections(ctx context.Context, integrationID int64, limit int) ([]domain.Rejection, error) {
	if limit == 0 {
		limit = DefaultRejections
	}
	if limit < 0 || limit > MaxRejections {
		return nil, domain.Errorf(domain.ErrInvalid, "limit must be between 1 and %d", MaxRejections)
	}
	in, err := s.Store.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	// A character is at least one byte: MaxRecordBytes+1 characters are
	// enough to cut to MaxRecordBytes and know whether anything was cut.
	list, err := nonNil(s.Store.ListRejections(ctx, in, limit, MaxRecordBytes+1))
	for i := range list {
		list[i].Record, list[i].RecordTruncated = cutUTF8(list[i].Record, MaxRecordBytes)
	}
	return list, err
}

// cutUTF8 cuts s to at most n bytes without splitting a character, and says
// whether it cut anything.
func cutUTF8(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
