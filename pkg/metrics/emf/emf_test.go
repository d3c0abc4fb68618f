package emf_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/metrics"
	"github.com/sheetlog/sheetlog/pkg/metrics/emf"
)

// parseAll parses the documents written to out, failing on any that is
// not valid, and empties out.
func parseAll(t *testing.T, out *bytes.Buffer) (lines int, data []emf.Datum) {
	t.Helper()
	n := strings.Count(out.String(), "\n")
	lines, data, err := emf.ParseLines(out)
	if err != nil || lines != n {
		t.Fatalf("%d of %d lines are EMF documents: %v", lines, n, err)
	}
	out.Reset()
	return lines, data
}

// sums adds up each metric's values by key.
func sums(ds []emf.Datum) map[string]float64 {
	m := map[string]float64{}
	for _, d := range ds {
		m[d.Key()] += d.Sum()
	}
	return m
}

func TestFlushWritesWhatChanged(t *testing.T) {
	r := metrics.NewRegistry()
	appends := r.Counter("t_appended_entries_total", "")
	reqs := r.CounterVec("t_http_requests_total", "", "route", "method", "code")
	dur := r.HistogramVec("t_http_request_duration_seconds", "", "route", "method")
	cache := r.Gauge("t_engine_cache_engines", "", metrics.Count)
	r.Gauge("t_never_set", "", metrics.Count)
	var out bytes.Buffer
	w := emf.New(&out, r, "Sheetlog/test", emf.Dimension{Name: "function", Value: "api-lambda"})

	if err := w.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("nothing happened, yet flush wrote %q (%v)", out.String(), err)
	}
	appends.Add(3)
	reqs.With("/v1/sheets/{sheet}/log", "POST", "200").Add(3)
	dur.With("/v1/sheets/{sheet}/log", "POST").Observe(3 * time.Millisecond)
	cache.Set(2)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines, data := parseAll(t, &out)
	if lines != 1 {
		t.Fatalf("%d documents for one route, want 1", lines)
	}
	got := sums(data)
	want := map[string]float64{
		"t_appended_entries_total{function=api-lambda}":                                                 3,
		"t_http_requests_total{code=200,function=api-lambda,method=POST,route=/v1/sheets/{sheet}/log}":  3,
		"t_http_request_duration_seconds{function=api-lambda,method=POST,route=/v1/sheets/{sheet}/log}": metrics.BucketValue(metrics.BucketOf(3 * time.Millisecond)),
		"t_engine_cache_engines{function=api-lambda}":                                                   2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	for _, d := range data {
		if d.Namespace != "Sheetlog/test" || (d.Name == "t_http_request_duration_seconds" && d.Unit != "Seconds") ||
			(d.Name == "t_appended_entries_total" && d.Unit != "Count") {
			t.Errorf("datum %+v", d)
		}
	}

	// Second flush: only the increase, and the gauge again.
	appends.Inc()
	reqs.With("/v1/sheets/{sheet}/log", "POST", "409").Inc()
	reqs.With("/v1/sheets/{sheet}/cells", "GET", "200").Inc()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines, data = parseAll(t, &out)
	got = sums(data)
	want = map[string]float64{
		"t_appended_entries_total{function=api-lambda}":                                                 1,
		"t_http_requests_total{code=409,function=api-lambda,method=POST,route=/v1/sheets/{sheet}/log}":  1,
		"t_http_requests_total{code=200,function=api-lambda,method=GET,route=/v1/sheets/{sheet}/cells}": 1,
		"t_engine_cache_engines{function=api-lambda}":                                                   2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	if lines != 2 {
		t.Fatalf("%d documents for two routes, want 2 (one value per dimension name in a document)", lines)
	}
}

// With samples kept, durations go out exactly; more than 100 values of
// one metric spread over several documents; observations past the
// samples' bound go out as bucket values.
func TestHistogramValues(t *testing.T) {
	defer metrics.KeepSamples(0)
	metrics.KeepSamples(150)
	r := metrics.NewRegistry()
	h := r.Histogram("t_snapshot_duration_seconds", "")
	var out bytes.Buffer
	w := emf.New(&out, r, "NS", emf.Dimension{Name: "function", Value: "workflow-lambda"})
	var want []float64
	for i := range 160 {
		d := time.Duration(i+1) * 1100 * time.Microsecond
		h.Observe(d)
		if i < 150 {
			want = append(want, d.Seconds())
		} else {
			want = append(want, metrics.BucketValue(metrics.BucketOf(d)))
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines, data := parseAll(t, &out)
	if lines != 2 {
		t.Fatalf("%d documents for 160 values, want 2", lines)
	}
	var got []float64
	for _, d := range data {
		if len(d.Values) > emf.MaxValues {
			t.Fatalf("%d values in one document", len(d.Values))
		}
		got = append(got, d.Values...)
	}
	sort.Float64s(got)
	sort.Float64s(want)
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("value %d: %v, want %v", i, got[i], want[i])
		}
	}
	if err := w.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("a flush with nothing new wrote %q", out.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestFlushReportsWriteErrors(t *testing.T) {
	r := metrics.NewRegistry()
	r.Counter("x_total", "").Inc()
	if err := emf.New(failingWriter{}, r, "NS").Flush(); err == nil {
		t.Fatal("no error from a failing writer")
	}
}

func TestParseRefusesBrokenDocuments(t *testing.T) {
	ok := `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["f"]],"Metrics":[{"Name":"m","Unit":"Count"}]}]},"f":"x","m":[1,2]}`
	ds, err := emf.Parse([]byte(ok))
	if err != nil || len(ds) != 1 || ds[0].Sum() != 3 || ds[0].Dims["f"] != "x" {
		t.Fatalf("valid document: %+v, %v", ds, err)
	}
	if _, err := emf.Parse([]byte(`{"level":"INFO","msg":"request"}`)); !errors.Is(err, emf.ErrNotEMF) {
		t.Fatalf("plain log line: %v", err)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "1"
	}
	for name, doc := range map[string]string{
		"no timestamp":      strings.Replace(ok, `"Timestamp":1,`, ``, 1),
		"no namespace":      strings.Replace(ok, `"Namespace":"N",`, ``, 1),
		"missing dimension": strings.Replace(ok, `"f":"x",`, ``, 1),
		"empty dimension":   strings.Replace(ok, `"f":"x"`, `"f":""`, 1),
		"numeric dimension": strings.Replace(ok, `"f":"x"`, `"f":1`, 1),
		"missing metric":    strings.Replace(ok, `,"m":[1,2]`, ``, 1),
		"string metric":     strings.Replace(ok, `"m":[1,2]`, `"m":"1"`, 1),
		"bad unit":          strings.Replace(ok, `"Count"`, `"Things"`, 1),
		"101 values":        strings.Replace(ok, `[1,2]`, "["+strings.Join(many, ",")+"]", 1),
		"10 dimensions":     strings.Replace(ok, `[["f"]]`, `[["f","f","f","f","f","f","f","f","f","f"]]`, 1),
	} {
		if _, err := emf.Parse([]byte(doc)); err == nil || errors.Is(err, emf.ErrNotEMF) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkFlushOneRequest is the API function's cost of publishing its
// metrics after one invocation: one request counted, its duration, one
// append, the cache gauges.
func BenchmarkFlushOneRequest(b *testing.B) {
	defer metrics.KeepSamples(0)
	metrics.KeepSamples(emf.MaxValues)
	r := metrics.NewRegistry()
	reqs := r.CounterVec("b_http_requests_total", "", "route", "method", "code")
	dur := r.HistogramVec("b_http_request_duration_seconds", "", "route", "method")
	appends := r.Counter("b_appended_entries_total", "")
	r.Gauge("b_engine_cache_engines", "", metrics.Count).Set(1)
	r.Gauge("b_engine_cache_bytes", "", metrics.Bytes).Set(13056)
	var out bytes.Buffer
	w := emf.New(&out, r, "Sheetlog/Bench", emf.Dimension{Name: "function", Value: "api-lambda"})
	b.ReportAllocs()
	for b.Loop() {
		reqs.With("/v1/sheets/{sheet}/log", "POST", "200").Inc()
		dur.With("/v1/sheets/{sheet}/log", "POST").Observe(12 * time.Millisecond)
		appends.Inc()
		out.Reset()
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len()), "bytes/flush")
}
