package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// committedStore notes when each append of its logs returned: the entry
// is durable from then on, and the feed is told right after.
type committedStore struct {
	eventlog.Store
	mu sync.Mutex
	at time.Time
}

func (s *committedStore) Log(sheet string) (eventlog.EventLog, error) {
	l, err := s.Store.Log(sheet)
	return committedLog{l, s}, err
}

func (s *committedStore) last() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at
}

type committedLog struct {
	eventlog.EventLog
	s *committedStore
}

func (l committedLog) AddEntries(ctx context.Context, id eventlog.SequenceID, es []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	ref, err := l.EventLog.AddEntries(ctx, id, es, known)
	l.s.mu.Lock()
	l.s.at = time.Now()
	l.s.mu.Unlock()
	return ref, err
}

func (l committedLog) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return l.AddEntries(ctx, id, []eventlog.Entry{e}, known)
}

// BenchmarkFeedWake: 1,000 clients, each on its own connection, wait on
// one sheet of the server (run in this process, over loopback, fsync
// on); one append wakes them all. Reported: the time from the append's
// commit (the event log's write returned, fsync'd; the feed is told
// right after) until each waiter has read its whole reply (wake-p50,
// wake-p99, wake-max), the same from the moment the append was sent
// (sent-p50, sent-p99: the commit's fsync included), the append's own
// round trip, the CPU time the process (server and clients) spent from
// the append until the last reply (wake-cpu-ms: on two idle cores the
// p99 cannot be much below half of it, and on a loaded machine it is the
// figure that does not depend on the load), and the 1-minute load
// average when it started. Goal: wake-p99 at most 50 ms. Run it with
// make bench-feed.
func BenchmarkFeedWake(b *testing.B) {
	const waiters = 1000
	ctx := context.Background()
	commits := &committedStore{}
	url, n := inProcess(b, func(s eventlog.Store) eventlog.Store { commits.Store = s; return commits })
	addr := strings.TrimPrefix(url, "http://")
	conns := make([]net.Conn, waiters)
	brs := make([]*bufio.Reader, waiters)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i], brs[i] = c, bufio.NewReader(c)
	}
	// The append's client keeps its connection warm.
	if err := appendOne(ctx, url, "hot", 0); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(loadAvg(), "loadavg-1m")
	var all, sent []time.Duration
	var appends []time.Duration
	var cpu time.Duration
	next := 1
	for b.Loop() {
		done := make([]time.Time, waiters)
		var t0 time.Time
		ready := make(chan struct{})
		var wg sync.WaitGroup
		errc := make(chan error, waiters)
		want := fmt.Sprintf(`"endSequenceId":"%d"`, next+1)
		for i := range conns {
			if _, err := io.WriteString(conns[i], waitRequest("hot", next, 20)); err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				st, body, err := readRaw(brs[i])
				done[i] = time.Now()
				<-ready
				if err == nil && (st != 200 || !strings.Contains(body, want)) {
					err = fmt.Errorf("waiter %d: %d %s", i, st, body)
				}
				if err != nil {
					errc <- err
				}
			})
		}
		waitForWaiters(b, n, waiters)
		cpu0 := cpuTime()
		t0 = time.Now()
		close(ready)
		if err := appendOne(ctx, url, "hot", next); err != nil {
			b.Fatal(err)
		}
		appends = append(appends, time.Since(t0))
		wg.Wait()
		cpu += cpuTime() - cpu0
		close(errc)
		for err := range errc {
			b.Fatal(err)
		}
		committed := commits.last()
		for _, at := range done {
			all = append(all, at.Sub(committed))
			sent = append(sent, at.Sub(t0))
		}
		next++
	}
	b.ReportMetric(ms(percentile(all, 50)), "wake-p50-ms")
	b.ReportMetric(ms(percentile(all, 99)), "wake-p99-ms")
	b.ReportMetric(ms(slices.Max(all)), "wake-max-ms")
	b.ReportMetric(ms(percentile(sent, 50)), "sent-p50-ms")
	b.ReportMetric(ms(percentile(sent, 99)), "sent-p99-ms")
	b.ReportMetric(ms(percentile(appends, 50)), "append-ms")
	b.ReportMetric(ms(cpu)/float64(len(appends)), "wake-cpu-ms")
}

// readRaw reads one reply with a body of known length, with as little
// work as the client side of a benchmark should do.
func readRaw(br *bufio.Reader) (status int, body string, err error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, "", err
	}
	if f := strings.Fields(line); len(f) >= 2 {
		status, _ = strconv.Atoi(f[1])
	}
	n := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return status, "", err
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if n < 0 {
		return status, "", fmt.Errorf("a reply without Content-Length")
	}
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return status, string(b), err
}
