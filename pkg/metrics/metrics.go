// Package metrics is sheetlog's own small metrics library: counters,
// gauges and duration histograms, defined once next to the code that
// counts them (pkg/api, pkg/spreadsheet, pkg/workers, pkg/enginecache) and
// read by two exporters that share no code with the core: Prometheus's
// text format on the single-machine server (package prom, with
// client_golang) and CloudWatch's Embedded Metric Format in the Lambdas'
// logs (package emf). The core packages import only this one, which
// imports nothing but the standard library.
//
// # Why not client_golang in the core
//
// The engine runs in a Lambda whose zip size and cold start are budgeted,
// and whose metrics leave as log lines, not as a scrape; and an exporter
// for CloudWatch needs what Prometheus's registry does not give, the
// change of each counter since the last flush and the exact durations of
// one invocation. A counter here is one atomic add; a labelled counter
// finds its series in a copy-on-write map without a lock; a histogram is
// a binary search over fixed bounds and two atomic adds. Nothing allocates
// on the hot path.
//
// # Histograms
//
// Every histogram measures durations against the same fine bounds
// (Bounds: 100 µs to 1000 s, ten per decade, about ±12 % around each
// bucket's middle), so that CloudWatch percentiles computed from bucket
// values are close to the truth; the Prometheus exporter exposes the
// coarser PromBounds subset (1, 2.5 and 5 per decade). When KeepSamples is
// on (the Lambdas), a histogram also keeps the exact durations observed
// since the last drain, up to a bound, and the EMF writer sends those
// instead of bucket values.
//
// # Labels
//
// Label values must come from small fixed sets (route patterns, methods,
// status codes), never from input such as sheet ids: every combination
// is a time series in Prometheus and a billed custom metric in CloudWatch.
// A vector holds at most MaxSeries combinations; later ones are counted
// under the value "overflow" for every label.
package metrics

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what a metric family is.
type Kind uint8

// Kinds of families.
const (
	KindCounter Kind = iota
	KindGauge
	KindHistogram
)

