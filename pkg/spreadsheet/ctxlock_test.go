package spreadsheet

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many goroutines take the lock, some with contexts that end while they
// wait: never two holders at once, every waiter that gives up gets its
// context's error, and the lock is free at the end (no hand-over lost to
// a waiter that gave up).
func TestCtxLockExclusionAndCancellation(t *testing.T) {
	var (
		l       ctxLock
		inside  atomic.Int32
		wg      sync.WaitGroup
		gaveUp  atomic.Int32
		entered atomic.Int32
	)
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(50))*time.Microsecond)
				err := l.lock(ctx)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("lock: %v", err)
					}
					gaveUp.Add(1)
					continue
				}
				if inside.Add(1) != 1 {
					t.Error("two holders at once")
				}
				entered.Add(1)
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(30)) * time.Microsecond)
				}
				inside.Add(-1)
				l.unlock()
			}
		})
	}
	wg.Wait()
	if entered.Load() == 0 || gaveUp.Load() == 0 {
		t.Logf("entered %d, gave up %d: the run did not exercise both paths", entered.Load(), gaveUp.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := l.lock(ctx); err != nil {
		t.Fatalf("the lock is not free after every holder released it: %v", err)
	}
	if len(l.waiters) != 0 {
		t.Fatalf("%d waiters left", len(l.waiters))
	}
}

// A free lock is taken whatever the context; a held one makes a caller
// whose context has ended give up with its cause.
func TestCtxLockFastPathAndCause(t *testing.T) {
	var l ctxLock
	done, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("gone")
	cancel(cause)
	if err := l.lock(done); err != nil {
		t.Fatalf("a free lock refused an ended context: %v", err)
	}
	if err := l.lock(done); !errors.Is(err, cause) {
		t.Fatalf("a held lock with an ended context: %v, want %v", err, cause)
	}
	l.unlock()
	if testing.AllocsPerRun(100, func() {
		_ = l.lock(context.Background())
		l.unlock()
	}) != 0 {
		t.Fatal("an uncontended lock allocates")
	}
}
