package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/domain"
)

// stringList is a JSON string or an array of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var many []string
		if err := json.Unmarshal(b, &many); err != nil {
			return err
		}
		*l = many
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*l = stringList{one}
	return nil
}

// createErasure: POST /v1/integrations/{id}/erasures {"email": …, "customer_id": …, "cio_id": …}
// (each a string or an array of strings). 201 with the audit record and the
// rows deleted per table, once the deletion has committed.
func (s *Server) createErasure(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var body struct {
		Email      stringList `json:"email"`
		CustomerID stringList `json:"customer_id"`
		CioID      stringList `json:"cio_id"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	er, err := s.admin.Erase(c.Request().Context(), id, admin.ErasureRequest{
		Emails: body.Email, CustomerIDs: body.CustomerID, CioIDs: body.CioID,
	}, admin.ByAPI)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, er)
}

// listErasures: GET /v1/integrations/{id}/erasures, newest first.
func (s *Server) listErasures(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	list, err := s.admin.ListErasures(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if list == nil {
		list = []domain.Erasure{}
	}
	return c.JSON(http.StatusOK, list)
}
