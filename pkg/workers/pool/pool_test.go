package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

var errTransient = errs.Storage(nil, "the disk is having a bad day")

func TestFailingWorkflowCompletesAfterRetries(t *testing.T) {
	const k = 4
	opts, lb := fastOptions(t)
	var c counter
	done := make(chan struct{})
	p := start(t, opts, func(_ context.Context, m workers.Message) error {
		if c.inc(m) <= k {
			return fmt.Errorf("run: %w", errTransient)
		}
		close(done)
		return nil
	})
	if err := p.PostMessage(context.Background(), msg("s1", 100)); err != nil {
		t.Fatal(err)
	}
	if !p.Outstanding("s1") {
		t.Error("Outstanding(s1) is false right after the post")
	}
	<-done
	eventually(t, "the pool forgets the message", func() bool { return !p.Outstanding("s1") })
	m := p.Metrics()
	if m.Runs != k+1 || m.Failures != k || m.Retries != k || m.Completions != 1 || m.Dropped != 0 || m.Restarts != 0 {
		t.Errorf("metrics %+v; want %d runs, %d failures and retries, 1 completion", m, k+1, k)
	}
	if got := len(lb.lines("workflow failed; retrying", "sheet=s1", "seq=100", "workflow=snapshot", "attempt=", "delay=")); got != k {
		t.Errorf("%d retry log lines, want %d:\n%s", got, k, lb)
	}
}

func TestPanickingWorkflowCompletesAndTheWorkerIsReplaced(t *testing.T) {
	const k = 3
	opts, lb := fastOptions(t)
	l := &lister{}
	opts.Lister = l
	var c counter
	done := make(chan struct{})
	p := start(t, opts, func(_ context.Context, m workers.Message) error {
		if c.inc(m) <= k {
			panic("boom")
		}
		close(done)
		return nil
	})
	// Let the start-up scan finish, so that the scans counted below are
	// the ones the restarts asked for.
	eventually(t, "the start-up scan", func() bool { return p.Metrics().Scans == 1 })
	if err := p.PostMessage(context.Background(), msg("s1", 7)); err != nil {
		t.Fatal(err)
	}
	<-done
	eventually(t, "the pool forgets the message", func() bool { return !p.Outstanding("s1") })
	m := p.Metrics()
	if m.Panics != k || m.Restarts != k || m.Failures != k || m.Completions != 1 {
		t.Errorf("metrics %+v; want %d panics and restarts, 1 completion", m, k)
	}
	eventually(t, "a re-scan after the restarts", func() bool { return p.Metrics().Scans >= 2 })
	p.mu.Lock()
	live := p.live
	p.mu.Unlock()
	if live != opts.Workers {
		t.Errorf("%d live workers, want %d", live, opts.Workers)
	}
	if got := len(lb.lines("worker restarted", "reason=panic")); got != k {
		t.Errorf("%d restart log lines, want %d", got, k)
	}
	if got := len(lb.lines("workflow panicked", "panic=boom", "stack=")); got != k {
		t.Errorf("%d panic log lines with a stack, want %d", got, k)
	}
}

