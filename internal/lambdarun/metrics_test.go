package lambdarun_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	memblob "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	memlog "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/metrics"
	"github.com/sheetlog/sheetlog/pkg/metrics/emf"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// The names the stack graphs and alarms on (awsschema) are metrics the
// functions publish, of the kind the stack expects.
func TestMetricNamesAreDefined(t *testing.T) {
	kinds := map[string]metrics.Kind{}
	labels := map[string][]string{}
	for _, f := range metrics.Default.Gather(false) {
		kinds[f.Name] = f.Kind
		labels[f.Name] = f.Labels
	}
	for name, kind := range map[string]metrics.Kind{
		awsschema.MetricHTTPRequests: metrics.KindCounter, awsschema.MetricHTTPDuration: metrics.KindHistogram,
		awsschema.MetricAppendedEntries: metrics.KindCounter, awsschema.MetricAppendConflicts: metrics.KindCounter,
		awsschema.MetricSnapshots: metrics.KindCounter, awsschema.MetricSnapshotDuration: metrics.KindHistogram,
		awsschema.MetricSnapshotTiles: metrics.KindCounter, awsschema.MetricWorkflowRetries: metrics.KindCounter,
		awsschema.MetricPendingOldestAge: metrics.KindGauge, awsschema.MetricCacheEngines: metrics.KindGauge,
		awsschema.MetricCacheBytes: metrics.KindGauge,
	} {
		if k, ok := kinds[name]; !ok || k != kind {
			t.Errorf("%s: defined %v as %v, want a %v", name, ok, k, kind)
		}
	}
	if fmt.Sprint(labels[awsschema.MetricSnapshots]) != "["+awsschema.DimResult+"]" {
		t.Errorf("%s labels %v", awsschema.MetricSnapshots, labels[awsschema.MetricSnapshots])
	}
}

// parseEMF parses the documents written to out and empties it; every
// line must be a valid one.
func parseEMF(t *testing.T, out *bytes.Buffer) (docs int, data []emf.Datum) {
	t.Helper()
	n := strings.Count(out.String(), "\n")
	docs, data, err := emf.ParseLines(out)
	if err != nil || docs != n {
		t.Fatalf("%d of %d lines are EMF documents: %v", docs, n, err)
	}
	out.Reset()
	return docs, data
}

