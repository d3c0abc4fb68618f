package spreadsheet

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// TestForEach: every index runs once, on up to limit goroutines at a
// time; after an error no new index starts, the running ones see a
// cancelled context, and the first error is returned.
func TestForEach(t *testing.T) {
	ctx := context.Background()
	for _, limit := range []int{1, 2, 8} {
		for _, n := range []int{0, 1, 5, 100} {
			runs := make([]atomic.Int32, n)
			var running, most atomic.Int32
			err := forEach(ctx, limit, n, func(_ context.Context, i int) error {
				now := running.Add(1)
				for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
				}
				runs[i].Add(1)
				running.Add(-1)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range runs {
				if c := runs[i].Load(); c != 1 {
					t.Fatalf("limit %d, n %d: index %d ran %d times", limit, n, i, c)
				}
			}
			if m := most.Load(); int(m) > max(limit, 1) {
				t.Fatalf("limit %d, n %d: %d ran at once", limit, n, m)
			}
		}
	}
	boom := errors.New("boom")
	var started atomic.Int32
	err := forEach(ctx, 4, 1000, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 3 {
			return boom
		}
		if i > 3 {
			<-ctx.Done() // the failure cancels the jobs already running
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("forEach returned %v", err)
	}
	if s := started.Load(); s > 8 {
		t.Fatalf("%d jobs started after the failure of the fourth, on 4 goroutines", s)
	}
}
