package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/metrics"
	"github.com/cioloader/cioloader/internal/signature"
	"github.com/cioloader/cioloader/internal/stitch"
	"github.com/cioloader/cioloader/internal/token"
)

type fakeTargets struct {
	looked int
	target domain.Target
}

func (f *fakeTargets) FindTarget(_ context.Context, hash []byte) (domain.Target, error) {
	f.looked++
	return f.target, nil
}

type fakeUsage struct {
	used     []int64
	refused  []domain.RefusalReason
	activity []activityCall
}

type activityCall struct {
	integration int64
	at          time.Time
	counts      map[domain.ActivityKey]int64
}

func (f *fakeUsage) MarkUsed(urlID int64) { f.used = append(f.used, urlID) }

func (f *fakeUsage) RecordActivity(id int64, at time.Time, counts map[domain.ActivityKey]int64) {
	f.activity = append(f.activity, activityCall{id, at, counts})
}

func (f *fakeUsage) RecordRefusal(_ int64, r domain.RefusalReason, _ time.Time) {
	f.refused = append(f.refused, r)
}

type fakeSubmitter struct{ got []*Request }

func (f *fakeSubmitter) Submit(_ context.Context, r *Request) error {
	f.got = append(f.got, r)
	return nil
}

func newTestService() (*Service, *fakeTargets, *fakeSubmitter) {
	s, tg, sub, _ := newTestServiceUsage()
	return s, tg, sub
}

func newTestServiceUsage() (*Service, *fakeTargets, *fakeSubmitter, *fakeUsage) {
	tg := &fakeTargets{target: domain.Target{URLID: 1, IntegrationID: 2, Schema: "shop"}}
	sub := &fakeSubmitter{}
	u := &fakeUsage{}
	cfg := ServiceConfig{MaxEvents: 10, Limits: stitch.Limits{MaxDepth: 10, MaxKeys: 1000}, SigWindow: signature.Window{MaxFuture: 300 * time.Second, MaxAge: 8 * 24 * time.Hour}}
	return NewService(cfg, tg, sub, u, metrics.New(), nil), tg, sub, u
}

// Ensure a string that cannot be a token is refused as unknown without a look-up.
func TestServiceOpenImplausibleToken(t *testing.T) {
	t.Parallel()
	s, tg, _ := newTestService()
	_, err := s.Open(context.Background(), "nope")
	require.ErrorIs(t, err, domain.ErrNotFound)
	require.Zero(t, tg.looked)
	tok, err := token.New()
	require.NoError(t, err)
	got, err := s.Open(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, "shop", got.Schema)
}

// Ensure a delivery is decoded, admitted, prepared for its target's schema and submitted.
func TestServiceIngest(t *testing.T) {
	t.Parallel()
	s, tg, sub := newTestService()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var admitted int
	res, err := s.Ingest(context.Background(), Delivery{Target: tg.target, ReceivedAt: at,
		Body: []byte(`[{"event_id":"a"},{"nope":1}]`), Admit: func(n int) error { admitted = n; return nil }})
	require.NoError(t, err)
	require.Equal(t, Result{Accepted: 1, Rejected: 1}, res)
	require.Equal(t, 2, admitted)
	require.Len(t, sub.got, 1)
	require.Equal(t, "shop", sub.got[0].Schema)
	require.Equal(t, at, sub.got[0].ReceivedAt)
}

// Ensure each refusal comes before anything is submitted, with its domain error.
func TestServiceIngestRefusals(t *testing.T) {
	t.Parallel()
	full := errors.New("budget full")
	for _, tc := range []struct {
		name string
		d    Delivery
		want error
	}{
		{"unsigned", Delivery{Target: domain.Target{SigningKey: []byte("k")}, Body: []byte(`{"event_id":"a"}`)}, domain.ErrUnauthorized},
		{"invalid", Delivery{Body: []byte(`{`)}, domain.ErrInvalid},
		{"over budget", Delivery{Body: []byte(`{"event_id":"a"}`), Admit: func(int) error { return full }}, full},
	} {
		s, _, sub := newTestService()
		_, err := s.Ingest(context.Background(), tc.d)
		require.ErrorIs(t, err, tc.want, tc.name)
		require.Empty(t, sub.got, tc.name)
	}
}

// Ensure a refusal is counted by the kind of its error, and only a committed
// delivery marks its URL used.
func TestServiceRefusalReasons(t *testing.T) {
	t.Parallel()
	eleven := "[" + strings.Repeat(`{"event_id":"a"},`, 10) + `{"event_id":"b"}]`
	for _, tc := range []struct {
		name string
		d    Delivery
		want domain.RefusalReason
	}{
		{"unsigned", Delivery{Target: domain.Target{SigningKey: []byte("k")}, Body: []byte(`{"event_id":"a"}`)}, domain.RefusedSignature},
		{"not json", Delivery{Body: []byte(`{`)}, domain.RefusedNotJSON},
		{"too many events", Delivery{Body: []byte(eleven)}, domain.RefusedTooManyEvents},
		{"over budget", Delivery{Body: []byte(`{"event_id":"a"}`), Admit: func(int) error { return errors.New("full") }}, domain.RefusedUnavailable},
	} {
		s, _, _, u := newTestServiceUsage()
		_, err := s.Ingest(context.Background(), tc.d)
		require.Error(t, err, tc.name)
		require.Equal(t, []domain.RefusalReason{tc.want}, u.refused, tc.name)
		require.Empty(t, u.used, tc.name)
	}
	s, tg, _, u := newTestServiceUsage()
	s.Refused(tg.target, domain.Errorf(domain.ErrTooLarge, "big"))
	require.Equal(t, []domain.RefusalReason{domain.RefusedTooLarge}, u.refused)
	_, err := s.Ingest(context.Background(), Delivery{Target: tg.target, Body: []byte(`{"event_id":"a"}`)})
	require.NoError(t, err)
	require.Equal(t, []int64{1}, u.used)
	require.Len(t, u.refused, 1)
}

// Ensure a committed delivery's events are counted by (object_type, metric),
// legacy event_type bodies split, events without them under "", rejected
// objects not at all; a refused delivery counts no activity.
func TestServiceRecordsActivity(t *testing.T) {
	t.Parallel()
	s, tg, _, u := newTestServiceUsage()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	body := `[{"event_id":"1","object_type":"email","metric":"opened"},{"event_id":"2","object_type":"email","metric":"opened"},
		{"event_id":"3","event_type":"in_app_clicked"},{"event_id":"4","object_type":7,"metric":"sent"},
		{"event_id":"5","object_type":"push","metric":"` + strings.Repeat("x", 100) + `"},{"no_id":true}]`
	_, err := s.Ingest(context.Background(), Delivery{Target: tg.target, ReceivedAt: at, Body: []byte(body)})
	require.NoError(t, err)
	require.Equal(t, []activityCall{{2, at, map[domain.ActivityKey]int64{
		{ObjectType: "email", Metric: "opened"}:                                       2,
		{ObjectType: "in_app", Metric: "clicked"}:                                     1,
		{ObjectType: "", Metric: "sent"}:                                              1,
		{ObjectType: "push", Metric: strings.Repeat("x", domain.MaxActivityKeyBytes)}: 1,
	}}}, u.activity)

	_, err = s.Ingest(context.Background(), Delivery{Target: tg.target, ReceivedAt: at, Body: []byte(`{`)})
	require.Error(t, err)
	require.Len(t, u.activity, 1, "a refused delivery is no activity")
}
