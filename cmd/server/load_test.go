package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkServerLoad drives the real server binary over loopback, with a
// fresh data directory on disk (every append fsync'd):
//
//   - 16 concurrent clients, each appending to its own sheet, as fast as
//     acknowledgements come back: acknowledged appends/s and p50/p99
//     append latency;
//   - then GET log of 1,000 entries: p50/p99 latency.
//
// Run it with make bench-server. Each iteration appends 16 x 250 entries
// (snapshot interval 100, so snapshots run alongside). It runs twice:
// metrics=off (no -metrics-addr: nothing counted) and metrics=on
// (-metrics-addr, scraped every second, far more often than Prometheus
// would); server-cpu-ms is the CPU time the server process used for the
// whole iteration, which a loaded machine barely changes.
func BenchmarkServerLoad(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "metrics=off"
		if on {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) { benchServerLoad(b, on) })
	}
}

func benchServerLoad(b *testing.B, withMetrics bool) {
	const clients, perClient = 16, 250
	ctx := context.Background()
	for b.Loop() {
		args := []string{"-log-level", "warn"}
		if withMetrics {
			args = append(args, "-metrics-addr", "127.0.0.1:0")
		}
		p := startServer(b, b.TempDir(), args...)
		stopScrapes := func() {}
		if withMetrics {
			stopScrapes = p.scrapeEvery(b, time.Second)
		}
		lat := make([][]time.Duration, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for c := range clients {
			wg.Go(func() {
				sheet := fmt.Sprintf("load-%d", c)
				for i := range perClient {
					body := map[string]any{"sequenceId": strconv.Itoa(i), "entry": map[string]any{
						"type": "SetCellValueAndFormat", "row": i, "column": c, "value": i}}
					t0 := time.Now()
					var reply map[string]any
					if _, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, &reply); err != nil {
						b.Error(err)
						return
					}
					lat[c] = append(lat[c], time.Since(t0))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		all := slices.Concat(lat...)
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "appends/s")
		b.ReportMetric(ms(percentile(all, 50)), "append-p50-ms")
		b.ReportMetric(ms(percentile(all, 99)), "append-p99-ms")

		// GET log of 1,000 entries: a sheet with exactly that many.
		sheet := "load-query"
		for i := range 1000 {
			body := map[string]any{"sequenceId": strconv.Itoa(i), "entry": map[string]any{
				"type": "SetCellValueAndFormat", "row": i, "column": 0, "value": "some text"}}
			if _, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, &map[string]any{}); err != nil {
				b.Fatal(err)
			}
		}
		var q []time.Duration
		for range 100 {
			t0 := time.Now()
			var page logPage
			if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet+"/log?start=0&end=1000", nil, &page); err != nil {
				b.Fatal(err)
			}
			q = append(q, time.Since(t0))
			if len(page.Entries) != 1000 {
				b.Fatalf("query returned %d entries", len(page.Entries))
			}
		}
		b.ReportMetric(ms(percentile(q, 50)), "query1000-p50-ms")
		b.ReportMetric(ms(percentile(q, 99)), "query1000-p99-ms")
		stopScrapes()
		p.kill(b)
		if st := p.cmd.ProcessState; st != nil {
			b.ReportMetric(ms(st.UserTime()+st.SystemTime()), "server-cpu-ms")
		}
	}
}

// scrapeEvery reads the server's metrics every interval until the
// returned function is called, failing the benchmark if a scrape fails.
func (p *proc) scrapeEvery(b *testing.B, interval time.Duration) (stop func()) {
	url := ""
	for line := range strings.Lines(p.log()) {
		var rec struct{ Msg, URL string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "metrics listening" {
			url = rec.URL
		}
	}
	if url == "" {
		b.Fatalf("the server did not say where it serves metrics\n%s", p.log())
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	return func() { close(done); wg.Wait() }
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
