// Package emf writes a metrics.Registry as CloudWatch Embedded Metric
// Format documents: JSON log lines from which CloudWatch Logs extracts
// metrics by itself, so a Lambda function publishes metrics without a
// single API call. It also parses such lines (Parse), for tests and the
// local harness.
//
// Each Flush writes what changed since the previous one: the increase of
// every counter that grew, the value of every gauge that was ever set,
// and the durations each histogram observed (the exact ones it kept, see
// metrics.KeepSamples, else the middle of their buckets). Every metric
// carries the writer's fixed dimensions (the function) and its own labels
// as further dimensions. A document can hold only one value per dimension
// name, so series whose labels disagree (two routes, two results) go to
// separate documents: usually one line per flush, a few at most.
package emf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sheetlog/sheetlog/pkg/metrics"
)

// MaxValues is the most values one metric may carry in a document (the
// format's limit); more go to further documents.
const MaxValues = 100

// Dimension is a dimension every metric of a writer carries.
type Dimension struct{ Name, Value string }

// Writer flushes a registry's changes as EMF documents.
type Writer struct {
	out       io.Writer
	reg       *metrics.Registry
	namespace string
	dims      []Dimension
	now       func() time.Time

	mu       sync.Mutex
	counters map[string]float64
	buckets  map[string][]uint64
}

// New returns a writer of reg's metrics under namespace, each with dims,
// to out (one Write per document, each ending in a newline).
func New(out io.Writer, reg *metrics.Registry, namespace string, dims ...Dimension) *Writer {
	return &Writer{out: out, reg: reg, namespace: namespace, dims: dims, now: time.Now,
		counters: map[string]float64{}, buckets: map[string][]uint64{}}
}

// datum is one metric's values for one document.
type datum struct {
	name   string
	unit   metrics.Unit
	labels []Dimension
	values []float64
}

// Flush writes the documents of everything that changed since the last
// Flush. It writes nothing when nothing did.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ds []datum
	for _, f := range w.reg.Gather(true) {
		for _, s := range f.Series {
			key := seriesKey(f.Name, s.Labels)
			d := datum{name: f.Name, unit: f.Unit, labels: labelsOf(f.Labels, s.Labels)}
			switch f.Kind {
			case metrics.KindCounter:
				delta := s.Value - w.counters[key]
				w.counters[key] = s.Value
				if delta <= 0 {
					continue
				}
				d.values = []float64{delta}
			case metrics.KindGauge:
				if !s.Set || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
					continue
				}
				d.values = []float64{s.Value}
			case metrics.KindHistogram:
				d.values = w.histogramValues(key, s.Hist)
			}
			for len(d.values) > 0 {
				part := d
				part.values = d.values[:min(len(d.values), MaxValues)]
				d.values = d.values[len(part.values):]
				ds = append(ds, part)
			}
		}
	}
	for _, doc := range pack(ds) {
		if _, err := w.out.Write(w.render(doc)); err != nil {
			return fmt.Errorf("emf: writing metrics: %w", err)
		}
	}
	return nil
}

// histogramValues are the durations (seconds) observed since the last
// flush: the exact samples, then the middle of the bucket of each
// observation no sample stands for.
func (w *Writer) histogramValues(key string, h *metrics.HistogramState) []float64 {
	prev := w.buckets[key]
	delta := make([]uint64, len(h.Counts))
	for i, c := range h.Counts {
		if i < len(prev) && prev[i] <= c {
			c -= prev[i]
		}
		delta[i] = c
	}
	w.buckets[key] = h.Counts
	var vals []float64
	for _, d := range h.Samples {
		if i := metrics.BucketOf(d); delta[i] > 0 {
			delta[i]--
			vals = append(vals, d.Seconds())
		}
	}
	for i, n := range delta {
		for range n {
			vals = append(vals, metrics.BucketValue(i))
		}
	}
	return vals
}

