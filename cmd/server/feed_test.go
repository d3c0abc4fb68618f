package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/feed"
)

// waitRequest is a change feed request on a raw connection.
func waitRequest(sheet string, start, wait int) string {
	return fmt.Sprintf("GET /v1/sheets/%s/log?start=%d&wait=%d HTTP/1.1\r\nHost: x\r\n\r\n", sheet, start, wait)
}

// readPage reads one reply from br and decodes its log page.
func readPage(br *bufio.Reader) (int, logPage, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, logPage{}, err
	}
	defer resp.Body.Close()
	var p logPage
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode == 200 {
		err = json.Unmarshal(b, &p)
	}
	return resp.StatusCode, p, err
}

// TestFeedOverTheRealServer: the built server answers a waiting request
// with the append that makes its page non-empty, and on SIGTERM lets
// every waiter go at once with its empty page, without holding its
// shutdown for their 20 s.
func TestFeedOverTheRealServer(t *testing.T) {
	ctx := context.Background()
	p := startServer(t, t.TempDir())
	addr := strings.TrimPrefix(p.url, "http://")
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		return c, bufio.NewReader(c)
	}

	c, br := dial()
	if _, err := io.WriteString(c, waitRequest("live", 0, 20)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	body := map[string]any{"sequenceId": 0, "entry": map[string]any{"type": "SetCellValueAndFormat", "row": 0, "column": 0, "value": 1}}
	if _, err := p.do(ctx, "POST", "/v1/sheets/live/log", body, &map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if st, page, err := readPage(br); err != nil || st != 200 || page.EndSequenceID != "1" || len(page.Entries) != 1 {
		t.Fatalf("woken waiter: %d %+v %v", st, page, err)
	}

	const waiters = 50
	brs := make([]*bufio.Reader, waiters)
	for i := range brs {
		var c net.Conn
		c, brs[i] = dial()
		if _, err := io.WriteString(c, waitRequest("live", 1, 20)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // they reach their wait; one that does not is answered at once all the same
	t0 := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	for i, br := range brs {
		st, page, err := readPage(br)
		if err != nil || st != 200 || page.StartSequenceID != "1" || page.EndSequenceID != "1" || !page.IsComplete || len(page.Entries) != 0 {
			t.Fatalf("waiter %d at shutdown: %d %+v %v", i, st, page, err)
		}
	}
	released := time.Since(t0)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("server exit: %v\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not stop\n%s", p.log())
	}
	if stopped := time.Since(t0); released > 5*time.Second || stopped > 10*time.Second {
		t.Fatalf("waiters released after %v, server stopped after %v; their waits were 20 s", released, stopped)
	}
}

// inProcess runs the server in this process (run, as main calls it) and
// hands back its change feed, so that benchmarks can see its waiters and
// measure its memory. wrap, when not nil, wraps the event log store
// under the feed.
func inProcess(b *testing.B, wrap func(eventlog.Store) eventlog.Store, args ...string) (url string, n *feed.Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	urlc := make(chan string, 1) // the writer drops its field once it has sent
	w := &listenWriter{url: urlc}
	fc := make(chan *feed.Notifier, 1)
	newFeed = func(s eventlog.Store) *feed.Notifier {
		if wrap != nil {
			s = wrap(s)
		}
		n := feed.NewNotifier(s)
		fc <- n
		return n
	}
	done := make(chan error, 1)
	args = append([]string{"-addr", "127.0.0.1:0", "-data", b.TempDir(), "-log-format", "json", "-log-level", "warn"}, args...)
	go func() { done <- run(ctx, args, func(string) string { return "" }, w) }()
	select {
	case url = <-urlc:
	case err := <-done:
		b.Fatalf("the server stopped: %v", err)
	case <-time.After(30 * time.Second):
		b.Fatal("the server did not start")
	}
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("server: %v", err)
		}
		newFeed = feed.NewNotifier
	})
	return url, <-fc
}

