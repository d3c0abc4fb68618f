package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The handler's own cost over memory stores (no network, no fsync): what
// the API adds to the stores' latency.
//
//	go test -run '^$' -bench . -benchmem ./pkg/api/

func BenchmarkGetLog1000(b *testing.B) {
	f := newFixture(b, fixtureOptions{interval: 1 << 20})
	f.check = false
	for i := range 1000 {
		f.do("POST", "/v1/sheets/s1/log", fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":"cell %d","format":"0.00"}}`, i, i/10, i%10, i))
	}
	req := httptest.NewRequest("GET", "/v1/sheets/s1/log?start=0&end=1000", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"endSequenceId":"1000"`) {
			b.Fatalf("%d", rec.Code)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	f := newFixture(b, fixtureOptions{interval: 100})
	f.check = false
	i := 0
	b.ReportAllocs()
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

func BenchmarkCells100(b *testing.B) {
	f := newFixture(b, fixtureOptions{interval: 1 << 20})
	f.check = false
	for i := range 500 {
		f.do("POST", "/v1/sheets/s1/log", fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%d}}`, i, i/10, i%10, i))
	}
	req := httptest.NewRequest("GET", "/v1/sheets/s1/cells?range=A1:J10", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d", rec.Code)
		}
	}
}