// A handler that ignores its context and blocks past the deadline: its
// slot goes to a fresh goroutine, the message is retried there while the
// first run is still stuck, and the pool serves other messages.
func TestStuckHandlerIsAbandonedAndRetried(t *testing.T) {
	opts, lb := fastOptions(t)
	opts.Workers = 1 // the only worker gets stuck: only a replacement can serve anything
	opts.Deadline = 30 * time.Millisecond
	opts.Grace = 20 * time.Millisecond
	var c counter
	release := make(chan struct{})
	stuckReturned := make(chan struct{})
	var secondWhileStuck, othersWhileStuck sync.WaitGroup
	secondWhileStuck.Add(1)
	othersWhileStuck.Add(5)
	var mu sync.Mutex
	stuck := true
	p := start(t, opts, func(_ context.Context, m workers.Message) error {
		n := c.inc(m)
		pm := m.(workers.PendingWorkflowMessage)
		if pm.Sheet == "stuck" && n == 1 {
			<-release // ignores ctx on purpose
			close(stuckReturned)
			return errors.New("late result, to be ignored")
		}
		mu.Lock()
		defer mu.Unlock()
		if stuck {
			if pm.Sheet == "stuck" {
				secondWhileStuck.Done()
			} else {
				othersWhileStuck.Done()
			}
		}
		return nil
	})
	ctx := context.Background()
	if err := p.PostMessage(ctx, msg("stuck", 1)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := p.PostMessage(ctx, msg("other", eventlog.SequenceID(i))); err != nil {
			t.Fatal(err)
		}
	}
	secondWhileStuck.Wait()
	othersWhileStuck.Wait()
	eventually(t, "six completions", func() bool { return p.Metrics().Completions == 6 })
	m := p.Metrics()
	if m.Abandoned != 1 || m.Restarts != 1 || m.Stuck != 1 || m.Completions != 6 || m.Failures != 1 {
		t.Errorf("metrics %+v; want 1 abandoned/restart/stuck, 6 completions, 1 failure", m)
	}
	if p.Outstanding("stuck") || p.Outstanding("other") {
		t.Error("messages still outstanding")
	}
	mu.Lock()
	stuck = false
	mu.Unlock()
	close(release)
	<-stuckReturned
	eventually(t, "the stuck goroutine is accounted for", func() bool { return p.Metrics().Stuck == 0 })
	if m := p.Metrics(); m.Failures != 1 || m.Completions != 6 || m.Runs != 7 {
		t.Errorf("the late result was not ignored: %+v", m)
	}
	if len(lb.lines("worker restarted", "reason=deadline")) != 1 || len(lb.lines("abandoned workflow run returned")) != 1 {
		t.Errorf("missing restart or late-result log lines:\n%s", lb)
	}
}

// A handler that honours its context returns when the deadline cancels
// it: that is an ordinary failure, retried, with no restart.
func TestDeadlineCancelsTheRunContext(t *testing.T) {
	opts, _ := fastOptions(t)
	opts.Deadline = 20 * time.Millisecond
	var c counter
	causes := make(chan error, 1)
	p := start(t, opts, func(ctx context.Context, m workers.Message) error {
		if c.inc(m) == 1 {
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return ctx.Err()
		}
		return nil
	})
	if err := p.PostMessage(context.Background(), msg("s1", 3)); err != nil {
		t.Fatal(err)
	}
	if cause := <-causes; !errors.Is(cause, ErrDeadline) {
		t.Errorf("cause %v, want ErrDeadline", cause)
	}
	eventually(t, "completion", func() bool { return p.Metrics().Completions == 1 })
	if m := p.Metrics(); m.Restarts != 0 || m.Failures != 1 || m.Retries != 1 {
		t.Errorf("metrics %+v; want 1 failure and retry, no restart", m)
	}
}

