package ingest

import "github.com/cioloader/cioloader/internal/domain"

// Activity counts a request's accepted events by (object_type, metric), for
// Usage.RecordActivity. Objects that are not usable events are not counted.
func Activity(r *Request) map[domain.ActivityKey]int64 {
	counts := make(map[domain.ActivityKey]int64, 4)
	for _, e := range r.Events {
		ot, _ := e.Rudder.ObjectType()
		m, _ := e.Rudder.Metric()
		counts[domain.NewActivityKey(ot, m)]++
	}
	return counts
}
