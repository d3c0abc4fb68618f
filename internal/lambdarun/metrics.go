package lambdarun

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/metrics"
	"github.com/sheetlog/sheetlog/pkg/metrics/emf"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// stdout is where a function writes its log records and its metrics: one
// lock for both, so that a metrics document never interleaves with a log
// record written by another goroutine.
var stdout io.Writer = &lockedWriter{w: os.Stdout}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Metrics publishes a function's metrics (pkg/metrics, the same ones the
// single-machine server serves to Prometheus) as CloudWatch Embedded
// Metric Format documents in its log, after every invocation: CloudWatch
// Logs turns them into metrics, so publishing costs no API call and no
// time on the request's path beyond writing a log line.
//
// Every metric carries the dimension function (the function's name) and
// its own labels (route, method and code for requests; result; how), all
// from small fixed sets; never a sheet id. Durations go out exactly
// (metrics.KeepSamples), so CloudWatch's percentiles are the real ones.
type Metrics struct {
	w   *emf.Writer
	log *slog.Logger
}

// NewMetrics returns the metrics of function, published under c's
// namespace to the function's standard output.
func NewMetrics(function string, c Config, log *slog.Logger) *Metrics {
	return newMetrics(stdout, function, c, log)
}

func newMetrics(out io.Writer, function string, c Config, log *slog.Logger) *Metrics {
	metrics.SetEnabled(true)
	metrics.KeepSamples(emf.MaxValues)
	ns := c.MetricsNamespace
	if ns == "" {
		ns = awsschema.DefaultMetricsNamespace
	}
	return &Metrics{
		w:   emf.New(out, metrics.Default, ns, emf.Dimension{Name: awsschema.DimFunction, Value: function}),
		log: log,
	}
}

// Flush writes what changed since the last flush. A failure is logged:
// metrics must never fail an invocation.
func (m *Metrics) Flush() {
	if err := m.w.Flush(); err != nil {
		m.log.Warn("could not write the metrics", "err", err)
	}
}

// WithMetrics wraps a Lambda handler so that m is flushed after every
// invocation, before its reply goes back (a function that times out
// loses the metrics of that invocation, as CloudWatch documents).
func WithMetrics[E, R any](m *Metrics, h func(context.Context, E) (R, error)) func(context.Context, E) (R, error) {
	return func(ctx context.Context, ev E) (R, error) {
		defer m.Flush()
		return h(ctx, ev)
	}
}

// notePendingAge sets the oldest pending age from what a sweep listed:
// the entries pending since before olderThan (the grace period's start).
// None: 0, nothing is late. Entries naming a workflow nobody knows are
// left out: they stay pending until someone clears them, and the
// dead-letter queue's alarm is the one that reports them.
func notePendingAge(pending []eventlog.PendingEntry, olderThan time.Time) {
	var oldest time.Time
	for _, p := range pending {
		if p.Workflow != eventlog.WorkflowSnapshot {
			continue
		}
		since := p.Since
		if since.IsZero() || since.After(olderThan) {
			since = olderThan
		}
		if oldest.IsZero() || since.Before(oldest) {
			oldest = since
		}
	}
	if oldest.IsZero() {
		workers.PendingOldestAge.Clear()
		return
	}
	workers.PendingOldestAge.Set(oldest)
}
