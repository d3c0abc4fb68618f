package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"

	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The half-open attack of BenchmarkServerHalfOpen runs in helper
// processes (this test binary, started again with these variables), so
// that the attacker's descriptors are not the benchmark's: 20,000
// connections need more than one process's usual limit.
const (
	envHalfOpenAddr  = "SHEETLOG_HALFOPEN_ADDR"
	envHalfOpenConns = "SHEETLOG_HALFOPEN_CONNS"
	envHalfOpenFrom  = "SHEETLOG_HALFOPEN_FROM"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(envHalfOpenAddr); addr != "" {
		n, _ := strconv.Atoi(os.Getenv(envHalfOpenConns))
		halfOpenHelper(addr, n, os.Getenv(envHalfOpenFrom))
		os.Exit(0)
	}
	if addr := os.Getenv(envFeedAddr); addr != "" {
		n, _ := strconv.Atoi(os.Getenv(envFeedConns))
		feedHelper(addr, n)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// halfOpenHelper holds n connections to addr, each having sent only the
// start of a request head. A connection the server closes is opened
// again a second later, so the attack keeps up its count. Every 250 ms
// it prints "open=<established> reconnects=<total>"; it stops when its
// standard input closes, and after two minutes in any case.
func halfOpenHelper(addr string, n int, from string) {
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	deadline := time.After(2 * time.Minute)
	dialer := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	var open, reconnects atomic.Int64
	dials := make(chan struct{}, 256) // dials in flight
	for range n {
		go func() {
			for first := true; ; first = false {
				if !first {
					reconnects.Add(1)
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
					}
				}
				dials <- struct{}{}
				c, err := dialer.Dial("tcp", addr)
				<-dials
				if err != nil {
					continue
				}
				open.Add(1)
				_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
				if err == nil {
					go func() { <-stop; c.Close() }()
					_, _ = c.Read(make([]byte, 1)) // until the server closes it
				}
				c.Close()
				open.Add(-1)
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-deadline:
			return
		case <-tick.C:
			fmt.Printf("open=%d reconnects=%d\n", open.Load(), reconnects.Load())
		}
	}
}

// attack is the running helper processes.
type attack struct {
	cmds  []*exec.Cmd
	stdin []io.WriteCloser
	mu    sync.Mutex
	open  []int64
	reco  []int64
}

func startAttack(b *testing.B, addr string, conns, procs int) *attack {
	a := &attack{open: make([]int64, procs), reco: make([]int64, procs)}
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envHalfOpenAddr+"="+addr,
			envHalfOpenConns+"="+strconv.Itoa(conns/procs),
			// Each process connects from its own loopback address, so
			// that no one address runs out of ephemeral ports.
			envHalfOpenFrom+"=127.0.0."+strconv.Itoa(2+i))
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		a.cmds, a.stdin = append(a.cmds, cmd), append(a.stdin, in)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var o, r int64
				if _, err := fmt.Sscanf(sc.Text(), "open=%d reconnects=%d", &o, &r); err == nil {
					a.mu.Lock()
					a.open[i], a.reco[i] = o, r
					a.mu.Unlock()
				}
			}
		}()
	}
	b.Cleanup(a.stop)
	return a
}

// counts returns the connections the attack holds now (established from
// its side: held by the server or queued in its backlog) and its
// reconnections so far.
func (a *attack) counts() (open, reconnects int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.open {
		open += a.open[i]
		reconnects += a.reco[i]
	}
	return open, reconnects
}

