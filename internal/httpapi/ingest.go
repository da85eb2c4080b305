package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/budget"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/ingest"
	"github.com/cioloader/cioloader/internal/signature"
	"github.com/cioloader/cioloader/internal/token"
	"github.com/cioloader/cioloader/internal/webhook"
)

// errUnknownToken is the one answer for unknown, revoked and malformed tokens.
var errUnknownToken = domain.Errorf(domain.ErrNotFound, "unknown or revoked webhook URL")

// ingestResponse is the 200 body: every accepted event is committed.
type ingestResponse struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
}

// ingest handles POST /v1/webhooks/{token} and the RudderStack-compatible
// POST /v1/webhook?writeKey= (or Basic auth with the token as user name).
func (s *Server) ingest(c echo.Context) error {
	ctx := c.Request().Context()
	receivedAt := s.now().UTC()
	tok := ingestToken(c)
	if !token.Plausible(tok) {
		return errUnknownToken
	}
	target, err := s.tokens.FindTarget(ctx, token.Hash(tok))
	if err != nil {
		return err
	}
	body, lease, err := s.readBody(c, target.IntegrationID)
	defer s.release(lease)
	if err != nil {
		return err
	}
	if target.SigningKey != nil {
		if err := s.verify(c.Request(), target.SigningKey, body); err != nil {
			return err
		}
	}
	batch, err := webhook.Decode(body, s.opt.MaxEvents)
	var inv *webhook.InvalidError
	if errors.As(err, &inv) {
		return domain.Errorf(domain.ErrInvalid, "%s", inv.Msg)
	}
	if err != nil {
		return err
	}
	if err := s.grow(lease, budget.EventBytes*int64(len(batch.Events)+len(batch.Rejected))); err != nil {
		return overBudget(err) // decoded events cost more than their bytes: refused before preparing them
	}
	req := ingest.Prepare(target.Schema, receivedAt, batch, s.seq, s.opt.Limits)
	if err := s.submit.Submit(ctx, req); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ingestResponse{Accepted: len(batch.Events), Rejected: len(batch.Rejected)})
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

// verify checks the Customer.io signature on the untouched body bytes.
func (s *Server) verify(r *http.Request, key, body []byte) error {
	age, err := signature.Verify(key, r.Header.Get("X-CIO-Timestamp"), r.Header.Get("X-CIO-Signature"), body, s.now(), s.opt.SigWindow)
	if err != nil {
		s.m.SignatureFailure.WithLabelValues(sigReason(err)).Inc()
		return domain.Errorf(domain.ErrUnauthorized, "%s", err.Error())
	}
	s.m.SignatureAge.Observe(age.Seconds())
	return nil
}

func sigReason(err error) string {
	r := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, signature.ErrMissing):
		return "missing"
	case errors.Is(err, signature.ErrTimestamp):
		return "bad_timestamp"
	case errors.Is(err, signature.ErrTooNew):
		return "too_new"
	case errors.Is(err, signature.ErrTooOld):
		return "too_old"
	case strings.Contains(r, "match"):
		return "mismatch"
	}
	return "other"
}