func TestDuplicateDeliveriesAreCoalesced(t *testing.T) {
	opts, _ := fastOptions(t)
	opts.Workers = 4
	var c counter
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	p := start(t, opts, func(_ context.Context, m workers.Message) error {
		c.inc(m)
		once.Do(func() { close(started) })
		<-release
		return nil
	})
	ctx := context.Background()
	m1 := msg("s1", 200)
	if err := p.PostMessage(ctx, m1); err != nil {
		t.Fatal(err)
	}
	<-started
	const posters, each = 16, 50
	var wg sync.WaitGroup
	for range posters {
		wg.Go(func() {
			for range each {
				if err := p.PostMessage(ctx, m1); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// A second message, running on another worker, coalesces too.
	m2 := msg("s1", 300)
	for range 100 {
		if err := p.PostMessage(ctx, m2); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	eventually(t, "everything done", func() bool { return !p.Outstanding("s1") })
	if c.get(m1) != 1 || c.get(m2) != 1 {
		t.Errorf("m1 ran %d times and m2 %d times; want once each", c.get(m1), c.get(m2))
	}
	m := p.Metrics()
	if want := int64(posters*each + 99); m.Coalesced != want || m.Posted != want+2 || m.Completions != 2 {
		t.Errorf("metrics %+v; want %d coalesced of %d posted, 2 completions", m, want, want+2)
	}
	// Once done, the same message runs again: the handler is idempotent
	// and the log decides whether there is anything to do.
	if err := p.PostMessage(ctx, m1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the re-post ran", func() bool { return c.get(m1) == 2 })
}

// Concurrent posts of messages that each fail once: every message fails
// once and completes, whatever the interleaving, and nothing is left.
func TestConcurrentPostsWithRetries(t *testing.T) {
	opts, _ := fastOptions(t)
	opts.Workers = 3
	var c counter
	p := start(t, opts, func(_ context.Context, m workers.Message) error {
		if c.inc(m) == 1 {
			return errTransient
		}
		return nil
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				_ = p.PostMessage(context.Background(), msg(fmt.Sprint("s", i%5), eventlog.SequenceID(i%20+g%2)))
			}
		})
	}
	wg.Wait()
	eventually(t, "all done", func() bool {
		for i := range 5 {
			if p.Outstanding(fmt.Sprint("s", i)) {
				return false
			}
		}
		return true
	})
	m := p.Metrics()
	// 40 distinct messages, each failing on its first run only; a post
	// that arrives after its message completed runs it again.
	if m.Failures != 40 || m.Completions < 40 || m.Runs != m.Completions+m.Failures || m.Posted != 1600 || m.Queued+m.Running+m.Waiting != 0 {
		t.Errorf("inconsistent metrics %+v", m)
	}
}

func TestStartupScanResendsPendingEntries(t *testing.T) {
	opts, lb := fastOptions(t)
	l := &lister{}
	want := []eventlog.PendingEntry{
		{Sheet: "a", SequenceID: 100, Workflow: "snapshot"},
		{Sheet: "a", SequenceID: 300, Workflow: "snapshot"},
		{Sheet: "b", SequenceID: 100, Workflow: "snapshot"},
	}
	l.set(want...)
	opts.Lister = l
	var c counter
	start(t, opts, func(_ context.Context, m workers.Message) error {
		c.inc(m)
		return nil
	})
	for _, e := range want {
		eventually(t, fmt.Sprint("a run of ", e), func() bool { return c.get(msg(e.Sheet, e.SequenceID)) == 1 })
	}
	if len(lb.lines("re-sent pending workflows", "resent=3")) != 1 {
		t.Errorf("no scan log line:\n%s", lb)
	}
}

// The periodic re-scan is the safety net for messages that were lost; a
// failing lister is retried with backoff.
func TestPeriodicRescanAndScanRetry(t *testing.T) {
	opts, _ := fastOptions(t)
	l := &lister{fail: 3}
	opts.Lister = l
	opts.RescanInterval = 10 * time.Millisecond
	var c counter
	p := start(t, opts, func(_ context.Context, m workers.Message) error {
		c.inc(m)
		return nil
	})
	eventually(t, "a successful scan after failures", func() bool { return p.Metrics().Scans >= 1 })
	if m := p.Metrics(); m.ScanErrors != 3 {
		t.Errorf("%d scan errors, want 3", m.ScanErrors)
	}
	// A message "lost" on the way shows up in the log only.
	l.set(eventlog.PendingEntry{Sheet: "s", SequenceID: 5, Workflow: "snapshot"})
	eventually(t, "the re-scan finds it", func() bool { return c.get(msg("s", 5)) >= 1 })
}

func TestPermanentErrorsAreDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"marked", Permanent(errors.New("the sheet id is not valid"))},
		{"own type", optIn{}},
		{"validation", errs.Validation("bad")},
		{"range", errs.Range("entry 9 was truncated")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, lb := fastOptions(t)
			l := &lister{}
			l.set(eventlog.PendingEntry{Sheet: "s1", SequenceID: 9, Workflow: "frobnicate"})
			opts.Lister = l
			opts.RescanInterval = 5 * time.Millisecond
			var c counter
			p := start(t, opts, func(_ context.Context, m workers.Message) error {
				c.inc(m)
				return tc.err
			})
			m1 := workers.PendingWorkflowMessage{Sheet: "s1", Workflow: "frobnicate", SequenceID: 9}
			eventually(t, "the drop", func() bool { return p.Metrics().Dropped == 1 })
			// Re-scans keep finding the entry and posts keep coming:
			// neither runs it again.
			scans := p.Metrics().Scans
			eventually(t, "several re-scans", func() bool { return p.Metrics().Scans >= scans+3 })
			if err := p.PostMessage(context.Background(), m1); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // longer than the backoff cap
			m := p.Metrics()
			if c.get(m1) != 1 || m.Runs != 1 || m.Retries != 0 || m.Dropped != 1 || m.Ignored < 3 || p.Outstanding("s1") {
				t.Errorf("ran %d times; metrics %+v", c.get(m1), m)
			}
			if len(lb.lines("dropping a workflow that retrying cannot fix", "sheet=s1", "seq=9", "workflow=frobnicate")) != 1 {
				t.Errorf("no drop log line:\n%s", lb)
			}
		})
	}
}

