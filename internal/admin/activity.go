package admin

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/rudder"
)

// Activity window bounds, in hours: the default, and the largest (the
// counters keep 35 days).
const (
	DefaultActivityHours = 24
	MaxActivityHours     = 720
)

// Activity is what an integration received per hour over the last Hours
// hours, the current one included, from the activity counters kept at
// ingest. They count deliveries received (a retried one counts again);
// replay and erasure do not change them.
type Activity struct {
	IntegrationID int64     `json:"integration_id"`
	Hours         int       `json:"hours"`
	From          time.Time `json:"from"` // start of the first bucket
	To            time.Time `json:"to"`   // end of the last (the end of the current hour)
	Total         int64     `json:"total"`
	// ObjectTypes are the window's object types, most events first ("" for
	// events without a string object_type).
	ObjectTypes []ObjectTypeCount `json:"object_types"`
	// Buckets holds every hour of the window, oldest first, zeros included.
	Buckets []ActivityBucket `json:"buckets"`
	// Events counts the window's events by RudderStack event name, most first.
	Events []EventCount `json:"events"`
}

// ActivityBucket is one hour (UTC) of Activity.
type ActivityBucket struct {
	Hour         time.Time        `json:"hour"`
	Count        int64            `json:"count"`
	ByObjectType map[string]int64 `json:"by_object_type"`
}

// ObjectTypeCount is the events of one object type in the window.
type ObjectTypeCount struct {
	ObjectType string `json:"object_type"`
	Count      int64  `json:"count"`
}

// EventCount is the events of one name in the window, and when the last one
// was received.
type EventCount struct {
	Event  string    `json:"event"`
	Count  int64     `json:"count"`
	LastAt time.Time `json:"last_at"`
}

// Activity returns an integration's events per hour over the last hours
// hours (0: DefaultActivityHours).
func (s *Service) Activity(ctx context.Context, integrationID int64, hours int) (Activity, error) {
	if hours == 0 {
		hours = DefaultActivityHours
	}
	if hours < 1 || hours > MaxActivityHours {
		return Activity{}, domain.Errorf(domain.ErrInvalid, "hours must be a whole number between 1 and %d", MaxActivityHours)
	}
	if _, err := s.Store.FindIntegrationByID(ctx, integrationID); err != nil {
		return Activity{}, err
	}
	from := s.now().UTC().Truncate(time.Hour).Add(-time.Duration(hours-1) * time.Hour)
	counts, err := s.Store.ListActivity(ctx, integrationID, from)
	if err != nil {
		return Activity{}, err
	}
	a := summarize(counts, from, hours)
	a.IntegrationID = integrationID
	return a, nil
}

// summarize puts counts into hours buckets from from on; counts outside the
// window are left out.
func summarize(counts []domain.ActivityCount, from time.Time, hours int) Activity {
	a := Activity{Hours: hours, From: from, To: from.Add(time.Duration(hours) * time.Hour),
		Buckets: make([]ActivityBucket, hours), ObjectTypes: []ObjectTypeCount{}, Events: []EventCount{}}
	for i := range a.Buckets {
		a.Buckets[i] = ActivityBucket{Hour: from.Add(time.Duration(i) * time.Hour), ByObjectType: map[string]int64{}}
	}
	types := map[string]int64{}
	events := map[string]EventCount{}
	for _, c := range counts {
		i := int(c.Hour.Sub(from) / time.Hour)
		if c.Hour.Before(from) || i >= hours {
			continue
		}
		b := &a.Buckets[i]
		b.Count += c.Events
		b.ByObjectType[c.Key.ObjectType] += c.Events
		a.Total += c.Events
		types[c.Key.ObjectType] += c.Events
		name := rudder.EventName(c.Key.ObjectType, c.Key.Metric)
		e := events[name]
		e.Event, e.Count, e.LastAt = name, e.Count+c.Events, latest(e.LastAt, c.LastAt)
		events[name] = e
	}
	for t, n := range types {
		a.ObjectTypes = append(a.ObjectTypes, ObjectTypeCount{t, n})
	}
	slices.SortFunc(a.ObjectTypes, func(x, y ObjectTypeCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.ObjectType, y.ObjectType))
	})
	for _, e := range events {
		a.Events = append(a.Events, e)
	}
	slices.SortFunc(a.Events, func(x, y EventCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Event, y.Event))
	})
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// recentSince is the start of the window of the list's events_24h: the
// current hour and the 23 before it, as Activity's default window.
func (s *Service) recentSince() time.Time {
	return s.now().UTC().Truncate(time.Hour).Add(-(DefaultActivityHours - 1) * time.Hour)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
