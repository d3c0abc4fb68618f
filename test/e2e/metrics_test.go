package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// emfSeries and emfStats mirror the harness's GET /emf: every metric the
// functions published in Embedded Metric Format in their logs, summed as
// CloudWatch Logs would extract them.
type emfSeries struct {
	Name  string            `json:"name"`
	Dims  map[string]string `json:"dims"`
	Sum   float64           `json:"sum"`
	Count int               `json:"count"`
	Max   float64           `json:"max"`
	P50   float64           `json:"p50"`
	P99   float64           `json:"p99"`
}

type emfStats struct {
	Documents int                   `json:"documents"`
	Invalid   int                   `json:"invalid"`
	FirstBad  string                `json:"firstBad"`
	Series    map[string]*emfSeries `json:"series"`
}

// total adds up the sums (counts with values) of the series of name
// whose dimensions include every "k=v" of dims, over every function.
func (s emfStats) total(name string, values bool, dims ...string) float64 {
	var n float64
next:
	for _, x := range s.Series {
		if x.Name != name {
			continue
		}
		for _, kv := range dims {
			k, v, _ := strings.Cut(kv, "=")
			if x.Dims[k] != v {
				continue next
			}
		}
		if values {
			n += float64(x.Count)
		} else {
			n += x.Sum
		}
	}
	return n
}

// TestFunctionMetrics drives a known workload through the API and checks
// the metrics the three functions published in their logs (the harness
// parses every EMF line they print, as CloudWatch Logs would) against it:
// requests by route pattern, method and code, their durations, appends,
// conflicts, snapshots written by the workflow function and the sweeper
// together, no failures or retries, and no sheet id in any dimension.
// It runs alone (not in parallel), before the parallel tests start.
func TestFunctionMetrics(t *testing.T) {
	hc := needHarness(t, "read the functions' metrics from their logs")
	var before emfStats
	control(t, http.MethodGet, "/emf", &before)
	sheet := "emf-" + cfg.runID
	// Appends in three rounds, each snapshot complete before the next
	// round, so that exactly two are requested: at N and at 2N.
	N := hc.SnapshotInterval
	n := 2*N + 5
	polls := 0
	waitSnapshot := func(at int) {
		t.Helper()
		var st struct {
			Pending      []any `json:"pending"`
			LastSnapshot *struct {
				SequenceID string `json:"sequenceId"`
			} `json:"lastSnapshot"`
		}
		for deadline := time.Now().Add(cfg.wait); ; time.Sleep(200 * time.Millisecond) {
			call(t, http.MethodGet, sheetPath(sheet), nil).expect(t, http.StatusOK, "status").decode(t, &st)
			polls++
			if len(st.Pending) == 0 && st.LastSnapshot != nil && st.LastSnapshot.SequenceID == fmt.Sprint(at) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the snapshot of %s at %d is not complete after %v: %+v", sheet, at, cfg.wait, st)
			}
		}
	}
	appendUpTo := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			body := map[string]any{"sequenceId": fmt.Sprint(i), "entry": map[string]any{
				"type": "SetCellValueAndFormat", "row": i, "column": i % 7, "value": i}}
			call(t, http.MethodPost, sheetPath(sheet)+"/log", body).expect(t, http.StatusOK, "append")
		}
	}
	appendUpTo(0, N+1)
	waitSnapshot(N)
	appendUpTo(N+1, 2*N+1)
	waitSnapshot(2 * N)
	appendUpTo(2*N+1, n)
	const snapshots = 2
	stale := map[string]any{"sequenceId": "0", "entry": map[string]any{"type": "SetCellValueAndFormat", "row": 0, "column": 0, "value": 1}}
	call(t, http.MethodPost, sheetPath(sheet)+"/log", stale).expect(t, http.StatusConflict, "stale append")
	call(t, http.MethodGet, sheetPath(sheet)+"/cells?range=A1:G10", nil).expect(t, http.StatusOK, "cells")
	if entries := readLog(t, sheet, 0, uint64(n)); len(entries) != n {
		t.Fatalf("log of %d entries, want %d", len(entries), n)
	}

	logRoute, api := "route=/v1/sheets/{sheet}/log", "function=api-lambda"
	checks := []struct {
		what   string
		name   string
		values bool
		dims   []string
		want   float64
	}{
		{"appends answered 200", "sheetlog_http_requests_total", false, []string{api, logRoute, "method=POST", "code=200"}, float64(n)},
		{"appends answered 409", "sheetlog_http_requests_total", false, []string{api, logRoute, "method=POST", "code=409"}, 1},
		{"cells read", "sheetlog_http_requests_total", false, []string{api, "route=/v1/sheets/{sheet}/cells", "method=GET", "code=200"}, 1},
		{"status polls", "sheetlog_http_requests_total", false, []string{api, "route=/v1/sheets/{sheet}", "method=GET", "code=200"}, float64(polls)},
		{"append durations", "sheetlog_http_request_duration_seconds", true, []string{api, logRoute, "method=POST"}, float64(n + 1)},
		{"entries appended", "sheetlog_appended_entries_total", false, []string{api}, float64(n)},
		{"conflicts", "sheetlog_append_conflicts_total", false, []string{api}, 1},
		{"snapshots written (workflow and sweeper)", "sheetlog_snapshots_total", false, []string{"result=written"}, float64(snapshots)},
		{"snapshot runs failed", "sheetlog_snapshots_total", false, []string{"result=failed"}, 0},
		{"workflow retries", "sheetlog_workflow_retries_total", false, nil, 0},
	}
	var after emfStats
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A function writes its metrics as an invocation ends; the harness
		// reads them a moment later.
		control(t, http.MethodGet, "/emf", &after)
		settled := true
		for _, c := range checks {
			if after.total(c.name, c.values, c.dims...)-before.total(c.name, c.values, c.dims...) != c.want {
				settled = false
			}
		}
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range checks {
		if got := after.total(c.name, c.values, c.dims...) - before.total(c.name, c.values, c.dims...); got != c.want {
			t.Errorf("%s: %s%v grew by %v, want %v", c.what, c.name, c.dims, got, c.want)
		}
	}
	if d := after.total("sheetlog_snapshot_duration_seconds", true) - before.total("sheetlog_snapshot_duration_seconds", true); d < float64(snapshots) {
		t.Errorf("%v snapshot durations for %d snapshots", d, snapshots)
	}
	if after.Invalid != 0 {
		t.Errorf("%d invalid EMF documents; the first: %s", after.Invalid, after.FirstBad)
	}
	for k, s := range after.Series {
		for d, v := range s.Dims {
			if strings.Contains(v, cfg.runID) {
				t.Errorf("%s: dimension %s holds a sheet id", k, d)
			}
		}
	}
	if s := after.Series["sheetlog_http_request_duration_seconds{function=api-lambda,method=POST,"+logRoute+"}"]; s != nil {
		t.Logf("append handler time in the API function: p50 %.1f ms, p99 %.1f ms over %d appends", s.P50*1e3, s.P99*1e3, s.Count)
	}
}
