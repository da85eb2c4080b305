package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/budget"
	"github.com/cioloader/cioloader/internal/ingest"
)

// ingest handles POST /v1/webhooks/{token} and the RudderStack-compatible
// POST /v1/webhook?writeKey= (or Basic auth with the token as user name). The
// use case is ingest.Service's; the handler owns the body: its size limit,
// timeout and memory budget (see readBody). The 200 body counts the events
// accepted (every one committed) and rejected.
func (s *Server) ingest(c echo.Context) error {
	ctx := c.Request().Context()
	receivedAt := s.now().UTC()
	target, err := s.ingester.Open(ctx, ingestToken(c))
	if err != nil {
		return err
	}
	body, lease, err := s.readBody(c, target.IntegrationID)
	defer s.release(lease)
	if err != nil {
		s.ingester.Refused(target, err)
		return err
	}
	res, err := s.ingester.Ingest(ctx, ingest.Delivery{
		Target: target, ReceivedAt: receivedAt, Body: body,
		Timestamp: c.Request().Header.Get("X-CIO-Timestamp"), Signature: c.Request().Header.Get("X-CIO-Signature"),
		// Decoded events cost more than their bytes: refused before they are prepared.
		Admit: func(events int) error { return overBudgetOr(s.grow(lease, budget.EventBytes*int64(events))) },
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func ingestToken(c echo.Context) string {
	if t := c.Param("token"); t != "" {
		return t
	}
	if t := c.QueryParam("writeKey"); t != "" {
		return t
	}
	if user, _, ok := c.Request().BasicAuth(); ok {
		return user
	}
	return ""
}
