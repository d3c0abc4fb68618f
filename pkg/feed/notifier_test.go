package feed

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/internal/heaptest"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// long bounds every wait of these tests; none should come near it.
const long = 30 * time.Second

func entry(i int) eventlog.Entry {
	b, _ := json.Marshal(map[string]any{"type": "SetCellValueAndFormat", "row": i, "column": 0, "value": i})
	return eventlog.Entry{Body: b}
}

// waiter is one Wait running in its own goroutine, polling for an entry
// at id of its sheet.
type waiter struct {
	polls atomic.Int64
	done  chan error
}

func startWaiter(ctx context.Context, n *Notifier, sheet string, id eventlog.SequenceID) *waiter {
	w := &waiter{done: make(chan error, 1)}
	l, _ := n.Log(sheet)
	go func() {
		w.done <- n.Wait(ctx, sheet, func() (bool, error) {
			w.polls.Add(1)
			p, err := l.Query(context.Background(), eventlog.FromID(id), eventlog.ToEnd, nil)
			return len(p.Entries) > 0, err
		})
	}()
	return w
}

// waitFor polls cond until it holds (or fails the test after long).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *waiter) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.done:
		return err
	case <-time.After(long):
		t.Fatal("the waiter did not return")
		return nil
	}
}

func (w *waiter) running() bool { return len(w.done) == 0 }