func (k Kind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

// Unit is the unit of a family's values, spelled as CloudWatch spells it
// (Prometheus says it with the name's suffix instead).
type Unit string

// Units.
const (
	Count   Unit = "Count"
	Bytes   Unit = "Bytes"
	Seconds Unit = "Seconds"
)

// MaxLabels is the most labels a family may have.
const MaxLabels = 4

// MaxSeries bounds the label combinations of one vector.
const MaxSeries = 1000

// Overflow is the label value of every label of the series that counts
// combinations past MaxSeries.
const Overflow = "overflow"

// Desc describes a family.
type Desc struct {
	Name, Help string
	Kind       Kind
	Unit       Unit
	Labels     []string
}

// enabled switches counting for every counter and histogram. Gauges are
// always kept: they are maintained by differences, which a switch in the
// middle would lose.
var enabled atomic.Bool

// keepSamples is the most exact durations a histogram series keeps
// between drains (0: none).
var keepSamples atomic.Int32

func init() { enabled.Store(true) }

// SetEnabled turns counting on or off for every counter and histogram
// (on by default). A program that exports nothing turns it off at start,
// so that its hot paths pay one atomic load per count.
func SetEnabled(on bool) { enabled.Store(on) }

// Enabled reports whether counters and histograms count.
func Enabled() bool { return enabled.Load() }

// KeepSamples makes every histogram keep up to n exact durations per
// series between drains (Registry.Gather with drain), or none for n <= 0.
func KeepSamples(n int) { keepSamples.Store(int32(max(0, min(n, math.MaxInt32)))) }

// Registry holds metric families in the order they were defined.
type Registry struct {
	mu    sync.Mutex
	fams  []family
	names map[string]bool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{names: map[string]bool{}} }

// Default is the registry of the package-level constructors, where every
// sheetlog metric is defined.
var Default = NewRegistry()

type family interface {
	describe() *Desc
	collect(f *Family, drain bool)
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// register adds f; a bad or repeated name is a programming error found at
// start-up, so it panics, as defining two variables of one name would
// fail to compile.
func (r *Registry) register(f family) {
	d := f.describe()
	if !nameRE.MatchString(d.Name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", d.Name))
	}
	if len(d.Labels) > MaxLabels {
		panic(fmt.Sprintf("metrics: %s has %d labels, at most %d", d.Name, len(d.Labels), MaxLabels))
	}
	for _, l := range d.Labels {
		if !labelRE.MatchString(l) || l == "le" {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", d.Name, l))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[d.Name] {
		panic(fmt.Sprintf("metrics: %s is defined twice", d.Name))
	}
	r.names[d.Name] = true
	r.fams = append(r.fams, f)
}

// Family is a family's state at one moment.
type Family struct {
	Desc
	Series []Series
}

// Series is one label combination of a family.
type Series struct {
	// Labels are the values of Desc.Labels, in order.
	Labels []string
	// Value of a counter or a gauge.
	Value float64
	// Set is false for a gauge never set since the start (exporters that
	// bill per series may leave it out).
	Set bool
	// Hist is the state of a histogram.
	Hist *HistogramState
}

// HistogramState is a histogram series' buckets since the start.
type HistogramState struct {
	// Counts holds one count per bucket: Counts[i] observations were at
	// most Bounds[i] (and above Bounds[i-1]); the last counts those above
	// every bound.
	Counts []uint64
	// Count and Sum (seconds) of every observation.
	Count uint64
	Sum   float64
	// Samples are the exact durations observed since the previous drain
	// (KeepSamples), taken by this one; their buckets are in Counts too.
	Samples []time.Duration
}

// Gather returns the state of every family, in definition order. With
// drain, histograms hand over (and forget) the exact samples they kept.
func (r *Registry) Gather(drain bool) []Family {
	r.mu.Lock()
	fams := append([]family(nil), r.fams...)
	r.mu.Unlock()
	out := make([]Family, len(fams))
	for i, f := range fams {
		out[i].Desc = *f.describe()
		f.collect(&out[i], drain)
	}
	return out
}

// Counter counts up.
type Counter struct {
	d Desc
	v atomic.Uint64
}

// Inc adds one.
func (c *Counter) Inc() {
	if enabled.Load() {
		c.v.Add(1)
	}
}

// Add adds n.
func (c *Counter) Add(n uint64) {
	if enabled.Load() {
		c.v.Add(n)
	}
}

// Value is the count so far.
func (c *Counter) Value() uint64 { return c.v.Load() }

func (c *Counter) describe() *Desc { return &c.d }
func (c *Counter) collect(f *Family, _ bool) {
	f.Series = []Series{{Value: float64(c.v.Load()), Set: true}}
}

// Counter defines a counter without labels.
func (r *Registry) Counter(name, help string) *Counter {
	c := &Counter{d: Desc{Name: name, Help: help, Kind: KindCounter, Unit: Count}}
	r.register(c)
	return c
}

// NewCounter defines a counter in Default.
func NewCounter(name, help string) *Counter { return Default.Counter(name, help) }

// Gauge is a value that goes up and down, kept as an integer.
type Gauge struct {
	d   Desc
	v   atomic.Int64
	set atomic.Bool
}

// Add adds n (negative to subtract).
func (g *Gauge) Add(n int64) {
	g.v.Add(n)
	if !g.set.Load() {
		g.set.Store(true)
	}
}

// Set sets the value.
func (g *Gauge) Set(n int64) {
	g.v.Store(n)
	if !g.set.Load() {
		g.set.Store(true)
	}
}

// Value is the current value.
func (g *Gauge) Value() int64 { return g.v.Load() }

func (g *Gauge) describe() *Desc { return &g.d }
func (g *Gauge) collect(f *Family, _ bool) {
	f.Series = []Series{{Value: float64(g.v.Load()), Set: g.set.Load()}}
}

// Gauge defines a gauge without labels.
func (r *Registry) Gauge(name, help string, unit Unit) *Gauge {
	g := &Gauge{d: Desc{Name: name, Help: help, Kind: KindGauge, Unit: unit}}
	r.register(g)
	return g
}

// NewGauge defines a gauge in Default.
func NewGauge(name, help string, unit Unit) *Gauge { return Default.Gauge(name, help, unit) }

// Age is a gauge of seconds since a moment: the age of the oldest of
// something, 0 when there is none. The moment is either set (Set, Clear)
// or asked for when the gauge is read (Track).
type Age struct {
	d     Desc
	since atomic.Int64 // Unix nanoseconds; 0: none
	set   atomic.Bool
	src   atomic.Pointer[func() time.Time]
}

// Set makes the gauge the age of t.
func (a *Age) Set(t time.Time) {
	a.since.Store(t.UnixNano())
	a.set.Store(true)
}

// Clear makes the gauge 0 (nothing is waiting).
func (a *Age) Clear() {
	a.since.Store(0)
	a.set.Store(true)
}

// Track makes the gauge ask fn for the moment whenever it is read (a zero
// time: nothing is waiting) until the returned function is called, which
// stops tracking unless another Track replaced fn since.
func (a *Age) Track(fn func() time.Time) (stop func()) {
	p := &fn
	a.src.Store(p)
	a.set.Store(true)
	return func() {
		if a.src.CompareAndSwap(p, nil) {
			a.since.Store(0)
		}
	}
}

// Seconds is the age at now.
func (a *Age) Seconds(now time.Time) float64 {
	var t time.Time
	if fn := a.src.Load(); fn != nil {
		t = (*fn)()
	} else if ns := a.since.Load(); ns != 0 {
		t = time.Unix(0, ns)
	}
	if t.IsZero() || !now.After(t) {
		return 0
	}
	return now.Sub(t).Seconds()
}

func (a *Age) describe() *Desc { return &a.d }
func (a *Age) collect(f *Family, _ bool) {
	f.Series = []Series{{Value: a.Seconds(time.Now()), Set: a.set.Load()}}
}

// Age defines an age gauge (seconds).
func (r *Registry) Age(name, help string) *Age {
	a := &Age{d: Desc{Name: name, Help: help, Kind: KindGauge, Unit: Seconds}}
	r.register(a)
	return a
}

// NewAge defines an age gauge in Default.
func NewAge(name, help string) *Age { return Default.Age(name, help) }

// labelKey is a vector's key: the label values, in order.
type labelKey [MaxLabels]string

// vec finds the series of a label combination: a lock-free read of a
// copy-on-write map, since new combinations are rare after the first
// requests.
type vec[T any] struct {
	d      Desc
	mk     func() *T
	series atomic.Pointer[map[labelKey]*T]
	mu     sync.Mutex
}

func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.d.Labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", v.d.Name, len(v.d.Labels), len(values)))
	}
	var k labelKey
	copy(k[:], values)
	if m := v.series.Load(); m != nil {
		if s, ok := (*m)[k]; ok {
			return s
		}
	}
	return v.add(k)
}

func (v *vec[T]) add(k labelKey) *T {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := map[labelKey]*T{}
	if m := v.series.Load(); m != nil {
		old = *m
	}
	if s, ok := old[k]; ok {
		return s
	}
	if len(old) >= MaxSeries {
		for i := range v.d.Labels {
			k[i] = Overflow
		}
		if s, ok := old[k]; ok {
			return s
		}
	}
	m := make(map[labelKey]*T, len(old)+1)
	for kk, s := range old {
		m[kk] = s
	}
	s := v.mk()
	m[k] = s
	v.series.Store(&m)
	return s
}

func (v *vec[T]) each(fn func(labels []string, s *T)) {
	m := v.series.Load()
	if m == nil {
		return
	}
	keys := make([]labelKey, 0, len(*m))
	for k := range *m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b labelKey) int { return slices.Compare(a[:], b[:]) })
	for _, k := range keys {
		fn(append([]string(nil), k[:len(v.d.Labels)]...), (*m)[k])
	}
}