func waitForWaiters(b *testing.B, n *feed.Notifier, want int) {
	deadline := time.Now().Add(60 * time.Second)
	for n.Waiters() != want {
		if time.Now().After(deadline) {
			b.Fatalf("%d waiters, want %d", n.Waiters(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func appendOne(ctx context.Context, url, sheet string, id int) error {
	p := &proc{url: url}
	body := map[string]any{"sequenceId": id, "entry": map[string]any{"type": "SetCellValueAndFormat", "row": id, "column": 0, "value": id}}
	_, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, &map[string]any{})
	return err
}

func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// The idle waiters of BenchmarkFeedIdle are held by a helper process
// (this test binary, started again with these variables), so that the
// server's memory is measured alone.
const (
	envFeedAddr  = "SHEETLOG_FEED_HELPER_ADDR"
	envFeedConns = "SHEETLOG_FEED_HELPER_CONNS"
)

// feedHelper holds n keep-alive connections to addr. It opens them with
// one GET /healthz each and prints "idle"; on the line "wait TARGET" it
// sends GET TARGET on every one and prints "sent"; when every one has its
// reply it prints "replied". It exits when its input closes.
func feedHelper(addr string, n int) {
	conns := make([]net.Conn, n)
	brs := make([]*bufio.Reader, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 128)
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := dialer.Dial("tcp", addr)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			conns[i], brs[i] = c, bufio.NewReader(c)
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			resp, err := http.ReadResponse(brs[i], nil)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	fmt.Println("idle")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		target, ok := strings.CutPrefix(in.Text(), "wait ")
		if !ok {
			continue
		}
		for _, c := range conns {
			if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
		fmt.Println("sent")
		for i := range conns {
			wg.Go(func() {
				if _, _, err := readPage(brs[i]); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
			})
		}
		wg.Wait()
		fmt.Println("replied")
	}
}

// memNow is the server's live heap and goroutine stacks after a full
// collection (the benchmark itself holds next to nothing).
func memNow() (heap, stacks int64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), int64(ms.StackInuse)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFeedIdle: 10,000 clients, each on its own HTTP/1.1 keep-alive
// connection from a helper process, wait on one sheet of the server run
// in this process. Reported, per connection and in all: what an idle
// keep-alive connection costs the server (live heap and goroutine
// stacks, after a full collection), what a request waiting in the feed
// adds on top, the CPU the server burns while they all wait (over 3 s),
// and the time until all 10,000 have their reply after one append. Run
// it with make bench-feed.
func BenchmarkFeedIdle(b *testing.B) {
	const waiters = 10_000
	ctx := context.Background()
	for b.Loop() {
		url, n := inProcess(b, nil)
		if err := appendOne(ctx, url, "hot", 0); err != nil {
			b.Fatal(err)
		}
		heap0, stack0 := memNow()
		g0 := runtime.NumGoroutine()

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envFeedAddr+"="+strings.TrimPrefix(url, "http://"), envFeedConns+"="+strconv.Itoa(waiters))
		in, _ := cmd.StdinPipe()
		outPipe, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		out := bufio.NewScanner(outPipe)
		expect := func(want string) {
			if !out.Scan() || out.Text() != want {
				b.Fatalf("helper said %q, want %q", out.Text(), want)
			}
		}
		expect("idle")
		heap1, stack1 := memNow()
		g1 := runtime.NumGoroutine()

		fmt.Fprintln(in, "wait /v1/sheets/hot/log?start=1&wait=20")
		expect("sent")
		waitForWaiters(b, n, waiters)
		heap2, stack2 := memNow()
		g2 := runtime.NumGoroutine()

		// The first seconds after the waiters park, the runtime gives the
		// memory they no longer hold (net/http's buffers, stacks) back to
		// the system; the waiters' own cost is the idle CPU after that.
		cpu0, t0 := cpuTime(), time.Now()
		time.Sleep(3 * time.Second)
		settleCPU := float64(cpuTime()-cpu0) / float64(time.Since(t0))
		cpu0, t0 = cpuTime(), time.Now()
		time.Sleep(3 * time.Second)
		idleCPU := float64(cpuTime()-cpu0) / float64(time.Since(t0))

		t1 := time.Now()
		if err := appendOne(ctx, url, "hot", 1); err != nil {
			b.Fatal(err)
		}
		expect("replied")
		wakeAll := time.Since(t1)
		in.Close()
		_ = cmd.Wait()

		perConn := float64(heap1-heap0+stack1-stack0) / waiters
		perWait := float64(heap2-heap1+stack2-stack1) / waiters
		b.ReportMetric(perConn/1024, "conn-KB")
		b.ReportMetric(float64(heap1-heap0)/waiters/1024, "conn-heap-KB")
		b.ReportMetric(float64(stack1-stack0)/waiters/1024, "conn-stack-KB")
		b.ReportMetric(perWait/1024, "wait-KB")
		b.ReportMetric(float64(heap2-heap1)/waiters/1024, "wait-heap-KB")
		b.ReportMetric(float64(stack2-stack1)/waiters/1024, "wait-stack-KB")
		b.ReportMetric(float64(heap2-heap0+stack2-stack0)/(1<<20), "total-MB")
		b.ReportMetric(float64(g1-g0)/waiters, "conn-goroutines")
		b.ReportMetric(float64(g2-g1)/waiters, "wait-goroutines")
		b.ReportMetric(settleCPU*100, "settle-cpu-%")
		b.ReportMetric(idleCPU*100, "idle-cpu-%")
		b.ReportMetric(ms(wakeAll), "wake-all-ms")
		b.ReportMetric(loadAvg(), "loadavg-1m")
	}
}
