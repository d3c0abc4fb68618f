package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetricsAddrFlag(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil || c.metricsAddr != "" {
		t.Fatalf("default: %q, %v (metrics must be off by default)", c.metricsAddr, err)
	}
	c, err = parseConfig(nil, func(k string) string {
		return map[string]string{"SHEETLOG_METRICS_ADDR": "127.0.0.1:9090"}[k]
	}, io.Discard)
	if err != nil || c.metricsAddr != "127.0.0.1:9090" {
		t.Fatalf("from the environment: %q, %v", c.metricsAddr, err)
	}
	if _, err := parseConfig([]string{"-addr", "127.0.0.1:8080", "-metrics-addr", "127.0.0.1:8080"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("metrics on the API's address were accepted")
	}
}

// metricsURL is the URL the server says it serves metrics at.
func (p *proc) metricsURL(t testing.TB) string {
	t.Helper()
	for line := range strings.Lines(p.log()) {
		var rec struct{ Msg, URL string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "metrics listening" {
			return rec.URL
		}
	}
	t.Fatalf("the server did not say where it serves metrics\n%s", p.log())
	return ""
}

// scrape reads the exposition, lints it with promlint and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	problems, err := promlint.New(strings.NewReader(string(body))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value finds the series of name whose labels include every pair of
// labels ("k=v"), and returns its value (a histogram's count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestMetricsEndpoint runs the server binary with -metrics-addr, drives a
// known workload through the API and checks what a scrape reports
// against it: request counts by route pattern, method and code, appends,
// conflicts, snapshots, the cache gauges, and the runtime and process
// collectors. The API's own listener does not serve them.
func TestMetricsEndpoint(t *testing.T) {
	ctx := context.Background()
	p := startServer(t, t.TempDir(), "-metrics-addr", "127.0.0.1:0", "-snapshot-interval", "10", "-log-level", "info")
	murl := p.metricsURL(t)
	if strings.HasPrefix(murl, p.url) {
		t.Fatalf("metrics at %s share the API's listener %s", murl, p.url)
	}

	const appends = 25
	for i := range appends {
		body := map[string]any{"sequenceId": strconv.Itoa(i), "entry": map[string]any{
			"type": "SetCellValueAndFormat", "row": i, "column": i % 4, "value": i}}
		if _, err := p.do(ctx, "POST", "/v1/sheets/metrics-a/log", body, &map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	stale := map[string]any{"sequenceId": "0", "entry": map[string]any{"type": "SetCellValueAndFormat", "row": 0, "column": 0, "value": 1}}
	if code, _ := p.do(ctx, "POST", "/v1/sheets/metrics-a/log", stale, nil); code != http.StatusConflict {
		t.Fatalf("stale append: %d", code)
	}
	if _, err := p.do(ctx, "GET", "/v1/sheets/metrics-a/cells?range=A1:D25", nil, &map[string]any{}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/no-such-route", "/metrics"} {
		if code, _ := p.do(ctx, "GET", path, nil, nil); code != http.StatusNotFound {
			t.Fatalf("GET %s on the API's listener: %d", path, code)
		}
	}
	polls := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st status
		if _, err := p.do(ctx, "GET", "/v1/sheets/metrics-a", nil, &st); err != nil {
			t.Fatal(err)
		}
		polls++
		if len(st.Pending) == 0 && st.LastSnapshot != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshots still pending: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A change feed request held while the server is scraped: the
	// waiters gauge sees it, and an append releases it.
	held := make(chan error, 1)
	go func() {
		_, err := p.do(ctx, "GET", "/v1/sheets/metrics-feed/log?start=0&wait=20", nil, &map[string]any{})
		held <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); value(t, scrape(t, murl), "sheetlog_feed_waiters") != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held change feed request is not counted in sheetlog_feed_waiters")
		}
	}
	first := map[string]any{"sequenceId": "0", "entry": map[string]any{"type": "SetCellValueAndFormat", "row": 0, "column": 0, "value": 1}}
	if _, err := p.do(ctx, "POST", "/v1/sheets/metrics-feed/log", first, &map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	written := 0
	for _, e := range readLog(t, ctx, p, "metrics-a") {
		if e.Snapshot != "" {
			written++
		}
	}
	if written == 0 {
		t.Fatal("no snapshot written")
	}

	// A run counts itself once it returns, just after its completion is
	// visible in the log: scrape until the last one has.
	fams := scrape(t, murl)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); fams = scrape(t, murl) {
		if value(t, fams, "sheetlog_snapshots_total", "result=written") == float64(written) &&
			value(t, fams, "sheetlog_pending_oldest_age_seconds") == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	log := "route=/v1/sheets/{sheet}/log"
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sheetlog_http_requests_total", []string{log, "method=POST", "code=200"}, appends + 1},
		{"sheetlog_http_requests_total", []string{"route=/v1/sheets/{sheet}/log?wait", "method=GET", "code=200"}, 1},
		{"sheetlog_http_requests_total", []string{log, "method=POST", "code=409"}, 1},
		{"sheetlog_http_requests_total", []string{log, "method=GET", "code=200"}, 1},
		{"sheetlog_http_requests_total", []string{"route=/v1/sheets/{sheet}/cells", "method=GET", "code=200"}, 1},
		{"sheetlog_http_requests_total", []string{"route=/v1/sheets/{sheet}", "method=GET", "code=200"}, float64(polls)},
		{"sheetlog_http_requests_total", []string{"route=unmatched", "method=GET", "code=404"}, 2},
		{"sheetlog_http_request_duration_seconds", []string{log, "method=POST"}, appends + 2},
		{"sheetlog_appended_entries_total", nil, appends + 1},
		{"sheetlog_feed_waiters", nil, 0},
		{"sheetlog_append_conflicts_total", nil, 1},
		{"sheetlog_snapshots_total", []string{"result=written"}, float64(written)},
		{"sheetlog_snapshots_total", []string{"result=failed"}, 0},
		{"sheetlog_snapshot_duration_seconds", nil, float64(written)},
		{"sheetlog_workflow_retries_total", nil, 0},
		{"sheetlog_pending_oldest_age_seconds", nil, 0},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := value(t, fams, "sheetlog_snapshot_tiles_total", "how=encoded"); n < float64(written) {
		t.Errorf("%v tiles encoded for %d snapshots", n, written)
	}
	if n := value(t, fams, "sheetlog_engine_cache_engines"); n != 3 {
		t.Errorf("%v engines cached, want 3 (the host's and the worker's of metrics-a, the host's of metrics-feed)", n)
	}
	if n := value(t, fams, "sheetlog_engine_cache_bytes"); n <= 0 {
		t.Errorf("engine cache bytes %v", n)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s: the runtime and process collectors are missing", name)
		}
	}
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "metrics-a") {
					t.Errorf("%s has a sheet id in label %s", name, l.GetName())
				}
			}
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(len(fams), " families"))
	}
}

// Without -metrics-addr nothing listens for them.
func TestMetricsOffByDefault(t *testing.T) {
	p := startServer(t, t.TempDir())
	if strings.Contains(p.log(), "metrics listening") {
		t.Fatalf("metrics served without -metrics-addr:\n%s", p.log())
	}
}