type optIn struct{}

func (optIn) Error() string   { return "my own permanent error" }
func (optIn) Permanent() bool { return true }

func TestCustomPermanentClassifier(t *testing.T) {
	opts, _ := fastOptions(t)
	errQuota := errors.New("quota exhausted for good")
	opts.Permanent = func(err error) bool { return errors.Is(err, errQuota) }
	p := start(t, opts, func(context.Context, workers.Message) error { return errQuota })
	_ = p.PostMessage(context.Background(), msg("s", 1))
	eventually(t, "the drop", func() bool { return p.Metrics().Dropped == 1 })
	if m := p.Metrics(); m.Runs != 1 || m.Retries != 0 {
		t.Errorf("metrics %+v", m)
	}
	if IsPermanent(errTransient) || IsPermanent(ErrDeadline) || IsPermanent(&PanicError{Value: 1}) || IsPermanent(nil) || Permanent(nil) != nil {
		t.Error("IsPermanent misclassifies")
	}
}

// MaxAttempts parks a message that keeps failing; the log still holds it,
// so the next re-scan sends it again.
func TestMaxAttemptsParksUntilTheNextScan(t *testing.T) {
	opts, lb := fastOptions(t)
	opts.MaxAttempts = 2
	l := &lister{}
	opts.Lister = l
	var c counter
	p := start(t, opts, func(_ context.Context, m workers.Message) error {
		if c.inc(m) <= 3 {
			return errTransient
		}
		return nil
	})
	eventually(t, "the start-up scan", func() bool { return p.Metrics().Scans == 1 })
	m1 := msg("s", 4)
	_ = p.PostMessage(context.Background(), m1)
	eventually(t, "parked", func() bool { return p.Metrics().Dropped == 1 && !p.Outstanding("s") })
	if c.get(m1) != 2 || len(lb.lines("parking a workflow", "attempts=2")) != 1 {
		t.Errorf("ran %d times before parking, want 2:\n%s", c.get(m1), lb)
	}
	l.set(eventlog.PendingEntry{Sheet: "s", SequenceID: 4, Workflow: "snapshot"})
	if _, err := p.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "completion after the re-scan", func() bool { return p.Metrics().Completions == 1 })
	if c.get(m1) != 4 {
		t.Errorf("ran %d times, want 4", c.get(m1))
	}
}

