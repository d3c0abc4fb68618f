package lambdaharness

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sheetlog/sheetlog/pkg/metrics/emf"
)

// EMFSeries sums one metric (name and dimensions) over every Embedded
// Metric Format document the functions printed, as CloudWatch Logs would
// extract it.
type EMFSeries struct {
	Name string            `json:"name"`
	Unit string            `json:"unit"`
	Dims map[string]string `json:"dims"`
	// Sum and Count of the values; Last is the latest value (for gauges).
	Sum   float64 `json:"sum"`
	Count int     `json:"count"`
	Last  float64 `json:"last"`
	Max   float64 `json:"max"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	vals  []float64
}

// EMFStats is what the functions published: documents read, documents
// that broke the format (with the first of them), and every series.
type EMFStats struct {
	Documents int                   `json:"documents"`
	Invalid   int                   `json:"invalid"`
	FirstBad  string                `json:"firstBad,omitempty"`
	Series    map[string]*EMFSeries `json:"series"`
}

// maxKeptValues bounds the values kept per series for percentiles.
const maxKeptValues = 200_000

// emfCollector parses a function's output lines.
type emfCollector struct {
	mu sync.Mutex
	st EMFStats
}

func newEMFCollector() *emfCollector {
	return &emfCollector{st: EMFStats{Series: map[string]*EMFSeries{}}}
}

// line takes one line of a function's output; lines that are no EMF
// documents (log records, the emulator's own lines) are ignored.
func (c *emfCollector) line(l string) {
	if !strings.Contains(l, `"_aws"`) {
		return
	}
	ds, err := emf.Parse([]byte(l))
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case errors.Is(err, emf.ErrNotEMF):
		return
	case err != nil:
		c.st.Invalid++
		if c.st.FirstBad == "" {
			c.st.FirstBad = fmt.Sprintf("%v: %.500s", err, l)
		}
		return
	}
	c.st.Documents++
	for _, d := range ds {
		k := d.Key()
		s := c.st.Series[k]
		if s == nil {
			s = &EMFSeries{Name: d.Name, Unit: d.Unit, Dims: d.Dims}
			c.st.Series[k] = s
		}
		for _, v := range d.Values {
			s.Sum += v
			s.Count++
			s.Last = v
			s.Max = max(s.Max, v)
			if len(s.vals) < maxKeptValues {
				s.vals = append(s.vals, v)
			}
		}
	}
}

// stats returns a copy with percentiles filled in.
func (c *emfCollector) stats() EMFStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.st
	out.Series = make(map[string]*EMFSeries, len(c.st.Series))
	for k, s := range c.st.Series {
		cp := *s
		cp.vals = nil
		if len(s.vals) > 0 {
			v := slices.Clone(s.vals)
			sort.Float64s(v)
			cp.P50, cp.P99 = v[len(v)/2], v[min(len(v)-1, len(v)*99/100)]
		}
		out.Series[k] = &cp
	}
	return out
}

// mergeEMF adds up the stats of several functions (their series differ
// by the function dimension).
func mergeEMF(all ...EMFStats) EMFStats {
	out := EMFStats{Series: map[string]*EMFSeries{}}
	for _, s := range all {
		out.Documents += s.Documents
		out.Invalid += s.Invalid
		if out.FirstBad == "" {
			out.FirstBad = s.FirstBad
		}
		maps.Copy(out.Series, s.Series)
	}
	return out
}

// EMF is what the function's emulators printed in Embedded Metric
// Format so far.
func (f *Function) EMF() EMFStats { return f.emf.stats() }

// EMF is what every function published so far.
func (h *Harness) EMF() EMFStats {
	var all []EMFStats
	for _, f := range []*Function{h.API, h.Workflow, h.Sweeper} {
		if f != nil {
			all = append(all, f.EMF())
		}
	}
	return mergeEMF(all...)
}

// emfReport summarises the metrics the functions published, one line a
// series: counters by their sums, durations by their percentiles, gauges
// by their last and largest values.
func emfReport(st EMFStats) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "metrics the functions published (Embedded Metric Format): %d documents, %d invalid\n", st.Documents, st.Invalid)
	if st.FirstBad != "" {
		fmt.Fprintf(&b, "  first invalid document: %s\n", st.FirstBad)
	}
	keys := slices.Sorted(maps.Keys(st.Series))
	for _, k := range keys {
		s := st.Series[k]
		switch {
		case s.Unit == "Seconds" && !strings.HasSuffix(s.Name, "_age_seconds"):
			fmt.Fprintf(&b, "  %s: n=%d p50=%.1f ms p99=%.1f ms max=%.1f ms\n", k, s.Count, s.P50*1e3, s.P99*1e3, s.Max*1e3)
		case strings.HasSuffix(s.Name, "_total"):
			fmt.Fprintf(&b, "  %s: %g\n", k, s.Sum)
		default:
			fmt.Fprintf(&b, "  %s: last %g, max %g (%d values)\n", k, s.Last, s.Max, s.Count)
		}
	}
	return b.String()
}
