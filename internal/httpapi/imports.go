package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// listImports: GET /v1/integrations/{id}/imports, newest first: each history
// import's source, range, state, counts, last error and units' progress.
func (s *Server) listImports(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	list, err := s.admin.ListImports(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}
