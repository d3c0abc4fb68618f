package feed

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/internal/heaptest"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// parkedWaiter is one Park, its polls checked never to overlap.
type parkedWaiter struct {
	polls, inPoll atomic.Int64
	done          chan error
	dones         atomic.Int64
}

func park(t *testing.T, n *Notifier, sheet string, deadline time.Time, found func() (bool, error)) *parkedWaiter {
	w := &parkedWaiter{done: make(chan error, 2)}
	n.Park(deadline, sheet, func() (bool, error) {
		if w.inPoll.Add(1) != 1 {
			t.Error("two polls of one waiter at once")
		}
		defer w.inPoll.Add(-1)
		w.polls.Add(1)
		return found()
	}, func(err error) {
		if w.inPoll.Load() != 0 {
			t.Error("done while a poll runs")
		}
		if w.dones.Add(1) != 1 {
			t.Error("done called twice")
		}
		w.done <- err
	})
	return w
}

func parkAt(t *testing.T, n *Notifier, sheet string, id eventlog.SequenceID) *parkedWaiter {
	l, _ := n.Log(sheet)
	return park(t, n, sheet, time.Now().Add(long), func() (bool, error) {
		p, err := l.Query(context.Background(), eventlog.FromID(id), eventlog.ToEnd, nil)
		return len(p.Entries) > 0, err
	})
}

func (w *parkedWaiter) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.done:
		return err
	case <-time.After(long):
		t.Fatal("the parked waiter was not done")
		return nil
	}
}

func (w *parkedWaiter) running() bool { return w.dones.Load() == 0 }

func TestParkedWaitersWakeOnTheirSheetsAppend(t *testing.T) {
	ctx := context.Background()
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	a := parkAt(t, n, "a", 0)
	a2 := parkAt(t, n, "a", 0)
	b := parkAt(t, n, "b", 0)
	blocked := startWaiter(ctx, n, "a", 0) // the two kinds mix
	waitFor(t, "four waiters", func() bool { return n.Waiters() == 4 })
	if a.polls.Load() != 1 || !a.running() || !b.running() {
		t.Fatal("a parked waiter returned before any append")
	}
	la, _ := n.Log("a")
	if _, err := la.AddEntry(ctx, 0, entry(0), nil); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*parkedWaiter{a, a2} {
		if err := w.result(t); err != nil || w.polls.Load() != 2 {
			t.Fatalf("woken: %v after %d polls", err, w.polls.Load())
		}
	}
	if err := blocked.result(t); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if !b.running() || b.polls.Load() != 1 || n.Waiters() != 1 {
		t.Fatalf("the other sheet's waiter: running %v, %d polls, %d waiters", b.running(), b.polls.Load(), n.Waiters())
	}
	n.Release()
	if err := b.result(t); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.sheets) != 0 || n.Waiters() != 0 {
		t.Fatalf("left behind: %d sheets, %d waiters", len(n.sheets), n.Waiters())
	}
}

// The first poll finds what it waits for: done runs before Park returns,
// on the caller's goroutine; an error ends the wait with it.
func TestParkFirstPollEndsTheWait(t *testing.T) {
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	w := park(t, n, "s", time.Now().Add(long), func() (bool, error) { return true, nil })
	if w.dones.Load() != 1 {
		t.Fatal("done did not run within Park")
	}
	boom := errors.New("cannot read")
	w = park(t, n, "s", time.Now().Add(long), func() (bool, error) { return false, boom })
	if err := w.result(t); err != boom {
		t.Fatalf("poll error: %v", err)
	}
	if n.Waiters() != 0 {
		t.Fatal(n.Waiters())
	}
}

