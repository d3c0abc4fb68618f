package api

import (
	"fmt"
	"github.com/sheetlog/sheetlog/pkg/metrics"
	"strings"
	"testing"
)

// requestCounts reads sheetlog_http_requests_total and the count of
// sheetlog_http_request_duration_seconds by their labels.
func requestCounts() (reqs, durs map[string]uint64) {
	reqs, durs = map[string]uint64{}, map[string]uint64{}
	for _, f := range []string{"sheetlog_http_requests_total", "sheetlog_http_request_duration_seconds"} {
		for _, fam := range metrics.Default.Gather(false) {
			if fam.Name != f {
				continue
			}
			for _, s := range fam.Series {
				k := strings.Join(s.Labels, " ")
				if s.Hist != nil {
					durs[k] = s.Hist.Count
				} else {
					reqs[k] = uint64(s.Value)
				}
			}
		}
	}
	return reqs, durs
}

// TestMetricsCountRequests sends a known set of requests and checks that
// the request counter and duration histogram grew by exactly them, under
// the route's pattern (never the path with its sheet id), the method and
// the status.
func TestMetricsCountRequests(t *testing.T) {
	// In a handler with detached change feed requests too: theirs is
	// counted when their reply is written.
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprintf("detach=%v", detach), func(t *testing.T) {
			countRequests(t, newFixture(t, fixtureOptions{interval: 100, detach: detach}))
		})
	}
}

func countRequests(t *testing.T, f *fixture) {
	reqs0, durs0 := requestCounts()
	for i := range 3 {
		f.do("POST", "/v1/sheets/metrics-a/log", fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":0,"value":1}}`, i, i))
	}
	f.do("POST", "/v1/sheets/metrics-a/log", `{"sequenceId":0,"entry":{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1}}`) // 409
	f.do("GET", "/v1/sheets/metrics-a/log?start=3&wait=1", "")                                                                         // held a second: the change feed
	f.do("GET", "/v1/sheets/metrics-a/log?start=0", "")
	f.do("GET", "/v1/sheets/metrics-b/cells?range=A1:B2", "")
	f.do("HEAD", "/v1/sheets/metrics-b/cells?range=A1", "")
	f.do("GET", "/v1/sheets/metrics-b/blobs/", "")
	f.do("GET", "/v1/nothing-here", "")                  // 404, no route
	f.do("DELETE", "/v1/sheets/metrics-b/log", "")       // 405
	f.do("GET", "/v1/sheets/metrics-b/cells?range=", "") // 400
	reqs1, durs1 := requestCounts()

	wantReqs := map[string]uint64{
		"/v1/sheets/{sheet}/log POST 200":     3,
		"/v1/sheets/{sheet}/log POST 409":     1,
		"/v1/sheets/{sheet}/log?wait GET 200": 1,
		"/v1/sheets/{sheet}/log GET 200":      1,
		"/v1/sheets/{sheet}/cells GET 200":    1,
		"/v1/sheets/{sheet}/cells HEAD 200":   1,
		"/v1/sheets/{sheet}/blobs/ GET 200":   1,
		"unmatched GET 404":                   1,
		"/v1/sheets/{sheet}/log other 405":    1,
		"/v1/sheets/{sheet}/cells GET 400":    1,
	}
	wantDurs := map[string]uint64{
		"/v1/sheets/{sheet}/log POST":     4,
		"/v1/sheets/{sheet}/log?wait GET": 1,
		"/v1/sheets/{sheet}/log GET":      1,
		"/v1/sheets/{sheet}/cells GET":    2,
		"/v1/sheets/{sheet}/cells HEAD":   1,
		"/v1/sheets/{sheet}/blobs/ GET":   1,
		"unmatched GET":                   1,
		"/v1/sheets/{sheet}/log other":    1,
	}
	for _, c := range []struct {
		name   string
		before map[string]uint64
		after  map[string]uint64
		want   map[string]uint64
	}{{"requests", reqs0, reqs1, wantReqs}, {"durations", durs0, durs1, wantDurs}} {
		for k, after := range c.after {
			if d := after - c.before[k]; d != c.want[k] {
				t.Errorf("%s{%s} grew by %d, want %d", c.name, k, d, c.want[k])
			}
			if strings.Contains(k, "metrics-") {
				t.Errorf("%s has a sheet id in its labels: %s", c.name, k)
			}
		}
		for k, n := range c.want {
			if _, ok := c.after[k]; !ok && n > 0 {
				t.Errorf("%s{%s} missing", c.name, k)
			}
		}
	}
}
