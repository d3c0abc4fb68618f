package lambdarun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// DeadlineMargin is the time left before an invocation's deadline under
// which no new workflow is started: unstarted work is reported as failed
// (and retried) instead of letting the invocation time out, which would
// fail the whole batch. Running workflows get a context that ends this
// much before the deadline, for the same reason.
const DeadlineMargin = 3 * time.Second

// ErrNoTime is the error of a job not started because the invocation's
// deadline was too close.
var ErrNoTime = errors.New("not started: the invocation's deadline is too close")

// ErrInjectedFault is the error of a run failed by fault injection.
var ErrInjectedFault = errors.New("injected fault (" + EnvFaultFailFirst + ")")

// Workflows is the worker side of the AWS deployment: a workers.Worker
// whose handler, installed by the worker-side engine code
// (spreadsheet.WorkflowHandler), runs each PendingWorkflowMessage on an
// engine from a bounded cache. The stream-triggered workflow Lambda and
// the scheduled sweeper both run workflows through it.
type Workflows struct {
	worker      *Worker
	cache       *enginecache.Cache
	log         *slog.Logger
	concurrency int

	faults   []FaultRule
	faultMu  sync.Mutex
	attempts map[workers.PendingWorkflowMessage]int
}

// Worker is the workers.Worker of a Lambda execution environment: the
// invocation hands it messages directly, so it has no queue of its own.
type Worker struct {
	mu sync.Mutex
	h  workers.Handler
}

var _ workers.Worker = (*Worker)(nil)

// SetHandler implements workers.Worker.
func (w *Worker) SetHandler(h workers.Handler) {
	w.mu.Lock()
	w.h = h
	w.mu.Unlock()
}

// Deliver runs m with the handler, in the caller's goroutine.
func (w *Worker) Deliver(ctx context.Context, m workers.Message) error {
	w.mu.Lock()
	h := w.h
	w.mu.Unlock()
	if h == nil {
		return workers.ErrNoHandler
	}
	return h(ctx, m)
}

// NewWorkflows builds the worker over s with an engine cache bounded as
// c says (worker engines only: they hold the cells of the snapshot being
// built, not the host's view).
func NewWorkflows(s Stores, c Config, log *slog.Logger) *Workflows {
	opts := spreadsheet.Options{Logger: log}
	c.Retention.engineOptions(&opts, s.Retire, log)
	cache := EngineCache(s, workers.ImplicitHost{}, opts, c, log)
	w := &Workflows{
		worker:      &Worker{},
		cache:       cache,
		log:         log,
		concurrency: max(c.WorkflowConcurrency, 1),
		faults:      c.faultRules(),
		attempts:    map[workers.PendingWorkflowMessage]int{},
	}
	for _, r := range w.faults {
		log.Warn("fault injection is on: the first attempts of each workflow fail",
			"failFirst", r.FailFirst, "sheetPrefix", r.Prefix)
	}
	// The engine's handler runs the workflow on the engine the cache
	// lends for the duration (Do measures its memory afterwards, which
	// is what keeps the cache within its byte bound).
	w.worker.SetHandler(func(ctx context.Context, m workers.Message) error {
		p, ok := m.(workers.PendingWorkflowMessage)
		if !ok {
			return fmt.Errorf("unsupported worker message %q", m.MessageType())
		}
		if err := w.injectFault(p); err != nil {
			return err
		}
		return cache.Do(ctx, p.Sheet, func(e *spreadsheet.Engine) error {
			lend := func(context.Context, string) (*spreadsheet.Engine, error) { return e, nil }
			return spreadsheet.WorkflowHandler(lend)(ctx, p)
		})
	})
	return w
}

// Cache is the engine cache (for tests and logs).
func (w *Workflows) Cache() *enginecache.Cache { return w.cache }

func (w *Workflows) injectFault(p workers.PendingWorkflowMessage) error {
	i := slices.IndexFunc(w.faults, func(r FaultRule) bool { return strings.HasPrefix(p.Sheet, r.Prefix) })
	if i < 0 {
		return nil
	}
	w.faultMu.Lock()
	defer w.faultMu.Unlock()
	w.attempts[p]++
	if n, limit := w.attempts[p], w.faults[i].FailFirst; n <= limit {
		return fmt.Errorf("attempt %d of %d failed on purpose: %w", n, limit, ErrInjectedFault)
	}
	return nil
}

// Job is one workflow to run, with the caller's identifier of it (a
// stream record's sequence number, or the entry for the sweeper).
type Job struct {
	ID  string
	Msg workers.PendingWorkflowMessage
}

// RunAll runs jobs and returns one error per job (nil: done, or nothing
// to do). Jobs of one sheet run one after another in the given order;
// up to the configured concurrency of sheets run at once. A job is not
// started when ctx's deadline is within DeadlineMargin (ErrNoTime), and a
// panicking job is an error, never a crash of the invocation.
func (w *Workflows) RunAll(ctx context.Context, jobs []Job) []error {
	results := make([]error, len(jobs))
	runCtx, cancel := w.runContext(ctx)
	defer cancel()

	var order []string
	bySheet := map[string][]int{}
	for i, j := range jobs {
		if _, ok := bySheet[j.Msg.Sheet]; !ok {
			order = append(order, j.Msg.Sheet)
		}
		bySheet[j.Msg.Sheet] = append(bySheet[j.Msg.Sheet], i)
	}
	sem := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	for _, sheet := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func(idx []int) {
			defer func() { <-sem; wg.Done() }()
			for _, i := range idx {
				results[i] = w.runOne(ctx, runCtx, jobs[i])
			}
		}(bySheet[sheet])
	}
	wg.Wait()
	return results
}

// runContext ends DeadlineMargin/3 before ctx's deadline, so that a
// storage call stuck at the end still returns (as an error) in time.
func (w *Workflows) runContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-DeadlineMargin/3))
	}
	return context.WithCancel(ctx)
}

func (w *Workflows) runOne(ctx, runCtx context.Context, j Job) (err error) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < DeadlineMargin {
		return ErrNoTime
	}
	if err := runCtx.Err(); err != nil {
		return fmt.Errorf("not started: %w", err)
	}
	lg := w.log.With("sheet", j.Msg.Sheet, "seq", uint64(j.Msg.SequenceID), "workflow", j.Msg.Workflow, "job", j.ID)
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("workflow panicked: %v", r)
			lg.Error("workflow panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	err = w.worker.Deliver(runCtx, j.Msg)
	ms := time.Since(start).Milliseconds()
	var unknown *spreadsheet.UnknownWorkflowError
	var gone *errs.RangeError
	switch {
	case err == nil:
		lg.Debug("workflow ran", "ms", ms)
	case errors.As(err, &gone):
		// The entry (or the log before it) was truncated away: the
		// workflow can never run, and retrying cannot change that. Were
		// it only the base that moved, the sweeper runs the entry again
		// from the new base.
		lg.Warn("the log no longer holds what the workflow needs; dropping it", "err", err)
		return nil
	case errors.As(err, &unknown):
		// Retrying cannot help: reported as failed so that, after the
		// mapping's finite retries, the record reaches the dead-letter
		// queue where someone will look at it.
		lg.Error("unknown workflow: cannot run it", "err", err)
	case errors.Is(err, ErrInjectedFault):
		lg.Warn("workflow failed (injected fault)", "err", err)
	default:
		lg.Warn("workflow failed; it will be retried", "err", err, "ms", ms)
	}
	return err
}
