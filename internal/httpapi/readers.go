package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/domain"
)

// listReaders: GET /v1/integrations/{id}/readers — the roles that can read
// the integration's schema, from the database's grants.
func (s *Server) listReaders(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	list, err := s.admin.ListReaders(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

// grantReader: PUT /v1/integrations/{id}/readers/{role}, body empty or
// {"create": true}. 204 when an existing role was granted (again: PUT is
// idempotent); with "create", 201 with the new role's password and URL, the
// only time they are shown.
func (s *Server) grantReader(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var body struct {
		Create bool `json:"create"`
	}
	if err := bindOptional(c, &body); err != nil {
		return err
	}
	nr, err := s.admin.GrantReader(c.Request().Context(), id, c.Param("role"), body.Create)
	if err != nil {
		return err
	}
	if nr == nil {
		return c.NoContent(http.StatusNoContent)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, nr)
}

// revokeReader: DELETE /v1/integrations/{id}/readers/{role} — 204, also when
// the role had no access; an unknown role is 404.
func (s *Server) revokeReader(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.admin.RevokeReader(c.Request().Context(), id, c.Param("role")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// bindOptional is bind for a body that may be left out (empty or blank).
func bindOptional(c echo.Context, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, c.Request().Body, 64<<10))
	if err != nil {
		return domain.Errorf(domain.ErrInvalid, "request body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return domain.Errorf(domain.ErrInvalid, "request body must be a JSON object: %v", err)
	}
	return nil
}
