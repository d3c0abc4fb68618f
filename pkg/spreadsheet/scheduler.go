package spreadsheet

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RetireScheduler runs the delayed retention passes of many sheets in one
// process, on engines it asks for when a pass is due, so that a pass an
// engine asked for still runs after a cache dropped that engine. Pass its
// Schedule as Options.RetireLater. The single-machine server uses one;
// a Lambda sends itself a delayed message instead.
type RetireScheduler struct {
	engineOf func(ctx context.Context, sheet string) (*Engine, error)
	lg       *slog.Logger
	timeout  time.Duration
	sem      chan struct{}

	mu     sync.Mutex
	timers map[string]*scheduled
	closed bool
	wg     sync.WaitGroup
}

type scheduled struct {
	timer *time.Timer
	due   time.Time
}

// RetireSchedulerOptions configure a RetireScheduler.
type RetireSchedulerOptions struct {
	// Concurrency bounds the passes that run at once (default 2).
	Concurrency int
	// Timeout bounds one pass (default 5 minutes).
	Timeout time.Duration
	Logger  *slog.Logger
}

// NewRetireScheduler returns a scheduler that runs each due pass with
// Retire on the engine engineOf returns for the sheet.
func NewRetireScheduler(engineOf func(ctx context.Context, sheet string) (*Engine, error), o RetireSchedulerOptions) *RetireScheduler {
	if o.Concurrency < 1 {
		o.Concurrency = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = retireTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &RetireScheduler{
		engineOf: engineOf, lg: o.Logger, timeout: o.Timeout,
		sem: make(chan struct{}, o.Concurrency), timers: map[string]*scheduled{},
	}
}

// Schedule asks for a pass over sheet at due (on the real clock), or
// earlier if one is already asked for; the pass asks again if it leaves
// work for later. It never blocks.
func (s *RetireScheduler) Schedule(_ context.Context, sheet string, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if cur := s.timers[sheet]; cur != nil {
		if !due.Before(cur.due) {
			return
		}
		if !cur.timer.Stop() {
			return // firing now; its pass asks again if needed
		}
	}
	entry := &scheduled{due: due}
	entry.timer = time.AfterFunc(max(time.Until(due), 0), func() { s.fire(sheet, entry) })
	s.timers[sheet] = entry
}

func (s *RetireScheduler) fire(sheet string, entry *scheduled) {
	s.mu.Lock()
	if s.closed || s.timers[sheet] != entry {
		s.mu.Unlock()
		return
	}
	delete(s.timers, sheet)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	e, err := s.engineOf(ctx, sheet)
	if err != nil {
		s.lg.Warn("snapshot retention: no engine for the sheet; tried again later", "sheet", sheet, "err", err)
		s.Schedule(ctx, sheet, time.Now().Add(time.Minute))
		return
	}
	// A failed pass asks for another itself (through RetireLater).
	if _, err := e.Retire(ctx); err != nil {
		s.lg.Warn("snapshot retention failed; it is tried again later", "sheet", sheet, "err", err)
	}
}

// Pending is the number of sheets with a pass asked for.
func (s *RetireScheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.timers)
}

// Close cancels the passes asked for and waits for those running, until
// ctx ends.
func (s *RetireScheduler) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, t := range s.timers {
		t.timer.Stop()
	}
	s.timers = nil
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