func TestBackoffIsCappedJitteredAndSeeded(t *testing.T) {
	mk := func(seed uint64, jitter float64) *Pool {
		p, err := New(Options{BackoffBase: 10 * time.Millisecond, BackoffCap: time.Second, Jitter: jitter, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	exact := mk(1, -1)
	for attempt, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 5: 160 * time.Millisecond, 7: 640 * time.Millisecond, 8: time.Second, 1000: time.Second} {
		if got := exact.backoffLocked(attempt); got != want {
			t.Errorf("attempt %d: delay %v, want %v", attempt, got, want)
		}
	}
	a, b := mk(42, 0.5), mk(42, 0.5)
	distinct := map[time.Duration]bool{}
	for attempt := 1; attempt < 60; attempt++ {
		da, db := a.backoffLocked(attempt), b.backoffLocked(attempt)
		if da != db {
			t.Fatalf("same seed, different delays: %v and %v", da, db)
		}
		full := exact.backoffLocked(attempt)
		if da > full || da < full/2 {
			t.Errorf("attempt %d: jittered delay %v outside [%v, %v]", attempt, da, full/2, full)
		}
		distinct[da] = true
	}
	if len(distinct) < 30 {
		t.Errorf("only %d distinct delays: no jitter?", len(distinct))
	}
}

func TestOptionsAreValidated(t *testing.T) {
	for _, o := range []Options{
		{Workers: -1}, {Deadline: -1}, {BackoffBase: time.Second, BackoffCap: time.Millisecond},
		{Jitter: 1.5}, {MaxAttempts: -2},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestPostMessageErrors(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.PostMessage(ctx, msg("s", 1)); !errors.Is(err, workers.ErrNoHandler) {
		t.Errorf("post without a handler: %v", err)
	}
	if err := p.Start(); !errors.Is(err, workers.ErrNoHandler) {
		t.Errorf("start without a handler: %v", err)
	}
	p.SetHandler(func(context.Context, workers.Message) error { return nil })
	var ve *errs.ValidationError
	if err := p.PostMessage(ctx, workers.PendingWorkflowMessage{Sheet: "s"}); !errors.As(err, &ve) {
		t.Errorf("post without a workflow: %v", err)
	}
	if err := p.PostMessage(ctx, otherMessage{}); !errors.As(err, &ve) {
		t.Errorf("post of an unknown message type: %v", err)
	}
	// Posted before Start: queued, run once started.
	if err := p.PostMessage(ctx, msg("s", 1)); err != nil || !p.Outstanding("s") {
		t.Errorf("post before start: %v, outstanding %v", err, p.Outstanding("s"))
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err == nil {
		t.Error("second Start accepted")
	}
	eventually(t, "the early post ran", func() bool { return p.Metrics().Completions == 1 })
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.PostMessage(ctx, msg("s", 2)); !errors.Is(err, workers.ErrClosed) {
		t.Errorf("post after close: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Errorf("second close: %v", err)
	}
}

type otherMessage struct{}

func (otherMessage) MessageType() string { return "Other" }

func TestCloseLetsRunningWorkflowsFinish(t *testing.T) {
	opts, _ := fastOptions(t)
	opts.Workers = 1
	var c counter
	started := make(chan struct{})
	p := start(t, opts, func(ctx context.Context, m workers.Message) error {
		if c.inc(m); m.(workers.PendingWorkflowMessage).SequenceID == 1 {
			close(started)
			select {
			case <-time.After(50 * time.Millisecond):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	ctx := context.Background()
	_ = p.PostMessage(ctx, msg("s", 1))
	<-started
	_ = p.PostMessage(ctx, msg("s", 2)) // queued behind: left pending, not run
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		t.Fatal(err)
	}
	m := p.Metrics()
	if m.Completions != 1 || c.get(msg("s", 2)) != 0 || p.Outstanding("s") {
		t.Errorf("after close: %+v, message 2 ran %d times", m, c.get(msg("s", 2)))
	}
}

func TestCloseCancelsWhatDoesNotFinishInTime(t *testing.T) {
	opts, lb := fastOptions(t)
	opts.Workers = 2
	opts.Grace = 30 * time.Millisecond
	causes := make(chan error, 1)
	release := make(chan struct{})
	var startedWG sync.WaitGroup
	startedWG.Add(2)
	p := start(t, opts, func(ctx context.Context, m workers.Message) error {
		startedWG.Done()
		if m.(workers.PendingWorkflowMessage).Sheet == "polite" {
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return ctx.Err()
		}
		<-release // ignores ctx
		return nil
	})
	defer close(release)
	ctx := context.Background()
	_ = p.PostMessage(ctx, msg("polite", 1))
	_ = p.PostMessage(ctx, msg("rude", 1))
	startedWG.Wait()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := p.Close(cctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want one wrapping the context's error", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if cause := <-causes; !errors.Is(cause, ErrClosing) {
		t.Errorf("cause %v, want ErrClosing", cause)
	}
	m := p.Metrics()
	if m.Completions != 0 || m.Abandoned != 1 || m.Retries != 0 || p.Outstanding("polite") || p.Outstanding("rude") {
		t.Errorf("after close: %+v", m)
	}
	if len(lb.lines("interrupted by shutdown", "sheet=polite")) != 1 || len(lb.lines("abandoning", "sheet=rude")) != 1 {
		t.Errorf("missing shutdown log lines:\n%s", lb)
	}
}