func TestAppendWakesTheSheetsWaiters(t *testing.T) {
	ctx := context.Background()
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	a := startWaiter(ctx, n, "a", 0)
	a2 := startWaiter(ctx, n, "a", 0)
	b := startWaiter(ctx, n, "b", 0)
	waitFor(t, "three waiters", func() bool {
		return n.Waiters() == 3 && a.polls.Load() == 1 && a2.polls.Load() == 1 && b.polls.Load() == 1
	})

	la, _ := n.Log("a")
	if _, err := la.AddEntry(ctx, 0, entry(0), nil); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*waiter{a, a2} {
		if err := w.result(t); err != nil {
			t.Fatal(err)
		}
		if p := w.polls.Load(); p != 2 {
			t.Fatalf("woken waiter polled %d times, want 2", p)
		}
	}
	// b's sheet saw no append: it was not even polled again.
	if !b.running() || b.polls.Load() != 1 || n.Waiters() != 1 {
		t.Fatalf("b: running %v, polls %d, waiters %d", b.running(), b.polls.Load(), n.Waiters())
	}
	lb, _ := n.Log("b")
	if _, err := lb.AddEntries(ctx, 0, []eventlog.Entry{entry(0), entry(1)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.result(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no waiter", func() bool { return n.Waiters() == 0 })
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.sheets) != 0 {
		t.Fatalf("sheets without waiters are kept: %v", n.sheets)
	}
}

// TestAppendsThatWroteNothingWakeNobody: conflicts and refused entries
// certainly wrote nothing; a failing store may have, and wakes.
func TestAppendsThatWroteNothingWakeNobody(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := logmem.NewStore(logmem.Options{})
	n := NewNotifier(mem)
	l, _ := n.Log("s")
	if _, err := l.AddEntry(ctx, 0, entry(0), nil); err != nil {
		t.Fatal(err)
	}
	w := startWaiter(ctx, n, "s", 1)
	waitFor(t, "the first poll", func() bool { return w.polls.Load() == 1 })
	var ce *errs.ConflictError
	if _, err := l.AddEntry(ctx, 0, entry(0), nil); !errors.As(err, &ce) {
		t.Fatalf("conflict: %v", err)
	}
	var ve *errs.ValidationError
	if _, err := l.AddEntries(ctx, 1, nil, nil); !errors.As(err, &ve) {
		t.Fatalf("empty batch: %v", err)
	}
	// A storage failure: its wake-up polls again and finds nothing.
	failing := &notifyingLog{EventLog: failLog{}, n: n, sheet: "s"}
	if _, err := failing.AddEntry(ctx, 1, entry(1), nil); err == nil {
		t.Fatal("failLog appended")
	}
	waitFor(t, "the poll after a failed append", func() bool { return w.polls.Load() == 2 })
	if !w.running() {
		t.Fatal("the waiter returned without an entry")
	}
	cancel()
	if err := w.result(t); err != nil {
		t.Fatal(err)
	}
	if p := w.polls.Load(); p != 2 {
		t.Fatalf("%d polls: the conflict or the refused batch woke the waiter", p)
	}
}

type failLog struct{ eventlog.EventLog }

func (failLog) AddEntry(context.Context, eventlog.SequenceID, eventlog.Entry, *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return nil, errs.Storage(errors.New("timeout"), "appending")
}

// TestNoLostWakeUp: an append that lands after a poll found nothing, but
// before the waiter blocks, still wakes it.
func TestNoLostWakeUp(t *testing.T) {
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	polls := 0
	err := n.Wait(ctx, "s", func() (bool, error) {
		polls++
		if polls == 1 {
			n.Notify("s") // the append races the first poll
		}
		return polls == 2, nil
	})
	if err != nil || polls != 2 || ctx.Err() != nil {
		t.Fatalf("polls %d, err %v, ctx %v", polls, err, ctx.Err())
	}
}

func TestWaitEndsWithItsContextOrRelease(t *testing.T) {
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	pollErr := errors.New("cannot read")
	if err := n.Wait(context.Background(), "s", func() (bool, error) { return false, pollErr }); err != pollErr {
		t.Fatalf("poll error: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := n.Wait(ctx, "s", func() (bool, error) { return false, nil }); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	ws := make([]*waiter, 50)
	for i := range ws {
		ws[i] = startWaiter(context.Background(), n, "s", 0)
	}
	waitFor(t, "50 waiters", func() bool { return n.Waiters() == 50 })
	n.Release()
	for _, w := range ws {
		if err := w.result(t); err != nil || w.polls.Load() != 1 {
			t.Fatalf("released waiter: %v after %d polls", err, w.polls.Load())
		}
	}
	// After Release a wait is one poll.
	if w := startWaiter(context.Background(), n, "s", 0); w.result(t) != nil || w.polls.Load() != 1 {
		t.Fatal("a wait after Release")
	}
	n.Release() // twice is fine
}

// TestManyWaitersManyAppends: waiters for successive ids of one sheet
// and appenders racing; every waiter returns once its entry exists.
func TestManyWaitersManyAppends(t *testing.T) {
	ctx := context.Background()
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	const ids, perID = 40, 10
	l, _ := n.Log("s")
	var ws []*waiter
	for id := range ids {
		for range perID {
			// Each waits until the log holds its id.
			w := &waiter{done: make(chan error, 1)}
			go func() {
				w.done <- n.Wait(ctx, "s", func() (bool, error) {
					w.polls.Add(1)
					p, err := l.Query(ctx, eventlog.FromStart, eventlog.ToEnd, nil)
					return p.End > eventlog.SequenceID(id), err
				})
			}()
			ws = append(ws, w)
		}
	}
	var wg sync.WaitGroup
	raceAppends(t, &wg, n, "s", ids, 4)
	wg.Wait()
	for _, w := range ws {
		if err := w.result(t); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWaiterCost: 10,000 requests waiting on one sheet hold almost no
// heap of the notifier's; each blocked goroutine holds its stack (in the
// server that is the connection's goroutine, there anyway).
func TestWaiterCost(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 goroutines")
	}
	const waiters = 10_000
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, waiters)
	var wg sync.WaitGroup
	// The goroutines exist before the measurement starts, blocked: what
	// is measured is what Wait adds.
	gate := make(chan struct{})
	for range waiters {
		wg.Go(func() {
			<-gate
			_ = n.Wait(ctx, "hot", func() (bool, error) {
				started <- struct{}{}
				return false, nil
			})
		})
	}
	runtime.Gosched()
	heap0, stack0 := heaptest.Live(), stackInuse()
	close(gate)
	for range waiters {
		<-started
	}
	heap1, stack1 := heaptest.Live(), stackInuse()
	perHeap := float64(heap1-heap0) / waiters
	perStack := float64(stack1-stack0) / waiters
	t.Logf("%d waiters: heap %.0f B/waiter, goroutine stacks grew %.0f B/waiter", waiters, perHeap, perStack)
	if perHeap > 512 {
		t.Errorf("the notifier holds %.0f B of heap per waiter; want at most 512", perHeap)
	}
	cancel()
	wg.Wait()
	if n.Waiters() != 0 {
		t.Fatalf("%d waiters left", n.Waiters())
	}
}

func stackInuse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}

// raceAppends starts writers goroutines in wg that append entries 0 to
// ids-1 to sheet through n, each catching up after a conflict.
func raceAppends(t *testing.T, wg *sync.WaitGroup, n *Notifier, sheet string, ids, writers int) {
	for range writers {
		wg.Go(func() {
			l, _ := n.Log(sheet)
			for next := eventlog.SequenceID(0); next < eventlog.SequenceID(ids); {
				_, err := l.AddEntry(context.Background(), next, entry(int(next)), nil)
				var ce *errs.ConflictError
				switch {
				case errors.As(err, &ce):
					next = eventlog.SequenceID(ce.NextSequenceID)
				case err != nil:
					t.Error(err)
					return
				default:
					next++
				}
			}
		})
	}
}