// CounterVec is a counter with labels.
type CounterVec struct{ v vec[Counter] }

// With returns the counter of the label values, in the order of the
// labels.
func (c *CounterVec) With(values ...string) *Counter { return c.v.with(values) }

func (c *CounterVec) describe() *Desc { return &c.v.d }
func (c *CounterVec) collect(f *Family, _ bool) {
	c.v.each(func(l []string, s *Counter) {
		f.Series = append(f.Series, Series{Labels: l, Value: float64(s.v.Load()), Set: true})
	})
}

// CounterVec defines a counter with labels.
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{v: vec[Counter]{d: Desc{Name: name, Help: help, Kind: KindCounter, Unit: Count, Labels: labels},
		mk: func() *Counter { return &Counter{} }}}
	r.register(c)
	return c
}

// NewCounterVec defines a counter with labels in Default.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return Default.CounterVec(name, help, labels...)
}

// Bounds are the upper bounds (seconds) of every histogram's buckets:
// 100 µs to 1000 s with the steps 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 in
// each decade. A last bucket counts what lies above them all.
var Bounds = func() []float64 {
	steps := []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8}
	var b []float64
	for e := -4; e < 3; e++ {
		for _, s := range steps {
			b = append(b, s*math.Pow10(e))
		}
	}
	return append(b, 1000)
}()

