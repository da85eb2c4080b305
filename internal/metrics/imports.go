package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ImportTotals reads the events history imports have written, by integration
// schema and source (customerio, file). Imports run in their own process
// (cioloader import), so the server reads their counts from the database at
// each scrape rather than counting them itself.
type ImportTotals func(ctx context.Context) (map[[2]string]float64, error)

// WatchImports exposes cioloader_events_imported_total from read. A failed
// read (the database is down) exposes nothing for that scrape.
func (m *Metrics) WatchImports(read ImportTotals) {
	if m == nil {
		return
	}
	m.reg.MustRegister(importCollector{read: read, desc: prometheus.NewDesc("cioloader_events_imported_total",
		"Events written by history imports (cioloader import customerio / file), by integration schema and source, read from cioloader.imports.",
		[]string{"integration", "source"}, nil)})
}

type importCollector struct {
	read ImportTotals
	desc *prometheus.Desc
}

func (c importCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c importCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	totals, err := c.read(ctx)
	if err != nil {
		return
	}
	for k, v := range totals {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, v, k[0], k[1])
	}
}