func (a *attack) stop() {
	for i, cmd := range a.cmds {
		if cmd.ProcessState != nil {
			continue
		}
		a.stdin[i].Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

// latencies of a well-behaved client's workload.
type latencies struct {
	appends, healthzNew, healthzKept []time.Duration
	failures                         int
	elapsed                          time.Duration
}

// wellBehaved runs the workload whose latency the attack must not hurt:
// 16 clients appending to their own sheets over keep-alive connections
// (perClient appends each), while /healthz is probed every 20 ms both
// on a new connection each time (as a load balancer does) and on a
// kept-alive one.
func wellBehaved(ctx context.Context, p *proc, phase string, perClient int) latencies {
	const clients = 16
	kept := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * clients}}
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer kept.CloseIdleConnections()
	var (
		mu  sync.Mutex
		out latencies
	)
	fail := func() { mu.Lock(); out.failures++; mu.Unlock() }
	probe := func(c *http.Client) (time.Duration, bool) {
		t0 := time.Now()
		resp, err := c.Get(p.url + "/healthz")
		if err != nil {
			return 0, false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t0), resp.StatusCode == 200
	}
	done := make(chan struct{})
	var probes sync.WaitGroup
	for _, c := range []*http.Client{fresh, kept} {
		probes.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				d, ok := probe(c)
				mu.Lock()
				switch {
				case !ok:
					out.failures++
				case c == fresh:
					out.healthzNew = append(out.healthzNew, d)
				default:
					out.healthzKept = append(out.healthzKept, d)
				}
				mu.Unlock()
			}
		})
	}
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			sheet := fmt.Sprintf("%s-%d", phase, c)
			for i := range perClient {
				body := fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%d}}`, i, i, c, i)
				req, _ := http.NewRequestWithContext(ctx, "POST", p.url+"/v1/sheets/"+sheet+"/log", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := kept.Do(req)
				if err != nil {
					fail()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fail()
					return
				}
				mu.Lock()
				out.appends = append(out.appends, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	close(done)
	probes.Wait()
	return out
}

func (l latencies) report(b *testing.B, prefix string) {
	b.ReportMetric(float64(len(l.appends))/l.elapsed.Seconds(), prefix+"appends/s")
	b.ReportMetric(ms(percentile(l.appends, 50)), prefix+"append-p50-ms")
	b.ReportMetric(ms(percentile(l.appends, 99)), prefix+"append-p99-ms")
	b.ReportMetric(ms(percentile(l.healthzNew, 50)), prefix+"healthz-new-p50-ms")
	b.ReportMetric(ms(percentile(l.healthzNew, 99)), prefix+"healthz-new-p99-ms")
	b.ReportMetric(ms(percentile(l.healthzKept, 99)), prefix+"healthz-kept-p99-ms")
	b.ReportMetric(float64(l.failures), prefix+"failures")
}

// BenchmarkServerHalfOpen measures well-behaved clients (see wellBehaved)
// against the real server over loopback, first alone, then while
// 20,000 half-open connections (a request head begun and never
// finished, reopened a second after the server closes them) are held
// against it from four helper processes. Metrics prefixed "attack-" are
// taken during the attack; "attack-open" is how many of the attacker's
// connections were established (held by the server or queued in its
// backlog) when the measurement started. The goal: append and /healthz
// p99 at most 100 ms under attack. Run it with make bench-server.
func BenchmarkServerHalfOpen(b *testing.B) {
	const attackConns, procs, perClient = 20_000, 4, 150
	ctx := context.Background()
	for b.Loop() {
		p := startServer(b, b.TempDir(), append([]string{"-log-level", "warn"}, strings.Fields(os.Getenv("SHEETLOG_BENCH_SERVER_ARGS"))...)...)
		wellBehaved(ctx, p, "warmup", 10)
		wellBehaved(ctx, p, "quiet", perClient).report(b, "")

		a := startAttack(b, strings.TrimPrefix(p.url, "http://"), attackConns, procs)
		// Let the attack ramp up: until its count stops growing, or 15 s.
		var open int64
		for deadline, last := time.Now().Add(15*time.Second), int64(-1); time.Now().Before(deadline); {
			time.Sleep(time.Second)
			if open, _ = a.counts(); open <= last {
				break
			}
			last = open
		}
		_, reco0 := a.counts()
		t0 := time.Now()
		l := wellBehaved(ctx, p, "attack", perClient)
		_, reco1 := a.counts()
		l.report(b, "attack-")
		if rss := rssMB(p.cmd.Process.Pid); rss > 0 {
			b.ReportMetric(rss, "attack-server-rss-MB")
		}
		b.ReportMetric(float64(open), "attack-open")
		b.ReportMetric(float64(reco1-reco0)/time.Since(t0).Seconds(), "attack-reconnects/s")
		a.stop()
		p.kill(b)
	}
}

// rssMB is a process's resident memory in MB (Linux; 0 elsewhere).
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
