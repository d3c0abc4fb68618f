package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/internal/cputime"
	"github.com/sheetlog/sheetlog/pkg/metrics"
)

// The handler's own cost over memory stores (no network, no fsync): what
// the API adds to the stores' latency. Each runs twice, with metrics
// counted (metrics=on) and not (metrics=off), one after the other, so
// that with -count the two alternate and benchstat can compare them
// (make bench-api).
//
//	go test -run '^$' -bench . -benchmem ./pkg/api/

// cpuPerOp reports the process's CPU time per operation of the loop it
// surrounds (call it just before the loop, and the function it returns
// just after): unlike ns/op, other programs on a loaded machine barely
// change it.
func cpuPerOp(b *testing.B) func() {
	start := cputime.Process()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cputime.Process()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// onOff runs fn as the sub-benchmarks metrics=off and metrics=on.
func onOff(b *testing.B, fn func(b *testing.B)) {
	for _, on := range []bool{false, true} {
		name := "metrics=off"
		if on {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) {
			metrics.SetEnabled(on)
			defer metrics.SetEnabled(true)
			fn(b)
		})
	}
}

func BenchmarkGetLog1000(b *testing.B) { onOff(b, benchGetLog1000) }

func benchGetLog1000(b *testing.B) {
	f := newFixture(b, fixtureOptions{interval: 1 << 20})
	f.check = false
	for i := range 1000 {
		f.do("POST", "/v1/sheets/s1/log", fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":"cell %d","format":"0.00"}}`, i, i/10, i%10, i))
	}
	req := httptest.NewRequest("GET", "/v1/sheets/s1/log?start=0&end=1000", nil)
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"endSequenceId":"1000"`) {
			b.Fatalf("%d", rec.Code)
		}
	}
}

func BenchmarkAppend(b *testing.B) { onOff(b, benchAppend) }

func benchAppend(b *testing.B) {
	f := newFixture(b, fixtureOptions{interval: 100})
	f.check = false
	i := 0
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		body := fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":3,"value":%d}}`, i, i%5000, i)
		req := httptest.NewRequest("POST", "/v1/sheets/s1/log", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
		i++
	}
}

func BenchmarkCells100(b *testing.B) { onOff(b, benchCells100) }

func benchCells100(b *testing.B) {
	f := newFixture(b, fixtureOptions{interval: 1 << 20})
	f.check = false
	for i := range 500 {
		f.do("POST", "/v1/sheets/s1/log", fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%d}}`, i, i/10, i%10, i))
	}
	req := httptest.NewRequest("GET", "/v1/sheets/s1/cells?range=A1:J10", nil)
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d", rec.Code)
		}
	}
}
