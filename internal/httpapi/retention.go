package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/domain"
)

// patchIntegration: PATCH /v1/integrations/{id} {"retention_days": N|null}
// changes an integration's settings and answers 200 with the integration.
// retention_days is the only setting so far: any other key is refused, so a
// misspelt one is not silently ignored.
func (s *Server) patchIntegration(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(nil, c.Request().Body, 64<<10)).Decode(&body); err != nil || body == nil {
		return domain.Errorf(domain.ErrInvalid, `request body must be a JSON object such as {"retention_days": 395}`)
	}
	var unknown []string
	for k := range body {
		if k != "retention_days" {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return domain.Errorf(domain.ErrInvalid, `unknown setting %s: an integration's settings are "retention_days"`, unknown[0])
	}
	raw, ok := body["retention_days"]
	if !ok {
		return domain.Errorf(domain.ErrInvalid, `nothing to change: send {"retention_days": N} (days) or {"retention_days": null} (keep everything)`)
	}
	days, err := retentionDays(raw)
	if err != nil {
		return err
	}
	in, err := s.admin.SetRetention(c.Request().Context(), id, days)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, in)
}

// retentionDays reads retention_days: null, or a JSON integer (no fraction,
// no exponent, not a string); its range is the admin service's to check.
func retentionDays(raw json.RawMessage) (*int, error) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return nil, nil
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil {
		return nil, domain.Errorf(domain.ErrInvalid, "retention_days must be a whole number of days from 1 to %d, or null to keep everything (got %.40s)", domain.MaxRetentionDays, raw)
	}
	return &n, nil
}
