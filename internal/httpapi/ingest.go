package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

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
	body, release, err := s.readBody(c.Request())
	defer release()
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

// readBody reads the whole body within the size limit and the global
// in-flight budget. release must be called once the request is answered.
func (s *Server) readBody(r *http.Request) ([]byte, func(), error) {
	noop := func() {}
	limit := s.opt.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, noop, tooLarge(limit)
	}
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = limit
	}
	if s.inflight.Add(reserve) > s.opt.InflightBytes {
		s.inflight.Add(-reserve)
		return nil, noop, domain.Errorf(domain.ErrUnavailable, "the server is holding too many request bytes; retry shortly")
	}
	s.m.InflightBytes.Add(float64(reserve))
	release := func() {
		s.inflight.Add(-reserve)
		s.m.InflightBytes.Sub(float64(reserve))
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, release, tooLarge(limit)
	case err != nil && !errors.Is(err, io.EOF):
		// A body cut short or too slow is the connection's trouble, not the
		// event's: answer 503 so the sender retries. No addresses in the message.
		return nil, release, domain.Errorf(domain.ErrUnavailable, "the request body could not be read completely; retry")
	}
	return buf.Bytes(), release, nil
}

func tooLarge(limit int64) error {
	return domain.Errorf(domain.ErrTooLarge, "request body is larger than %d bytes", limit)
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
