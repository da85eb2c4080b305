package admin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/rudder"
)

// Ensure the counters become one bucket per hour, zeros included, a
// breakdown by object type and a list by event name, most events first;
// counts outside the window are left out.
func TestSummarizeActivity(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return from.Add(time.Duration(h)*time.Hour + time.Minute) }
	count := func(h int, ot, m string, n int64) domain.ActivityCount {
		return domain.ActivityCount{Hour: from.Add(time.Duration(h) * time.Hour), Key: domain.ActivityKey{ObjectType: ot, Metric: m}, Events: n, LastAt: at(h)}
	}
	a := summarize([]domain.ActivityCount{
		count(-1, "email", "opened", 100), // before the window
		count(0, "email", "opened", 2),
		count(0, "push", "sent", 1),
		count(2, "EMAIL", "opened", 3), // named as "email"
		count(2, "", "", 1),
		count(2, "email", "nonsense", 4), // Unknown Event too
		count(4, "email", "opened", 100), // after the window
	}, from, 4)

	require.Equal(t, 4, a.Hours)
	require.Equal(t, from, a.From)
	require.Equal(t, from.Add(4*time.Hour), a.To)
	require.EqualValues(t, 11, a.Total)
	require.Len(t, a.Buckets, 4)
	for i, b := range a.Buckets {
		require.Equal(t, from.Add(time.Duration(i)*time.Hour), b.Hour)
	}
	require.Equal(t, []int64{3, 0, 8, 0}, []int64{a.Buckets[0].Count, a.Buckets[1].Count, a.Buckets[2].Count, a.Buckets[3].Count})
	require.Equal(t, map[string]int64{"email": 2, "push": 1}, a.Buckets[0].ByObjectType)
	require.Equal(t, map[string]int64{}, a.Buckets[1].ByObjectType, "an empty hour is an empty map, not null")
	require.Equal(t, map[string]int64{"EMAIL": 3, "": 1, "email": 4}, a.Buckets[2].ByObjectType)
	require.Equal(t, []ObjectTypeCount{{"email", 6}, {"EMAIL", 3}, {"", 1}, {"push", 1}}, a.ObjectTypes)
	require.Equal(t, []EventCount{
		{Event: "Email Opened", Count: 5, LastAt: at(2)},
		{Event: rudder.UnknownEvent, Count: 5, LastAt: at(2)},
		{Event: "Push Sent", Count: 1, LastAt: at(0)},
	}, a.Events)

	empty := summarize(nil, from, 2)
	require.Equal(t, []ObjectTypeCount{}, empty.ObjectTypes)
	require.Equal(t, []EventCount{}, empty.Events)
	require.Len(t, empty.Buckets, 2)
}
