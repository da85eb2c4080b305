package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/cioloader/cioloader/internal/domain"
)

// ReaderStore is what reader access needs from the database (postgres.Store).
type ReaderStore interface {
	GrantReader(ctx context.Context, schema, role, password string) error
	RevokeReader(ctx context.Context, schema, role string) error
	ListReaders(ctx context.Context, schema string) ([]domain.Reader, error)
	ReaderURL(role, password string) (string, error)
}

// roleName is a plain Postgres identifier: one that needs no quoting, so the
// name an analyst types in psql or a BI tool is the role's name.
var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// reservedRoles are names Postgres gives a meaning of its own in a GRANT
// (public is everyone) or keeps for itself (pg_*).
var reservedRoles = map[string]bool{"public": true, "none": true, "current_user": true, "session_user": true, "current_role": true}

// CheckRoleName refuses a role name that is not a plain identifier, or that
// Postgres reserves.
func CheckRoleName(role string) error {
	switch {
	case !roleName.MatchString(role):
		return domain.Errorf(domain.ErrInvalid, "role %q is not a plain identifier: use lower-case letters, digits and _ (at most 63, not starting with a digit)", role)
	case reservedRoles[role] || strings.HasPrefix(role, "pg_"):
		return domain.Errorf(domain.ErrInvalid, "role %q is reserved by Postgres: choose another name", role)
	}
	return nil
}

// GrantReader gives role read-only access to the integration's schema, now
// and for what cioloader creates there later (SPEC 10.14). With create it
// makes role a LOGIN role with a generated password and returns it with a
// connection URL, shown this once; otherwise the role must exist, and the
// result is nil.
func (s *Service) GrantReader(ctx context.Context, integrationID int64, role string, create bool) (*domain.NewReader, error) {
	if err := CheckRoleName(role); err != nil {
		return nil, err
	}
	in, err := s.Store.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	if !create {
		return nil, s.Store.GrantReader(ctx, in.Schema, role, "")
	}
	password, err := newPassword()
	if err != nil {
		return nil, err
	}
	u, err := s.Store.ReaderURL(role, password)
	if err != nil {
		return nil, err
	}
	if err := s.Store.GrantReader(ctx, in.Schema, role, password); err != nil {
		return nil, err
	}
	return &domain.NewReader{Role: role, Password: password, URL: u}, nil
}

// RevokeReader removes every right GrantReader gave role on the
// integration's schema; the role itself stays.
func (s *Service) RevokeReader(ctx context.Context, integrationID int64, role string) error {
	if err := CheckRoleName(role); err != nil {
		return err
	}
	in, err := s.Store.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return err
	}
	return s.Store.RevokeReader(ctx, in.Schema, role)
}

// ListReaders lists the roles with read access to the integration's schema,
// as the database's grants show it (never nil).
func (s *Service) ListReaders(ctx context.Context, integrationID int64) ([]domain.Reader, error) {
	in, err := s.Store.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	return nonNil(s.Store.ListReaders(ctx, in.Schema))
}

// newPassword is 24 random bytes, URL-safe base64 (32 characters): nothing
// to escape in a URL or a shell.
func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
