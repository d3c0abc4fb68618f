// Package prom exposes a metrics.Registry in Prometheus's text format with
// github.com/prometheus/client_golang: a collector that reads the
// registry at every scrape, next to the Go runtime and process
// collectors, served by promhttp.
package prom

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sheetlog/sheetlog/pkg/metrics"
)

// Collector is a prometheus.Collector of a metrics.Registry.
type Collector struct {
	reg *metrics.Registry
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of reg.
func NewCollector(reg *metrics.Registry) *Collector { return &Collector{reg: reg} }

func desc(d metrics.Desc) *prometheus.Desc {
	return prometheus.NewDesc(d.Name, d.Help, d.Labels, nil)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.reg.Gather(false) {
		ch <- desc(f.Desc)
	}
}

// Collect implements prometheus.Collector. Histograms show the buckets
// of metrics.PromBounds.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.reg.Gather(false) {
		d := desc(f.Desc)
		for _, s := range f.Series {
			switch f.Kind {
			case metrics.KindCounter:
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, s.Value, s.Labels...)
			case metrics.KindGauge:
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, s.Value, s.Labels...)
			case metrics.KindHistogram:
				ch <- prometheus.MustNewConstHistogram(d, s.Hist.Count, s.Hist.Sum, Buckets(s.Hist), s.Labels...)
			}
		}
	}
}

// Buckets folds a histogram's fine buckets into Prometheus's cumulative
// counts at metrics.PromBounds (every one of which is a bound of
// metrics.Bounds).
func Buckets(h *metrics.HistogramState) map[float64]uint64 {
	out := make(map[float64]uint64, len(metrics.PromBounds))
	var cum uint64
	j := 0
	for i, b := range metrics.Bounds {
		cum += h.Counts[i]
		if j < len(metrics.PromBounds) && b == metrics.PromBounds[j] {
			out[b] = cum
			j++
		}
	}
	return out
}

// NewRegistry returns a Prometheus registry holding reg's collector and
// the Go runtime and process collectors.
func NewRegistry(reg *metrics.Registry) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(NewCollector(reg),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves reg (and the runtime and process collectors) at any
// path, in the text format (or the protobuf format a scraper asks for).
func Handler(reg *metrics.Registry) http.Handler {
	r := NewRegistry(reg)
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r})
}