// PromBounds are the buckets the Prometheus exporter shows: 1, 2.5 and 5
// per decade from 100 µs to 1000 s, a subset of Bounds.
var PromBounds = func() []float64 {
	var b []float64
	for e := -4; e < 3; e++ {
		for _, s := range []float64{1, 2.5, 5} {
			b = append(b, s*math.Pow10(e))
		}
	}
	return append(b, 1000)
}()

// boundsNS are Bounds in nanoseconds, for the search of Observe.
var boundsNS = func() []int64 {
	out := make([]int64, len(Bounds))
	for i, b := range Bounds {
		out[i] = int64(math.Round(b * 1e9))
	}
	return out
}()

// BucketValue is the value that stands for bucket i when only its count
// is known: the geometric middle of its bounds (the bound itself for the
// first and last buckets).
func BucketValue(i int) float64 {
	switch {
	case i <= 0:
		return Bounds[0]
	case i >= len(Bounds):
		return Bounds[len(Bounds)-1]
	}
	return math.Sqrt(Bounds[i-1] * Bounds[i])
}

// BucketOf is the bucket of a duration.
func BucketOf(d time.Duration) int {
	ns := int64(d)
	lo, hi := 0, len(boundsNS)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if boundsNS[m] < ns {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Histogram counts durations in the buckets of Bounds.
type Histogram struct {
	d      Desc
	counts [len(bucketsArray)]atomic.Uint64
	sumNS  atomic.Int64
	// mu serialises observations and drains while samples are kept, so
	// that a drain's samples and counts agree.
	mu      sync.Mutex
	samples []time.Duration
}

// bucketsArray sizes Histogram.counts: one per bound and one above.
var bucketsArray [72]struct{}

func init() {
	if len(Bounds)+1 != len(bucketsArray) {
		panic("metrics: histogram bucket count out of date")
	}
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	if !enabled.Load() {
		return
	}
	i := BucketOf(d)
	if n := int(keepSamples.Load()); n > 0 {
		h.mu.Lock()
		h.counts[i].Add(1)
		h.sumNS.Add(int64(d))
		if len(h.samples) < n {
			h.samples = append(h.samples, d)
		}
		h.mu.Unlock()
		return
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

// Since records the time since start.
func (h *Histogram) Since(start time.Time) { h.Observe(time.Since(start)) }

// State returns the histogram's buckets; with drain, also the samples
// kept since the previous drain.
func (h *Histogram) State(drain bool) *HistogramState {
	st := &HistogramState{Counts: make([]uint64, len(h.counts))}
	if drain {
		h.mu.Lock()
		defer h.mu.Unlock()
		st.Samples, h.samples = h.samples, nil
	}
	for i := range h.counts {
		c := h.counts[i].Load()
		st.Counts[i] = c
		st.Count += c
	}
	st.Sum = float64(h.sumNS.Load()) / 1e9
	return st
}

func (h *Histogram) describe() *Desc { return &h.d }
func (h *Histogram) collect(f *Family, drain bool) {
	f.Series = []Series{{Hist: h.State(drain), Set: true}}
}

// Histogram defines a duration histogram without labels.
func (r *Registry) Histogram(name, help string) *Histogram {
	h := &Histogram{d: Desc{Name: name, Help: help, Kind: KindHistogram, Unit: Seconds}}
	r.register(h)
	return h
}

// NewHistogram defines a duration histogram in Default.
func NewHistogram(name, help string) *Histogram { return Default.Histogram(name, help) }

// HistogramVec is a duration histogram with labels.
type HistogramVec struct{ v vec[Histogram] }

// With returns the histogram of the label values.
func (h *HistogramVec) With(values ...string) *Histogram { return h.v.with(values) }

func (h *HistogramVec) describe() *Desc { return &h.v.d }
func (h *HistogramVec) collect(f *Family, drain bool) {
	h.v.each(func(l []string, s *Histogram) {
		f.Series = append(f.Series, Series{Labels: l, Hist: s.State(drain), Set: true})
	})
}

// HistogramVec defines a duration histogram with labels.
func (r *Registry) HistogramVec(name, help string, labels ...string) *HistogramVec {
	h := &HistogramVec{v: vec[Histogram]{d: Desc{Name: name, Help: help, Kind: KindHistogram, Unit: Seconds, Labels: labels},
		mk: func() *Histogram { return &Histogram{} }}}
	r.register(h)
	return h
}

// NewHistogramVec defines a duration histogram with labels in Default.
func NewHistogramVec(name, help string, labels ...string) *HistogramVec {
	return Default.HistogramVec(name, help, labels...)
}
