package pool

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// fastOptions are options with short delays, for tests.
func fastOptions(t testing.TB) (Options, *logBuffer) {
	lb := &logBuffer{}
	return Options{
		Workers:        2,
		Deadline:       5 * time.Second,
		Grace:          time.Second,
		BackoffBase:    time.Millisecond,
		BackoffCap:     5 * time.Millisecond,
		Seed:           1,
		RescanInterval: -1,
		Logger:         slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, lb
}

// start builds and starts a pool with handler h, closed at the end of the
// test.
func start(t testing.TB, opts Options, h workers.Handler) *Pool {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p.SetHandler(h)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	var out []string
next:
	for line := range strings.Lines(l.String()) {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// lister is a PendingLister over a fixed set of entries.
type lister struct {
	mu      sync.Mutex
	entries []eventlog.PendingEntry
	calls   int
	fail    int // fail this many calls first
}

func (l *lister) Pending(context.Context) ([]eventlog.PendingEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.fail > 0 {
		l.fail--
		return nil, errTransient
	}
	return append([]eventlog.PendingEntry(nil), l.entries...), nil
}

func (l *lister) set(entries ...eventlog.PendingEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = entries
}

// eventually fails the test unless cond becomes true within 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func msg(sheet string, seq eventlog.SequenceID) workers.PendingWorkflowMessage {
	return workers.PendingWorkflowMessage{Sheet: sheet, Workflow: eventlog.WorkflowSnapshot, SequenceID: seq}
}

// counter counts handler calls per message.
type counter struct {
	mu sync.Mutex
	n  map[workers.PendingWorkflowMessage]int
}

func (c *counter) inc(m workers.Message) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[workers.PendingWorkflowMessage]int{}
	}
	pm := m.(workers.PendingWorkflowMessage)
	c.n[pm]++
	return c.n[pm]
}

func (c *counter) get(m workers.PendingWorkflowMessage) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[m]
}