// The API function writes, after every invocation, the EMF documents of
// what that invocation counted: its request (route pattern, method,
// code), its duration, the entries it appended, under the function's
// dimension and the configured namespace, and no sheet id anywhere.
func TestAPIFunctionMetrics(t *testing.T) {
	stores := lambdarun.Stores{Logs: memlog.NewStore(memlog.Options{}), Blobs: memblob.New(memblob.Options{})}
	cfg := lambdarun.Config{SnapshotInterval: 100, MetricsNamespace: "Sheetlog/Test"}
	log := slog.New(slog.DiscardHandler)
	h, err := lambdarun.APIHandler(stores, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m := lambdarun.NewMetricsTo(&out, awsschema.FunctionAPI, cfg, log)
	defer metrics.KeepSamples(0)
	m.Flush() // what other tests counted in this process
	out.Reset()
	invoke := lambdarun.WithMetrics(m, apigw.Handler(h))
	call := func(method, path, body string) {
		raw, query, _ := strings.Cut(path, "?")
		ev := events.APIGatewayV2HTTPRequest{RawPath: raw, RawQueryString: query, Body: body,
			Headers: map[string]string{"content-type": "application/json"}}
		ev.RequestContext.HTTP.Method = method
		ev.RequestContext.HTTP.Path = raw
		if _, err := invoke(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	appendAt := func(i int) string {
		return fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":0,"value":%d}}`, i, i, i)
	}
	docs := 0
	var data []emf.Datum
	step := func(method, path, body string) {
		call(method, path, body)
		n, ds := parseEMF(t, &out)
		if n == 0 {
			t.Fatalf("%s %s: no metrics after the invocation", method, path)
		}
		docs += n
		data = append(data, ds...)
	}
	step("POST", "/v1/sheets/emf-sheet/log", appendAt(0))
	step("POST", "/v1/sheets/emf-sheet/log", appendAt(1))
	step("POST", "/v1/sheets/emf-sheet/log", appendAt(1)) // 409
	step("GET", "/v1/sheets/emf-sheet/cells?range=A1:A2", "")
	step("GET", "/v1/nothing", "")
	if docs != 5 {
		t.Errorf("%d documents for 5 invocations of one request each, want 5", docs)
	}

	sums := map[string]float64{}
	durations := map[string]int{}
	for _, d := range data {
		if d.Namespace != "Sheetlog/Test" || d.Dims[awsschema.DimFunction] != awsschema.FunctionAPI {
			t.Errorf("datum %s in %s", d.Key(), d.Namespace)
		}
		for k, v := range d.Dims {
			if strings.Contains(v, "emf-sheet") {
				t.Errorf("%s: dimension %s holds a sheet id", d.Key(), k)
			}
		}
		if d.Name == awsschema.MetricHTTPDuration {
			durations[d.Key()] += len(d.Values)
			for _, v := range d.Values {
				if v <= 0 || v > 10 {
					t.Errorf("%s: duration %v s", d.Key(), v)
				}
			}
			continue
		}
		// Counters only: gauges carry values, not this workload's counts
		// (other tests in this process set some of them).
		if strings.HasSuffix(d.Name, "_total") {
			sums[d.Key()] += d.Sum()
		}
	}
	log_ := "route=/v1/sheets/{sheet}/log"
	want := map[string]float64{
		"sheetlog_http_requests_total{code=200,function=api-lambda,method=POST," + log_ + "}":                  2,
		"sheetlog_http_requests_total{code=409,function=api-lambda,method=POST," + log_ + "}":                  1,
		"sheetlog_http_requests_total{code=200,function=api-lambda,method=GET,route=/v1/sheets/{sheet}/cells}": 1,
		"sheetlog_http_requests_total{code=404,function=api-lambda,method=GET,route=unmatched}":                1,
		"sheetlog_appended_entries_total{function=api-lambda}":                                                 2,
		"sheetlog_append_conflicts_total{function=api-lambda}":                                                 1,
	}
	if fmt.Sprint(sums) != fmt.Sprint(want) {
		t.Errorf("sums\n got %v\nwant %v", sums, want)
	}
	wantDur := map[string]int{
		"sheetlog_http_request_duration_seconds{function=api-lambda,method=POST," + log_ + "}":                  3,
		"sheetlog_http_request_duration_seconds{function=api-lambda,method=GET,route=/v1/sheets/{sheet}/cells}": 1,
		"sheetlog_http_request_duration_seconds{function=api-lambda,method=GET,route=unmatched}":                1,
	}
	if fmt.Sprint(durations) != fmt.Sprint(wantDur) {
		t.Errorf("durations\n got %v\nwant %v", durations, wantDur)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

// A metrics write that fails is logged, never an invocation's error.
func TestMetricsNeverFailAnInvocation(t *testing.T) {
	var logs bytes.Buffer
	m := lambdarun.NewMetricsTo(failingWriter{}, awsschema.FunctionAPI, lambdarun.Config{}, slog.New(slog.NewTextHandler(&logs, nil)))
	defer metrics.KeepSamples(0)
	workers.WorkflowRetries.Inc() // something to write
	res, err := lambdarun.WithMetrics(m, func(context.Context, int) (int, error) { return 7, nil })(context.Background(), 1)
	if res != 7 || err != nil || !strings.Contains(logs.String(), "could not write the metrics") {
		t.Fatalf("%d %v; log %q", res, err, logs.String())
	}
}

// The sweeper's oldest pending age is that of the oldest entry it found
// pending past the grace period, and 0 once it finds none.
func TestSweepOldestPendingAge(t *testing.T) {
	f := newFixture(t)
	f.appendCells(t, "age", 0, 3, map[int]string{1: eventlog.WorkflowSnapshot})
	f.appendCells(t, "age-poison", 0, 1, map[int]string{0: "nobody-knows"}) // stays pending; not counted
	w := f.workflows(t, nil)
	ctx := context.Background()
	time.Sleep(50 * time.Millisecond)
	if _, err := w.Sweep(ctx, f.stores.Dynamo, time.Hour, 10, time.Now()); err != nil {
		t.Fatal(err)
	}
	if age := workers.PendingOldestAge.Seconds(time.Now()); age != 0 {
		t.Fatalf("age %v with nothing past an hour's grace", age)
	}
	now := time.Now()
	if _, err := w.Sweep(ctx, f.stores.Dynamo, 10*time.Millisecond, 0, now); err != nil {
		t.Fatal(err)
	}
	// max 0: nothing runs, the entry stays pending and is seen.
	if age := workers.PendingOldestAge.Seconds(now); age < 0.05 || age > 60 {
		t.Fatalf("oldest pending age %v s, want the entry's (about 0.05 s)", age)
	}
	if res, err := w.Sweep(ctx, f.stores.Dynamo, 10*time.Millisecond, 10, time.Now()); err != nil || res.Ran != 1 || res.Unknown != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if _, err := w.Sweep(ctx, f.stores.Dynamo, 10*time.Millisecond, 10, time.Now()); err != nil {
		t.Fatal(err)
	}
	if age := workers.PendingOldestAge.Seconds(time.Now()); age != 0 {
		t.Fatalf("age %v once only an unknown workflow is pending", age)
	}
}
