package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cioloader/cioloader/internal/budget"
	"github.com/cioloader/cioloader/internal/domain"
)

// readingKey marks a request whose body readBody began to read (and so, for
// Expect: 100-continue, whose client was told to send it).
const readingKey = "reading_body"

// deadlineKey holds the body deadline readBody set, which linger keeps to.
const deadlineKey = "body_deadline"

// lingerBodies bounds the drain in linger, in maximum bodies: enough for a
// body a few times over the limit to be sent through; nothing read is kept.
const lingerBodies = 4

// readBody reads the whole body within the size limit, the body timeout and
// the in-flight budget of integration. Memory is charged MemoryFactor times
// every chunk as it arrives; a declared Content-Length only admits the
// request (see admit). The returned lease must be released once the request
// is answered.
func (s *Server) readBody(c echo.Context, integration int64) ([]byte, *budget.Lease, error) {
	lease := s.inflight.Lease(integration)
	// Far shorter than the server's 30 s ReadTimeout: Customer.io gives up after 4 s.
	deadline := time.Now().Add(s.opt.BodyTimeout)
	_ = http.NewResponseController(c.Response()).SetReadDeadline(deadline)
	c.Set(deadlineKey, deadline)
	if err := s.admit(c, lease); err != nil {
		return nil, lease, err
	}
	c.Set(readingKey, true)
	var buf bytes.Buffer
	if n := c.Request().ContentLength; n > 0 {
		// One allocation of the declared size (admit has checked it against the
		// limit), plus the spare room ReadFrom wants before it sees EOF.
		buf.Grow(int(n) + bytes.MinRead)
	}
	body := &chargingReader{r: c.Request().Body, charge: func(n int) error { return s.grow(lease, s.opt.MemoryFactor*int64(n)) }}
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, io.NopCloser(body), s.opt.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, lease, s.refuse(c, tooLarge(s.opt.MaxBodyBytes))
	case errors.Is(err, budget.ErrFull), errors.Is(err, budget.ErrShare):
		return nil, lease, s.refuse(c, overBudget(err))
	case err != nil && !errors.Is(err, io.EOF):
		// A body cut short or too slow is the connection's trouble, not the
		// event's: answer 503 so the sender retries. No addresses in the message.
		return nil, lease, domain.Errorf(domain.ErrUnavailable, "the request body could not be read completely in %s; retry", s.opt.BodyTimeout)
	}
	return buf.Bytes(), lease, nil
}

// admit refuses a body whose declared length is over the limit, and admits
// one for what its length will cost (a promise, drawn on as bytes arrive) or
// refuses it before reading when that cannot fit now. Concurrent large bodies
// then queue on 503s instead of all being cut off half-read; a promise lasts
// at most the body timeout and counts against its own integration's share.
func (s *Server) admit(c echo.Context, lease *budget.Lease) error {
	n := c.Request().ContentLength
	if n > s.opt.MaxBodyBytes {
		return s.refuse(c, tooLarge(s.opt.MaxBodyBytes))
	}
	if n <= 0 {
		return nil
	}
	if err := lease.Promise(s.opt.MemoryFactor * n); err != nil {
		return s.refuse(c, overBudget(err))
	}
	return nil
}

// grow charges lease n bytes and keeps the gauge in step.
func (s *Server) grow(lease *budget.Lease, n int64) error {
	if err := lease.Grow(n); err != nil {
		return err
	}
	s.m.InflightBytes.Add(float64(n))
	return nil
}

// release returns what lease holds.
func (s *Server) release(lease *budget.Lease) {
	s.m.InflightBytes.Sub(float64(lease.Held()))
	lease.Release()
}

func tooLarge(limit int64) error {
	return domain.Errorf(domain.ErrTooLarge, "request body is larger than %d bytes", limit)
}

// overBudgetOr is overBudget(err), or nil when err is nil.
func overBudgetOr(err error) error {
	if err == nil {
		return nil
	}
	return overBudget(err)
}

func overBudget(err error) error {
	if errors.Is(err, budget.ErrShare) {
		return domain.Errorf(domain.ErrUnavailable, "this integration is sending more than its share of the server's memory at once; retry shortly")
	}
	return domain.Errorf(domain.ErrUnavailable, "the server is holding too many request bytes; retry shortly")
}

// refuse answers err before the body is read through: the connection is
// closed after the answer (and linger drains the body first).
func (s *Server) refuse(c echo.Context, err error) error {
	c.Response().Header().Set(echo.HeaderConnection, "close")
	return err
}

// linger runs after the answer is written (it wraps observe). When an ingest
// request is refused with body left unread (413, 503, 404 …), it sends the
// answer, then reads and drops up to lingerBodies × MaxBodyBytes of the body
// within the body timeout, so that a client that sends its whole body before
// reading finishes sending and reads the answer: closing on unread bytes
// makes the kernel send a reset, which the client sees instead of the
// answer. A longer or slower body is cut by the close. The drain keeps to the
// body deadline when readBody set one, so a slow body is not given more time.
func (s *Server) linger(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if !mustDrain(c) {
			return err
		}
		rc := http.NewResponseController(c.Response())
		_ = rc.Flush()
		if _, set := c.Get(deadlineKey).(time.Time); !set {
			_ = rc.SetReadDeadline(time.Now().Add(s.opt.BodyTimeout))
		}
		_, _ = io.CopyN(io.Discard, c.Request().Body, lingerBodies*s.opt.MaxBodyBytes)
		return err
	}
}

// mustDrain: an ingest request answered with an error may have body left. A
// client that waits for "100 Continue" (which net/http sends only once the
// body is read) sends no body when the answer comes first: nothing to drain.
func mustDrain(c echo.Context) bool {
	if !isIngest(c) || c.Response().Status < http.StatusBadRequest {
		return false
	}
	reading, _ := c.Get(readingKey).(bool)
	return reading || c.Request().Header.Get("Expect") == ""
}

// chargingReader charges every chunk it reads before handing it on.
type chargingReader struct {
	r      io.Reader
	charge func(n int) error
}

func (cr *chargingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 {
		if cerr := cr.charge(n); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}
