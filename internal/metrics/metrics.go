// Package metrics holds cioloader's Prometheus collectors, one registry per
// process (no package-level state), handed to the parts that count things.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the series /metrics exposes. A nil *Metrics counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	Requests         *prometheus.CounterVec   // route, status
	RequestDuration  *prometheus.HistogramVec // route
	EventsAccepted   *prometheus.CounterVec   // integration
	EventsRejected   *prometheus.CounterVec   // integration
	Unmapped         *prometheus.CounterVec   // integration: values kept only in _sdc_raw
	BatchEvents      prometheus.Histogram
	BatchRequests    prometheus.Histogram
	BatchedEvents    *prometheus.CounterVec // batch: events committed, by the size of the batch that held them
	CommitSeconds    prometheus.Histogram
	QueueDepth       prometheus.Gauge
	InflightBytes    prometheus.Gauge
	SchemaChanges    *prometheus.CounterVec // integration, kind (column, table)
	Replaced         prometheus.Counter
	SignatureFailure *prometheus.CounterVec // reason
	SignatureAge     prometheus.Histogram
	WriteFailures    *prometheus.CounterVec // kind
	EventsErased     *prometheus.CounterVec // integration: data rows deleted by erasure requests
	TombstoneDrops   *prometheus.CounterVec // integration: events of erased people dropped at ingest
	Refused          *prometheus.CounterVec // integration, reason: deliveries refused as a whole
	ImportedReplaced *prometheus.CounterVec // integration: imported events replaced by their webhook copy
	LastEvent        *prometheus.GaugeVec   // integration: Unix time of the last committed delivery
	RevokedPosts     *prometheus.CounterVec // integration: posts to a revoked URL (answered 404 like any unknown token)
	DatabaseUp       prometheus.Gauge       // 1 while the database answers the health probe
	EventsPruned     *prometheus.CounterVec // integration: events deleted for being older than the retention window
}

// New creates the collectors on a fresh registry, with Go and process metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{reg}
	return &Metrics{
		reg:              reg,
		Requests:         f.counterVec("http_requests_total", "HTTP requests by route and status.", "route", "status"),
		RequestDuration:  f.histVec("http_request_duration_seconds", "HTTP request duration by route.", prometheus.ExponentialBuckets(0.0005, 2, 14), "route"),
		EventsAccepted:   f.counterVec("events_accepted_total", "Events committed, by integration schema.", "integration"),
		EventsRejected:   f.counterVec("events_rejected_total", "Objects written to _sdc_rejected instead of data, by integration schema.", "integration"),
		Unmapped:         f.counterVec("values_unmapped_total", "Values kept only in _sdc_raw (bad name, bound, cap), by integration schema.", "integration"),
		BatchEvents:      f.hist("batch_events", "Events per committed group-commit batch.", prometheus.ExponentialBuckets(1, 2, 15)),
		BatchedEvents:    f.counterVec("batched_events_total", "Events committed, by the size of the group-commit batch that held them (1, 2-7, 8-31, 32-127, 128+).", "batch"),
		BatchRequests:    f.hist("batch_requests", "Requests per committed group-commit batch.", prometheus.ExponentialBuckets(1, 2, 10)),
		CommitSeconds:    f.hist("commit_seconds", "Time to write and commit one batch.", prometheus.ExponentialBuckets(0.0002, 2, 16)),
		QueueDepth:       f.gauge("queue_depth", "Requests waiting for a writer."),
		InflightBytes:    f.gauge("inflight_bytes", "Memory charged to ingest requests in flight: body bytes read × CIOLOADER_MEMORY_FACTOR plus 1 KiB per decoded event."),
		SchemaChanges:    f.counterVec("schema_changes_total", "Columns and tables added, by integration schema and kind.", "integration", "kind"),
		Replaced:         f.counter("text_replacements_total", "Characters replaced by U+FFFD (NUL, invalid UTF-8, lone surrogates)."),
		SignatureFailure: f.counterVec("signature_failures_total", "Requests refused for a missing or wrong Customer.io signature, by reason.", "reason"),
		SignatureAge:     f.hist("signature_age_seconds", "Age of accepted signed requests (X-CIO-Timestamp to arrival).", []float64{1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400}),
		WriteFailures:    f.counterVec("write_failures_total", "Batches that failed to commit, by kind (unavailable, timeout, data).", "kind"),
		EventsErased:     f.counterVec("events_erased_total", "Events deleted by erasure requests (cioloader forget), by integration schema.", "integration"),
		TombstoneDrops:   f.counterVec("events_dropped_tombstone_total", "Events of erased people dropped at ingest (tombstones), by integration schema.", "integration"),
		EventsPruned:     f.counterVec("events_pruned_total", "Events deleted for being older than the integration's retention window, by integration schema.", "integration"),
		Refused:          f.counterVec("deliveries_refused_total", "Deliveries refused as a whole after their token resolved, by integration schema and reason (signature, not_json, too_large, too_many_events, unavailable).", "integration", "reason"),
		ImportedReplaced: f.counterVec("imported_events_replaced_total", "Events imported from Customer.io's history deleted because the same occurrence arrived by webhook, by integration schema.", "integration"),
		LastEvent:        f.gaugeVec("integration_last_event_timestamp_seconds", "Unix time of the last delivery committed by this process, by integration schema.", "integration"),
		RevokedPosts:     f.counterVec("revoked_url_posts_total", "Posts to a revoked webhook URL or a deleted integration (answered 404, as an unknown token), by integration schema.", "integration"),
		DatabaseUp:       f.gauge("database_up", "1 while the database answers the health probe (every second), 0 otherwise."),
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

type factory struct{ reg *prometheus.Registry }

const namespace = "cioloader"

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) hist(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
