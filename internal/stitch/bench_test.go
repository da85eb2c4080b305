package stitch

import "testing"

// BenchmarkFlatten measures one realistic ~1 KB email_sent event, the most
// common large Customer.io payload (body content and headers included).
func BenchmarkFlatten(b *testing.B) {
	ev := decode(b, emailSent)
	lim := Limits{MaxDepth: 10, MaxKeys: 1000}
	b.ReportAllocs()
	b.SetBytes(int64(len(emailSent)))
	for b.Loop() {
		_ = Flatten(ev, lim)
	}
}

// BenchmarkFlattenPush measures an event with a subtable (push data.recipients).
func BenchmarkFlattenPush(b *testing.B) {
	ev := decode(b, pushSent)
	lim := Limits{MaxDepth: 10, MaxKeys: 1000}
	b.ReportAllocs()
	for b.Loop() {
		_ = Flatten(ev, lim)
	}
}