func seriesKey(name string, labels []string) string {
	return name + "\x00" + strings.Join(labels, "\x00")
}

func labelsOf(names, values []string) []Dimension {
	out := make([]Dimension, len(names))
	for i, n := range names {
		v := values[i]
		if strings.TrimSpace(v) == "" {
			v = "none" // CloudWatch refuses empty dimension values
		}
		out[i] = Dimension{Name: n, Value: v}
	}
	return out
}

// document is what one line holds: dimension values no two of its metrics
// disagree on, and each metric name at most once.
type document struct {
	dims  map[string]string
	names map[string]bool
	ds    []datum
}

// pack places each datum in the first document it fits, in order.
func pack(ds []datum) []*document {
	var docs []*document
next:
	for _, d := range ds {
		for _, doc := range docs {
			if doc.fits(d) {
				doc.add(d)
				continue next
			}
		}
		doc := &document{dims: map[string]string{}, names: map[string]bool{}}
		doc.add(d)
		docs = append(docs, doc)
	}
	return docs
}

func (doc *document) fits(d datum) bool {
	if doc.names[d.name] {
		return false
	}
	for _, l := range d.labels {
		if v, ok := doc.dims[l.Name]; ok && v != l.Value {
			return false
		}
	}
	return true
}

func (doc *document) add(d datum) {
	doc.names[d.name] = true
	for _, l := range d.labels {
		doc.dims[l.Name] = l.Value
	}
	doc.ds = append(doc.ds, d)
}

// render writes a document: one metric directive per dimension set.
func (w *Writer) render(doc *document) []byte {
	type directive struct {
		dims  []string
		names []datum
	}
	var dirs []*directive
	byDims := map[string]*directive{}
	for _, d := range doc.ds {
		dims := make([]string, 0, len(w.dims)+len(d.labels))
		for _, fd := range w.dims {
			dims = append(dims, fd.Name)
		}
		for _, l := range d.labels {
			dims = append(dims, l.Name)
		}
		k := strings.Join(dims, "\x00")
		dir := byDims[k]
		if dir == nil {
			dir = &directive{dims: dims}
			byDims[k] = dir
			dirs = append(dirs, dir)
		}
		dir.names = append(dir.names, d)
	}
	var b bytes.Buffer
	b.WriteString(`{"_aws":{"Timestamp":`)
	b.WriteString(strconv.FormatInt(w.now().UnixMilli(), 10))
	b.WriteString(`,"CloudWatchMetrics":[`)
	for i, dir := range dirs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"Namespace":`)
		b.WriteString(strconv.Quote(w.namespace))
		b.WriteString(`,"Dimensions":[[`)
		for j, n := range dir.dims {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(n))
		}
		b.WriteString(`]],"Metrics":[`)
		for j, d := range dir.names {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"Name":%s,"Unit":%s}`, strconv.Quote(d.name), strconv.Quote(string(d.unit)))
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]},"msg":"metrics"`)
	for _, fd := range w.dims {
		fmt.Fprintf(&b, ",%s:%s", strconv.Quote(fd.Name), strconv.Quote(fd.Value))
	}
	seen := map[string]bool{}
	for _, d := range doc.ds {
		for _, l := range d.labels {
			if !seen[l.Name] {
				seen[l.Name] = true
				fmt.Fprintf(&b, ",%s:%s", strconv.Quote(l.Name), strconv.Quote(l.Value))
			}
		}
	}
	for _, d := range doc.ds {
		b.WriteByte(',')
		b.WriteString(strconv.Quote(d.name))
		b.WriteByte(':')
		if len(d.values) == 1 {
			b.WriteString(num(d.values[0]))
			continue
		}
		b.WriteByte('[')
		for i, v := range d.values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(num(v))
		}
		b.WriteByte(']')
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// ErrNotEMF is returned by Parse for a line that is no EMF document.
var ErrNotEMF = errors.New("emf: not an embedded metric format document")
