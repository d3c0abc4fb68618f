package feed

import (
	"context"
	"testing"
	"time"

	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// sheetlog_feed_waiters follows the requests held, in the Notifier (where
// it agrees with Waiters) and in the Poller alike.
func TestMetricsCountWaiters(t *testing.T) {
	base := feedWaiters.Value()
	n := NewNotifier(logmem.NewStore(logmem.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ws []*waiter
	for _, sheet := range []string{"a", "a", "b"} {
		ws = append(ws, startWaiter(ctx, n, sheet, 0))
	}
	pctx, pcancel := context.WithCancel(context.Background())
	polled := make(chan error, 1)
	go func() {
		polled <- Poller{First: time.Millisecond, Max: time.Millisecond}.Wait(pctx, "c", func() (bool, error) { return false, nil })
	}()
	waitFor(t, "4 waiters counted", func() bool { return feedWaiters.Value()-base == 4 && n.Waiters() == 3 })

	l, _ := n.Log("a")
	if _, err := l.AddEntry(ctx, 0, entry(0), nil); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws[:2] {
		if err := w.result(t); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "sheet a's waiters gone", func() bool { return feedWaiters.Value()-base == 2 && n.Waiters() == 1 })
	pcancel()
	cancel()
	<-polled
	_ = ws[2].result(t)
	if d := feedWaiters.Value() - base; d != 0 {
		t.Fatalf("%d waiters counted after every wait ended", d)
	}
}
