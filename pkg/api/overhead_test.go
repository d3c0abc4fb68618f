package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/metrics"
)

// BenchmarkMetricsOverhead measures what counting adds to a request in a
// way a loaded machine cannot skew: requests alternate one by one between
// metrics off and on, so both conditions share every moment of the
// machine's load, and the two conditions' median times (and means of
// their middle 80 %) are compared. median-on/off is the median request's
// time with metrics over its time without (1.02 would be 2 % slower);
// trimmed-on/off the same for the trimmed means. make bench-api runs it
// several times and benchstat summarises the runs.
func BenchmarkMetricsOverhead(b *testing.B) {
	for _, w := range []struct {
		name  string
		setup func(b *testing.B) func(i int) *http.Request
	}{
		{"append", func(b *testing.B) func(int) *http.Request {
			return func(i int) *http.Request {
				body := fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":3,"value":%d}}`, i, i%5000, i)
				req := httptest.NewRequest("POST", "/v1/sheets/s1/log", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				return req
			}
		}},
		{"cells100", func(b *testing.B) func(int) *http.Request {
			return func(int) *http.Request { return httptest.NewRequest("GET", "/v1/sheets/s1/cells?range=A1:J10", nil) }
		}},
		{"getlog1000", func(b *testing.B) func(int) *http.Request {
			return func(int) *http.Request { return httptest.NewRequest("GET", "/v1/sheets/s1/log?start=0&end=1000", nil) }
		}},
	} {
		b.Run(w.name, func(b *testing.B) {
			defer metrics.SetEnabled(true)
			f := newFixture(b, fixtureOptions{interval: 100})
			f.check = false
			next := w.setup(b)
			if w.name != "append" {
				for i := range 1000 {
					f.do("POST", "/v1/sheets/s1/log", fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":"cell %d"}}`, i, i/10, i%10, i))
				}
			}
			var times [2][]time.Duration // [off, on]
			i := 0
			for b.Loop() {
				on := i%2 == 1
				req := next(i)
				rec := httptest.NewRecorder()
				metrics.SetEnabled(on)
				t0 := time.Now()
				f.h.ServeHTTP(rec, req)
				d := time.Since(t0)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				k := 0
				if on {
					k = 1
				}
				times[k] = append(times[k], d)
				i++
			}
			if len(times[0]) < 10 || len(times[1]) < 10 {
				return // too few to compare (a first, tiny b.N)
			}
			off, on := summarise(times[0]), summarise(times[1])
			b.ReportMetric(float64(off.median), "off-median-ns")
			b.ReportMetric(float64(on.median), "on-median-ns")
			b.ReportMetric(float64(on.median)/float64(off.median), "median-on/off")
			b.ReportMetric(on.trimmed/off.trimmed, "trimmed-on/off")
		})
	}
}

type summary struct {
	median  time.Duration
	trimmed float64 // mean of the middle 80 %
}

func summarise(ds []time.Duration) summary {
	s := slices.Clone(ds)
	slices.Sort(s)
	cut := len(s) / 10
	var sum float64
	for _, d := range s[cut : len(s)-cut] {
		sum += float64(d)
	}
	return summary{median: s[len(s)/2], trimmed: sum / float64(len(s)-2*cut)}
}
