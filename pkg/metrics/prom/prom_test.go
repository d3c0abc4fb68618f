package prom_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/sheetlog/sheetlog/pkg/metrics"
	"github.com/sheetlog/sheetlog/pkg/metrics/prom"
)

func registry() *metrics.Registry {
	r := metrics.NewRegistry()
	r.Counter("demo_appended_entries_total", "Entries appended.").Add(3)
	v := r.CounterVec("demo_http_requests_total", "Requests answered.", "route", "method", "code")
	v.With("/v1/sheets/{sheet}/log", "POST", "200").Add(2)
	v.With("/v1/sheets/{sheet}/log", "POST", "409").Inc()
	r.Gauge("demo_engine_cache_bytes", "Bytes held by cached engines.", metrics.Bytes).Set(4096)
	h := r.HistogramVec("demo_http_request_duration_seconds", "Time to answer.", "route", "method")
	for _, d := range []time.Duration{50 * time.Microsecond, 2 * time.Millisecond, 2500 * time.Microsecond, 40 * time.Millisecond, 2 * time.Hour} {
		h.With("/v1/sheets/{sheet}/log", "POST").Observe(d)
	}
	return r
}

func TestExposition(t *testing.T) {
	srv := httptest.NewServer(prom.Handler(registry()))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		"# TYPE demo_appended_entries_total counter\ndemo_appended_entries_total 3\n",
		`demo_http_requests_total{code="409",method="POST",route="/v1/sheets/{sheet}/log"} 1`,
		"demo_engine_cache_bytes 4096\n",
		`demo_http_request_duration_seconds_bucket{method="POST",route="/v1/sheets/{sheet}/log",le="0.0001"} 1`,
		`demo_http_request_duration_seconds_bucket{method="POST",route="/v1/sheets/{sheet}/log",le="0.0025"} 3`,
		`demo_http_request_duration_seconds_bucket{method="POST",route="/v1/sheets/{sheet}/log",le="0.05"} 4`,
		`demo_http_request_duration_seconds_bucket{method="POST",route="/v1/sheets/{sheet}/log",le="1000"} 4`,
		`demo_http_request_duration_seconds_bucket{method="POST",route="/v1/sheets/{sheet}/log",le="+Inf"} 5`,
		`demo_http_request_duration_seconds_count{method="POST",route="/v1/sheets/{sheet}/log"} 5`,
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// promlint finds nothing wrong with the names, help and units.
func TestLint(t *testing.T) {
	c := prom.NewCollector(registry())
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(c); n != 5 {
		t.Fatalf("%d series, want 5", n)
	}
	// The same check on the whole exposition, as a scraper sees it.
	rec := httptest.NewRecorder()
	prom.Handler(registry()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	problems, err = promlint.New(strings.NewReader(rec.Body.String())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint (exposition): %s: %s", p.Metric, p.Text)
	}
}

// BenchmarkScrape is one scrape of a registry like the server's (its
// families, about 30 series) with the Go runtime and process collectors:
// what a Prometheus scrape costs the server.
func BenchmarkScrape(b *testing.B) {
	r := registry()
	v := r.CounterVec("demo_more_total", "More series.", "route", "code")
	for i := range 25 {
		v.With("/r", fmt.Sprint(200+i)).Inc()
	}
	h := prom.Handler(r)
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