func TestParkEndsAtItsDeadline(t *testing.T) {
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	start := time.Now()
	w := park(t, n, "s", start.Add(50*time.Millisecond), func() (bool, error) { return false, nil })
	if err := w.result(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 50*time.Millisecond || w.polls.Load() != 1 {
		t.Fatalf("ended after %v and %d polls", took, w.polls.Load())
	}
	// A deadline that has passed already: one poll, then done.
	w = park(t, n, "s", start, func() (bool, error) { return false, nil })
	if err := w.result(t); err != nil || w.polls.Load() != 1 {
		t.Fatalf("%v after %d polls", err, w.polls.Load())
	}
}

// An append during a poll, or the deadline, or Release: the waiter is
// polled again (or finished) only after that poll returns.
func TestParkRacesDuringAPoll(t *testing.T) {
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	var calls atomic.Int64
	// The append races the first poll: a second poll follows and finds it.
	w := park(t, n, "s", time.Now().Add(long), func() (bool, error) {
		if calls.Add(1) == 1 {
			n.Notify("s")
			return false, nil
		}
		return true, nil
	})
	if err := w.result(t); err != nil || w.polls.Load() != 2 {
		t.Fatalf("%v after %d polls", err, w.polls.Load())
	}
	// The deadline passes during a later poll: done follows that poll.
	calls.Store(0)
	gate := make(chan struct{})
	w = park(t, n, "s", time.Now().Add(30*time.Millisecond), func() (bool, error) {
		if calls.Add(1) == 2 {
			<-gate
		}
		return false, nil
	})
	n.Notify("s")
	waitFor(t, "the second poll", func() bool { return calls.Load() == 2 })
	time.Sleep(60 * time.Millisecond) // the deadline passes
	if !w.running() {
		t.Fatal("done while a poll runs")
	}
	close(gate)
	if err := w.result(t); err != nil {
		t.Fatal(err)
	}
	// Release during a poll.
	calls.Store(0)
	gate = make(chan struct{})
	w = park(t, n, "s", time.Now().Add(long), func() (bool, error) {
		if calls.Add(1) == 2 {
			<-gate
		}
		return false, nil
	})
	n.Notify("s")
	waitFor(t, "the second poll", func() bool { return calls.Load() == 2 })
	n.Release()
	if !w.running() {
		t.Fatal("released while a poll runs")
	}
	close(gate)
	if err := w.result(t); err != nil || w.polls.Load() != 2 {
		t.Fatalf("%v after %d polls", err, w.polls.Load())
	}
	// After Release a Park is one poll.
	w = park(t, n, "s", time.Now().Add(long), func() (bool, error) { return false, nil })
	if err := w.result(t); err != nil || w.polls.Load() != 1 {
		t.Fatalf("after Release: %v after %d polls", err, w.polls.Load())
	}
}

// Parked waiters for successive ids of one sheet, appenders racing, some
// waiters parked while the appends run: every waiter is done once its
// entry exists, none before.
func TestManyParkedWaitersManyAppends(t *testing.T) {
	ctx := context.Background()
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	const ids, perID = 60, 20
	l, _ := n.Log("s")
	var ws []*parkedWaiter
	var wsMu sync.Mutex
	parkFor := func(id int) {
		w := park(t, n, "s", time.Now().Add(long), func() (bool, error) {
			p, err := l.Query(ctx, eventlog.FromStart, eventlog.ToEnd, nil)
			return p.End > eventlog.SequenceID(id), err
		})
		wsMu.Lock()
		ws = append(ws, w)
		wsMu.Unlock()
	}
	for id := range ids {
		for range perID / 2 {
			parkFor(id)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for id := range ids {
			for range perID / 2 {
				parkFor(id)
			}
			runtime.Gosched()
		}
	})
	raceAppends(t, &wg, n, "s", ids, 4)
	wg.Wait()
	for _, w := range ws {
		if err := w.result(t); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "no waiters", func() bool { return n.Waiters() == 0 })
}

// TestParkedWaiterCost: 10,000 parked waiters on one sheet hold no
// goroutine and a few hundred bytes each, their timers included.
func TestParkedWaiterCost(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 waiters")
	}
	const waiters = 10_000
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	noop := func() (bool, error) { return false, nil }
	done := func(error) {}
	g0 := runtime.NumGoroutine()
	heap0 := heaptest.Live()
	for range waiters {
		n.Park(time.Now().Add(long), "s", noop, done)
	}
	perWaiter := float64(heaptest.Live()-heap0) / waiters
	if g := runtime.NumGoroutine() - g0; g > 2 {
		t.Fatalf("%d parked waiters hold %d goroutines", waiters, g)
	}
	t.Logf("%.0f B of heap per parked waiter", perWaiter)
	if perWaiter > 400 {
		t.Fatalf("a parked waiter holds %.0f B", perWaiter)
	}
	n.Release()
	waitFor(t, "no waiters", func() bool { return n.Waiters() == 0 })
}
