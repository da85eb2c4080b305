package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/domain"
)

// requireAdmin checks the bearer token in constant time (hashes of equal
// length, so neither content nor length leaks).
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.opt.AdminToken == "" {
			return domain.Errorf(domain.ErrUnauthorized, "the admin API is disabled: set CIOLOADER_ADMIN_TOKEN")
		}
		got, ok := bearer(c.Request().Header.Get("Authorization"))
		want := sha256.Sum256([]byte(s.opt.AdminToken))
		have := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="cioloader"`)
			return domain.Errorf(domain.ErrUnauthorized, "missing or wrong admin token: send Authorization: Bearer $CIOLOADER_ADMIN_TOKEN")
		}
		return next(c)
	}
}

// bearer returns the credentials of an Authorization header of the Bearer
// scheme, whose name is case-insensitive (RFC 9110, section 11.1).
func bearer(header string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(cred), true
}

// bind decodes a small JSON body strictly into v.
func bind(c echo.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return domain.Errorf(domain.ErrInvalid, "request body must be a JSON object: %v", err)
	}
	return nil
}

func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, domain.Errorf(domain.ErrNotFound, "%s %q does not exist", strings.ReplaceAll(name, "_", " "), c.Param(name))
	}
	return id, nil
}

func (s *Server) createIntegration(c echo.Context) error {
	var body struct {
		Name string `json:"name"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	in, err := s.admin.CreateIntegration(c.Request().Context(), body.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, in)
}

func (s *Server) listIntegrations(c echo.Context) error {
	list, err := s.admin.ListWithActivity(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (s *Server) getIntegration(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	d, err := s.admin.Detail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if d.URLs == nil {
		d.URLs = []domain.WebhookURL{}
	}
	return c.JSON(http.StatusOK, d)
}

// countParam reads an optional count from the query: 0 when absent (the
// service's default), -1 when it is not a number or is 0, which admin.Service
// refuses with the allowed range.
func countParam(c echo.Context, name string) int {
	q := c.QueryParam(name)
	if q == "" {
		return 0
	}
	n, err := strconv.Atoi(q)
	if err != nil || n == 0 {
		return -1
	}
	return n
}

// listRejections: GET /v1/integrations/{id}/rejections?limit=N.
func (s *Server) listRejections(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	list, err := s.admin.Rejections(c.Request().Context(), id, countParam(c, "limit"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

// integrationActivity: GET /v1/integrations/{id}/activity?hours=N.
func (s *Server) integrationActivity(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	a, err := s.admin.Activity(c.Request().Context(), id, countParam(c, "hours"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) deleteIntegration(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := s.admin.DeleteIntegration(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) generateURL(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	u, err := s.admin.GenerateURL(c.Request().Context(), id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, u)
}

func (s *Server) listURLs(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	list, err := s.admin.ListURLs(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (s *Server) revokeURL(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	urlID, err := pathID(c, "url_id")
	if err != nil {
		return err
	}
	if err := s.admin.RevokeURL(c.Request().Context(), id, urlID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) setSigningKey(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var body struct {
		Key string `json:"key"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	if err := s.admin.SetSigningKey(c.Request().Context(), id, body.Key); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) clearSigningKey(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.admin.ClearSigningKey(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.ready.Ready(c.Request().Context()); err != nil {
		return domain.Errorf(domain.ErrUnavailable, "not ready: %v", err)
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
