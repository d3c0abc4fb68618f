package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
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
// (snapshot interval 100, so snapshots run alongside). It runs with
// metrics off (no -metrics-addr: nothing counted) and on (-metrics-addr,
// scraped every second, far more often than Prometheus would);
// server-cpu-ms is the CPU time the server process used for the whole
// iteration. On a loaded machine the two differ by whatever else ran
// meanwhile: BenchmarkServerMetricsOverhead compares them fairly.
func BenchmarkServerLoad(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "metrics=off"
		if on {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				p, stop := startLoadServer(b, on, time.Second)
				r := runLoad(b, p)[0]
				stop()
				r.report(b)
			}
		})
	}
}

// BenchmarkServerMetricsOverhead compares two servers side by side, one
// with metrics off and one with them on: 16 clients each send every
// append, and then every GET log of 1,000 entries, to one server and then
// the other, so that both get the same requests at the same moments and
// whatever else the machine does slows both alike. It reports the one
// with metrics over the one without (1.02: 2 % worse): append-p50-on/off
// and append-p99-on/off (latency), query-p50-on/off, and cpu-on/off (CPU
// time of the server process for the same requests). It runs with the
// metrics never scraped (scrape=none: what counting costs) and scraped
// every second (scrape=1s, 15 to 60 times more often than Prometheus is
// usually set to: what serving them adds). make bench-server runs it
// several times and benchstat summarises the runs.
func BenchmarkServerMetricsOverhead(b *testing.B) {
	for _, every := range []time.Duration{0, time.Second} {
		name := "scrape=none"
		if every > 0 {
			name = "scrape=" + every.String()
		}
		b.Run(name, func(b *testing.B) { benchServerMetricsOverhead(b, every) })
	}
}

func benchServerMetricsOverhead(b *testing.B, scrapeEvery time.Duration) {
	for b.Loop() {
		off, stopOff := startLoadServer(b, false, 0)
		on, stopOn := startLoadServer(b, true, scrapeEvery)
		res := runLoad(b, off, on)
		stopOn()
		stopOff()
		ratio := func(on, off time.Duration) float64 { return float64(on) / float64(off) }
		b.ReportMetric(ratio(percentile(res[1].appends, 50), percentile(res[0].appends, 50)), "append-p50-on/off")
		b.ReportMetric(ratio(percentile(res[1].appends, 99), percentile(res[0].appends, 99)), "append-p99-on/off")
		b.ReportMetric(ratio(percentile(res[1].queries, 50), percentile(res[0].queries, 50)), "query-p50-on/off")
		if c := res[0].cpu(); c > 0 {
			b.ReportMetric(ratio(res[1].cpu(), c), "cpu-on/off")
		}
	}
}

// startLoadServer starts a server for a load run, with metrics on
// (scraped every scrapeEvery, if positive) or off; stop ends the scrapes
// and kills it.
func startLoadServer(b *testing.B, withMetrics bool, scrapeEvery time.Duration) (*proc, func()) {
	args := []string{"-log-level", "warn"}
	if withMetrics {
		args = append(args, "-metrics-addr", "127.0.0.1:0")
	}
	p := startServer(b, b.TempDir(), args...)
	stopScrapes := func() {}
	if withMetrics && scrapeEvery > 0 {
		stopScrapes = p.scrapeEvery(b, scrapeEvery)
	}
	return p, func() { stopScrapes(); p.kill(b) }
}

// loadResult is what one load run measured.
type loadResult struct {
	p                *proc
	elapsed          time.Duration // of the appends
	appends, queries []time.Duration
}

func (r loadResult) appendsPerSec() float64 { return float64(len(r.appends)) / r.elapsed.Seconds() }

// cpu is the CPU time the server used, once it is gone (0 before).
func (r loadResult) cpu() time.Duration {
	if st := r.p.cmd.ProcessState; st != nil {
		return st.UserTime() + st.SystemTime()
	}
	return 0
}

// report reports the run's figures; the server must be gone, for its CPU
// time.
func (r loadResult) report(b *testing.B) {
	b.ReportMetric(r.appendsPerSec(), "appends/s")
	b.ReportMetric(ms(percentile(r.appends, 50)), "append-p50-ms")
	b.ReportMetric(ms(percentile(r.appends, 99)), "append-p99-ms")
	b.ReportMetric(ms(percentile(r.queries, 50)), "query1000-p50-ms")
	b.ReportMetric(ms(percentile(r.queries, 99)), "query1000-p99-ms")
	if c := r.cpu(); c > 0 {
		b.ReportMetric(ms(c), "server-cpu-ms")
	}
}

// runLoad is one iteration's workload, on every server of ps alike: 16
// clients appending 250 entries each to their own sheets, then 100 GET
// log of a sheet of 1,000 entries. Each request goes to every server in
// turn, each server first as often as the others, so that with several
// servers each gets the same requests at about the same moments.
func runLoad(b *testing.B, ps ...*proc) []loadResult {
	const clients, perClient = 16, 250
	ctx := context.Background()
	res := make([]loadResult, len(ps))
	lat := make([][][]time.Duration, len(ps)) // [server][client]
	for k, p := range ps {
		res[k].p = p
		lat[k] = make([][]time.Duration, clients)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			sheet := fmt.Sprintf("load-%d", c)
			for i := range perClient {
				body := map[string]any{"sequenceId": strconv.Itoa(i), "entry": map[string]any{
					"type": "SetCellValueAndFormat", "row": i, "column": c, "value": i}}
				for j := range ps {
					// Each server goes first as often as the others.
					k := (i + c + j) % len(ps)
					p := ps[k]
					t0 := time.Now()
					var reply map[string]any
					if _, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, &reply); err != nil {
						b.Error(err)
						return
					}
					lat[k][c] = append(lat[k][c], time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	for k := range ps {
		res[k].elapsed = time.Since(start)
		res[k].appends = slices.Concat(lat[k]...)
	}

	// GET log of 1,000 entries: a sheet with exactly that many.
	sheet := "load-query"
	for i := range 1000 {
		body := map[string]any{"sequenceId": strconv.Itoa(i), "entry": map[string]any{
			"type": "SetCellValueAndFormat", "row": i, "column": 0, "value": "some text"}}
		for _, p := range ps {
			if _, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, &map[string]any{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range 100 {
		for j := range ps {
			k := (i + j) % len(ps)
			p := ps[k]
			t0 := time.Now()
			var page logPage
			if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet+"/log?start=0&end=1000", nil, &page); err != nil {
				b.Fatal(err)
			}
			res[k].queries = append(res[k].queries, time.Since(t0))
			if len(page.Entries) != 1000 {
				b.Fatalf("query returned %d entries", len(page.Entries))
			}
		}
	}
	return res
}

// scrapeEvery reads the server's metrics every interval until the
// returned function is called, failing the benchmark if a scrape fails.
func (p *proc) scrapeEvery(b *testing.B, interval time.Duration) (stop func()) {
	url := p.metricsURL(b)
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
