package spreadsheet

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetireScheduler: a pass asked for through the scheduler runs on the
// engine it gets when the pass is due, not on the one that asked (a cache
// may have dropped that), once per sheet even when asked for repeatedly,
// at the earliest time asked; after Close nothing runs.
func TestRetireScheduler(t *testing.T) {
	s := newSheet(t, Options{SnapshotInterval: 5, Retain: 2, RetireGrace: time.Hour}, 0, 0)
	fiveSnapshots(s)
	s.clock.Advance(2 * time.Hour) // every grace over: the next pass retires 5, 10 and 15
	var asked atomic.Int32
	sched := NewRetireScheduler(func(ctx context.Context, sheet string) (*Engine, error) {
		asked.Add(1)
		if sheet != "s1" {
			return nil, fmt.Errorf("no sheet %s", sheet)
		}
		return s.engine(s.root), nil
	}, RetireSchedulerOptions{})
	defer sched.Close(context.Background())
	now := time.Now()
	sched.Schedule(context.Background(), "s1", now.Add(time.Hour))
	sched.Schedule(context.Background(), "s1", now.Add(20*time.Millisecond)) // earlier: replaces
	sched.Schedule(context.Background(), "s1", now.Add(time.Minute))         // later: ignored
	if n := sched.Pending(); n != 1 {
		t.Fatalf("%d sheets pending, want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fmt.Sprint(s.dirs()) != "[20 25]" {
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled pass did not run: directories %v", s.dirs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := asked.Load(); n != 1 {
		t.Fatalf("the scheduler asked for an engine %d times, want once", n)
	}
	if err := sched.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sched.Schedule(context.Background(), "s1", time.Now())
	time.Sleep(50 * time.Millisecond)
	if n := asked.Load(); n != 1 || sched.Pending() != 0 {
		t.Fatalf("a pass ran after Close (%d engines asked for, %d pending)", n, sched.Pending())
	}
}
