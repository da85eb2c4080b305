package ingest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/signature"
	"github.com/cioloader/cioloader/internal/stitch"
	"github.com/cioloader/cioloader/internal/token"
	"github.com/cioloader/cioloader/internal/webhook"
)

// TargetFinder finds what a webhook token opens, by the token's hash. Unknown,
// revoked and disabled all give domain.ErrNotFound.
type TargetFinder interface {
	FindTarget(ctx context.Context, tokenHash []byte) (domain.Target, error)
}

// Submitter commits a prepared request: a nil error means it is committed (Batcher).
type Submitter interface {
	Submit(ctx context.Context, r *Request) error
}

// Usage records what became of deliveries whose token resolved. The calls
// are cheap and in memory; the store writes them in the background.
type Usage interface {
	// MarkUsed records that a URL's delivery was committed (last_used_at).
	MarkUsed(urlID int64)
	// RecordActivity counts a committed delivery's events, received at at, by
	// (object_type, metric).
	RecordActivity(integrationID int64, at time.Time, counts map[domain.ActivityKey]int64)
	// RecordRefusal counts a delivery refused as a whole.
	RecordRefusal(integrationID int64, reason domain.RefusalReason, at time.Time)
}

// ServiceConfig bounds what one delivery may hold.
type ServiceConfig struct {
	MaxEvents int // events in one body
	Limits    stitch.Limits
	SigWindow signature.Window
}

// Service is the ingest use case: token → verify → decode → prepare → submit.
// The transport reads the body in between (Open, then Ingest), because
// reading it is where its own limits apply.
type Service struct {
	cfg     ServiceConfig
	targets TargetFinder
	submit  Submitter
	usage   Usage
	seq     *Sequencer
	m       *metrics.Metrics
	now     func() time.Time
}

// NewService builds the use case over targets, submit and usage (now:
// time.Now when nil).
func NewService(cfg ServiceConfig, targets TargetFinder, submit Submitter, usage Usage, m *metrics.Metrics, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, targets: targets, submit: submit, usage: usage, seq: NewSequencer(now), m: m, now: now}
}

// Delivery is one webhook delivery as the transport received it.
type Delivery struct {
	Target     domain.Target
	ReceivedAt time.Time
	Timestamp  string // X-CIO-Timestamp
	Signature  string // X-CIO-Signature
	Body       []byte // untouched: the signature covers these bytes
	// Admit, when set, is asked once the body is decoded, before its events
	// are prepared (decoded events cost memory the transport budgets); an
	// error refuses the delivery and is returned as is.
	Admit func(events int) error
}

// Result is what a committed delivery held.
type Result struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
}

// errUnknownToken is the one answer for unknown, revoked and malformed tokens.
var errUnknownToken = domain.Errorf(domain.ErrNotFound, "unknown or revoked webhook URL")

// Open finds what tok opens. A token that cannot be one is refused without a look-up.
func (s *Service) Open(ctx context.Context, tok string) (domain.Target, error) {
	if !token.Plausible(tok) {
		return domain.Target{}, errUnknownToken
	}
	return s.targets.FindTarget(ctx, token.Hash(tok))
}

// Ingest verifies, decodes, prepares and commits d. A nil error means every
// accepted event is committed, and only then is the URL marked used; an
// error is counted as the integration's refusal (see Refused), and a commit as
// its activity.
func (s *Service) Ingest(ctx context.Context, d Delivery) (Result, error) {
	res, req, err := s.ingest(ctx, d)
	if err != nil {
		s.Refused(d.Target, err)
		return Result{}, err
	}
	s.usage.MarkUsed(d.Target.URLID)
	s.usage.RecordActivity(d.Target.IntegrationID, d.ReceivedAt, Activity(req))
	s.m.LastEvent.WithLabelValues(d.Target.Schema).Set(float64(s.now().UnixMilli()) / 1000)
	return res, nil
}

// Refused counts a delivery to t refused with err, by the kind of err (the
// transport calls it too, for a body it could not read). An unknown error is
// answered 503, so it counts as unavailable.
func (s *Service) Refused(t domain.Target, err error) {
	reason := refusalReason(err)
	s.m.Refused.WithLabelValues(t.Schema, string(reason)).Inc()
	s.usage.RecordRefusal(t.IntegrationID, reason, s.now())
}

func refusalReason(err error) domain.RefusalReason {
	switch {
	case errors.Is(err, domain.ErrUnauthorized):
		return domain.RefusedSignature
	case errors.Is(err, domain.ErrTooManyEvents):
		return domain.RefusedTooManyEvents
	case errors.Is(err, domain.ErrInvalid):
		return domain.RefusedNotJSON
	case errors.Is(err, domain.ErrTooLarge):
		return domain.RefusedTooLarge
	}
	return domain.RefusedUnavailable
}

func (s *Service) ingest(ctx context.Context, d Delivery) (Result, *Request, error) {
	if d.Target.SigningKey != nil {
		if err := s.verify(d); err != nil {
			return Result{}, nil, err
		}
	}
	batch, err := webhook.Decode(d.Body, s.cfg.MaxEvents)
	var inv *webhook.InvalidError
	if errors.As(err, &inv) && inv.TooManyEvents {
		return Result{}, nil, domain.Errorf(domain.ErrTooManyEvents, "%s", inv.Msg)
	}
	if errors.As(err, &inv) {
		return Result{}, nil, domain.Errorf(domain.ErrInvalid, "%s", inv.Msg)
	}
	if err != nil {
		return Result{}, nil, err
	}
	if d.Admit != nil {
		if err := d.Admit(len(batch.Events) + len(batch.Rejected)); err != nil {
			return Result{}, nil, err
		}
	}
	res := Result{Accepted: len(batch.Events), Rejected: len(batch.Rejected)}
	req := Prepare(d.Target.Schema, d.ReceivedAt, batch, s.seq, s.cfg.Limits)
	// batch is not used past this point, so its decoded bodies (the largest
	// part of a delivery in memory) can be collected while the request waits
	// for its commit.
	if err := s.submit.Submit(ctx, req); err != nil {
		return Result{}, nil, err
	}
	return res, req, nil
}

// verify checks the Customer.io signature on the untouched body bytes.
func (s *Service) verify(d Delivery) error {
	age, err := signature.Verify(d.Target.SigningKey, d.Timestamp, d.Signature, d.Body, s.now(), s.cfg.SigWindow)
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
