package metrics

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestCounters(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("test_total", "a counter")
	v := r.CounterVec("test_by_total", "a labelled counter", "route", "code")
	c.Inc()
	c.Add(4)
	v.With("/a", "200").Inc()
	v.With("/a", "200").Add(2)
	v.With("/b", "404").Inc()
	if c.Value() != 5 || v.With("/a", "200").Value() != 3 || v.With("/b", "404").Value() != 1 {
		t.Fatalf("counts %d %d %d", c.Value(), v.With("/a", "200").Value(), v.With("/b", "404").Value())
	}
	fams := r.Gather(false)
	if len(fams) != 2 || fams[0].Name != "test_total" || fams[1].Name != "test_by_total" {
		t.Fatalf("families %+v", fams)
	}
	got := fmt.Sprint(fams[1].Series)
	if want := "[{[/a 200] 3 true <nil>} {[/b 404] 1 true <nil>}]"; got != want {
		t.Fatalf("series %s, want %s", got, want)
	}
}

func TestCountersConcurrent(t *testing.T) {
	r := NewRegistry()
	v := r.CounterVec("conc_total", "", "k")
	h := r.HistogramVec("conc_seconds", "", "k")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := fmt.Sprint(i % 7)
				v.With(k).Inc()
				h.With(k).Observe(time.Duration(g) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	var total, hist uint64
	for _, s := range r.Gather(false)[0].Series {
		total += uint64(s.Value)
	}
	for _, s := range r.Gather(false)[1].Series {
		hist += s.Hist.Count
	}
	if total != 8000 || hist != 8000 {
		t.Fatalf("counted %d and %d, want 8000", total, hist)
	}
}

// A vector never holds more than MaxSeries combinations: the rest are
// counted under "overflow", so a label fed from input cannot grow memory
// (or a CloudWatch bill) without bound.
func TestSeriesAreBounded(t *testing.T) {
	r := NewRegistry()
	v := r.CounterVec("many_total", "", "a", "b")
	for i := range MaxSeries + 50 {
		v.With(fmt.Sprint(i), "x").Inc()
	}
	s := r.Gather(false)[0].Series
	if len(s) != MaxSeries+1 {
		t.Fatalf("%d series, want %d", len(s), MaxSeries+1)
	}
	if v.With(Overflow, Overflow).Value() != 50 {
		t.Fatalf("overflow counted %d, want 50", v.With(Overflow, Overflow).Value())
	}
}

func TestDefinitionErrors(t *testing.T) {
	r := NewRegistry()
	r.Counter("dup_total", "")
	for name, def := range map[string]func(){
		"duplicate":     func() { r.Counter("dup_total", "") },
		"bad name":      func() { r.Counter("bad-name", "") },
		"bad label":     func() { r.CounterVec("x_total", "", "le") },
		"too many":      func() { r.CounterVec("y_total", "", "a", "b", "c", "d", "e") },
		"label count":   func() { r.CounterVec("z_total", "", "a").With("1", "2") },
		"empty label":   func() { r.CounterVec("w_total", "", "") },
		"digit in name": func() { r.Gauge("1x", "", Count) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			def()
		}()
	}
}

func TestBounds(t *testing.T) {
	if len(Bounds) != 71 || Bounds[0] != 1e-4 || Bounds[len(Bounds)-1] != 1000 {
		t.Fatalf("bounds %v", Bounds)
	}
	if !slices.IsSorted(Bounds) {
		t.Fatal("bounds not sorted")
	}
	for i := 1; i < len(Bounds); i++ {
		if r := Bounds[i] / Bounds[i-1]; r > 1.34 {
			t.Errorf("bounds %v and %v are %.2f apart", Bounds[i-1], Bounds[i], r)
		}
	}
	for _, b := range PromBounds {
		if !slices.Contains(Bounds, b) {
			t.Errorf("Prometheus bound %v is not a bound", b)
		}
	}
	for i, b := range Bounds {
		d := time.Duration(math.Round(b * 1e9))
		if got := BucketOf(d); got != i {
			t.Errorf("BucketOf(%v) = %d, want %d (a bound is in its own bucket)", d, got, i)
		}
		if got := BucketOf(d + 1); got != i+1 {
			t.Errorf("BucketOf(%v+1ns) = %d, want %d", d, got, i+1)
		}
		if v := BucketValue(i); v > b || (i > 0 && v <= Bounds[i-1]) {
			t.Errorf("BucketValue(%d) = %v, not in (%v, %v]", i, v, Bounds[max(i-1, 0)], b)
		}
	}
	if BucketOf(0) != 0 || BucketOf(time.Hour) != len(Bounds) {
		t.Errorf("BucketOf(0) = %d, BucketOf(1h) = %d", BucketOf(0), BucketOf(time.Hour))
	}
}

func TestHistogramSamples(t *testing.T) {
	defer KeepSamples(0)
	r := NewRegistry()
	h := r.Histogram("h_seconds", "")
	h.Observe(time.Millisecond) // before samples are kept
	KeepSamples(3)
	for _, d := range []time.Duration{2, 3, 4, 5} {
		h.Observe(d * time.Millisecond)
	}
	st := h.State(true)
	if st.Count != 5 || math.Abs(st.Sum-0.015) > 1e-12 {
		t.Fatalf("count %d sum %v", st.Count, st.Sum)
	}
	if fmt.Sprint(st.Samples) != "[2ms 3ms 4ms]" {
		t.Fatalf("samples %v", st.Samples)
	}
	if st = h.State(true); len(st.Samples) != 0 || st.Count != 5 {
		t.Fatalf("second drain %+v", st)
	}
	if st.Counts[BucketOf(time.Millisecond)] != 1 || st.Counts[BucketOf(5*time.Millisecond)] != 1 {
		t.Fatalf("buckets %v", st.Counts)
	}
}

func TestDisabled(t *testing.T) {
	defer SetEnabled(true)
	r := NewRegistry()
	c := r.Counter("off_total", "")
	h := r.Histogram("off_seconds", "")
	g := r.Gauge("off_gauge", "", Bytes)
	SetEnabled(false)
	c.Inc()
	h.Observe(time.Second)
	g.Add(7)
	SetEnabled(true)
	if c.Value() != 0 || h.State(false).Count != 0 {
		t.Fatal("counted while disabled")
	}
	if g.Value() != 7 {
		t.Fatal("a gauge must be kept while disabled: it is maintained by differences")
	}
}

func TestGaugesAndAge(t *testing.T) {
	r := NewRegistry()
	g := r.Gauge("g", "", Count)
	a := r.Age("age_seconds", "")
	if s := r.Gather(false); s[0].Series[0].Set || s[1].Series[0].Set {
		t.Fatal("gauges never set report Set")
	}
	g.Add(3)
	g.Add(-1)
	now := time.Now()
	a.Set(now.Add(-90 * time.Second))
	if g.Value() != 2 || a.Seconds(now) != 90 {
		t.Fatalf("gauge %d, age %v", g.Value(), a.Seconds(now))
	}
	a.Clear()
	if a.Seconds(now) != 0 {
		t.Fatal("cleared age is not 0")
	}
	oldest := now.Add(-5 * time.Second)
	stop := a.Track(func() time.Time { return oldest })
	if a.Seconds(now) != 5 {
		t.Fatalf("tracked age %v", a.Seconds(now))
	}
	oldest = time.Time{}
	if a.Seconds(now) != 0 {
		t.Fatal("nothing waiting is age 0")
	}
	stop2 := a.Track(func() time.Time { return now.Add(-time.Second) })
	stop() // replaced since: does nothing
	if a.Seconds(now) != 1 {
		t.Fatalf("a stale stop removed the newer source: %v", a.Seconds(now))
	}
	stop2()
	if a.Seconds(now) != 0 {
		t.Fatal("stopped age is not 0")
	}
}

// The hot path allocates nothing.
func TestNoAllocations(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("a_total", "")
	v := r.CounterVec("b_total", "", "route", "method", "code")
	h := r.HistogramVec("c_seconds", "", "route", "method")
	v.With("/x", "GET", "200").Inc()
	h.With("/x", "GET").Observe(time.Millisecond)
	route, method, code := "/x", "GET", "200"
	if n := testing.AllocsPerRun(1000, func() {
		c.Inc()
		v.With(route, method, code).Inc()
		h.With(route, method).Observe(time.Millisecond)
	}); n != 0 {
		t.Fatalf("%v allocations per count", n)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().Counter("bench_total", "")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkCounterVecWith(b *testing.B) {
	v := NewRegistry().CounterVec("bench_total", "", "route", "method", "code")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v.With("/v1/sheets/{sheet}/log", "POST", "200").Inc()
		}
	})
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewRegistry().HistogramVec("bench_seconds", "", "route", "method")
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d += 7919
			h.With("/v1/sheets/{sheet}/log", "POST").Observe(d % time.Second)
		}
	})
}
