// Package pool is the supervised local worker pool of the single-machine
// server: in one process it is both the host (workers.PostMessageWorkerHost)
// and the workers (workers.Worker). N worker goroutines take messages
// from a queue and run them through the handler the worker-side engine
// installs.
//
// # Supervision
//
// A handler that panics is recovered; its worker goroutine is replaced by
// a fresh one and the restart is counted. A handler that runs past
// Options.Deadline has its context cancelled; if it has still not
// returned after Options.Grace, its slot is given to a fresh goroutine.
// Go cannot kill a goroutine: the stuck one is abandoned, keeps whatever
// it holds until it returns by itself, and its late result is ignored.
// Its message is retried on another goroutine meanwhile, so for a while
// two copies of the workflow may run at once; workflows are idempotent
// and complete with a conditional log write, so that is harmless. An
// abandoned goroutine is not counted among the N workers; Metrics.Stuck
// says how many have not returned yet. A run that waits for a lock the
// stuck run holds (the engine serialises the workflows of one sheet)
// gives up when its own context ends, so it fails and is retried with
// backoff rather than stuck in turn.
//
// After every restart, at start-up and every Options.RescanInterval, the
// pool asks its PendingLister for the entries whose pending field is
// still set and re-posts them: the log, not the pool's memory, says what
// remains to be done, so messages lost to a crash, a drop or a bug are
// re-sent.
//
// # Retries
//
// A failed run (error, panic, deadline) is retried after a capped,
// jittered exponential backoff. Errors that retrying cannot fix
// (IsPermanent: any error with a method Permanent() bool that says so,
// such as the engine's unknown workflow; a malformed request; an entry
// that is not in the log) are logged and dropped, and the pool remembers the entry so that re-scans and re-posts
// do not run it again while the process lives (the entry stays pending in
// the log: a restart with a fixed binary picks it up). Every other error is retried without limit by default: the
// contract says a requested workflow WILL complete, and a storage outage
// of unknown length must not turn into a lost snapshot. The backoff cap
// bounds the cost of a workflow that keeps failing (one run per cap
// interval, each logged). Options.MaxAttempts can park such a message
// instead: it is dropped from memory but stays pending in the log, so the
// next periodic re-scan posts it again with a fresh backoff.
//
// # Duplicates
//
// A message equal (sheet, workflow, sequence id) to one already queued,
// running or waiting for a retry is coalesced into it. Handlers are
// idempotent anyway; coalescing only saves work.
//
// # Metrics
//
// Besides its own counters (Metrics), the pool counts every retry it
// schedules in sheetlog_workflow_retries_total and, from Start to Close,
// reports the age of the oldest message it holds (queued, running or
// waiting for a retry) as sheetlog_pending_oldest_age_seconds (package
// workers; one pool per process).
//
// # Shutdown
//
// Close stops accepting messages, drops what is queued or waiting (it
// stays pending in the log for the next start-up scan), lets running
// workflows finish until its context ends, then cancels them.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// PendingLister lists the entries whose pending field is set, across every
// sheet. The event log stores implement it.
type PendingLister interface {
	Pending(ctx context.Context) ([]eventlog.PendingEntry, error)
}

// Defaults of Options.
const (
	DefaultDeadline       = 5 * time.Minute
	DefaultGrace          = 10 * time.Second
	DefaultBackoffBase    = 200 * time.Millisecond
	DefaultBackoffCap     = time.Minute
	DefaultJitter         = 0.5
	DefaultRescanInterval = time.Minute
)

// Options configure a Pool. The zero value gives the defaults.
type Options struct {
	// Workers is the number of worker goroutines (default GOMAXPROCS).
	Workers int
	// Deadline bounds one run of a handler; past it the run's context is
	// cancelled.
	Deadline time.Duration
	// Grace is how long a cancelled run (deadline or Close) may take to
	// return before its goroutine is abandoned.
	Grace time.Duration
	// BackoffBase is the delay before the first retry; it doubles with
	// each failure up to BackoffCap.
	BackoffBase, BackoffCap time.Duration
	// Jitter in [0, 1] is the fraction of each delay that is random: a
	// delay d becomes uniform in [d*(1-Jitter), d]. Zero means
	// DefaultJitter; pass a negative value for no jitter.
	Jitter float64
	// Seed seeds the pool's own random source (0: a random seed).
	Seed uint64
	// MaxAttempts, when positive, parks a message after that many failed
	// runs: it leaves the pool's memory but stays pending in the log, so
	// the next scan re-sends it. Zero retries without limit.
	MaxAttempts int
	// Lister is where scans find pending entries; nil disables scans.
	Lister PendingLister
	// RescanInterval is the period of the safety-net re-scan; negative
	// disables it (scans still run at start-up and after restarts).
	RescanInterval time.Duration
	// Permanent, when set, classifies more errors as permanent, in
	// addition to IsPermanent.
	Permanent func(error) bool
	Logger    *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Deadline == 0 {
		o.Deadline = DefaultDeadline
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffCap == 0 {
		o.BackoffCap = max(DefaultBackoffCap, o.BackoffBase)
	}
	switch {
	case o.Jitter == 0:
		o.Jitter = DefaultJitter
	case o.Jitter < 0:
		o.Jitter = 0
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.RescanInterval == 0 {
		o.RescanInterval = DefaultRescanInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Workers < 1:
		return o, errs.Validation("pool: workers must be at least 1, got %d", o.Workers)
	case o.Deadline < 0 || o.Grace < 0:
		return o, errs.Validation("pool: deadline and grace must not be negative")
	case o.BackoffBase < 0 || o.BackoffCap < o.BackoffBase:
		return o, errs.Validation("pool: need 0 <= backoff base <= backoff cap, got %v and %v", o.BackoffBase, o.BackoffCap)
	case o.Jitter > 1:
		return o, errs.Validation("pool: jitter must be at most 1, got %v", o.Jitter)
	case o.MaxAttempts < 0:
		return o, errs.Validation("pool: max attempts must not be negative")
	}
	return o, nil
}

// ErrDeadline is the cause of a run's context cancellation when the run
// exceeded Options.Deadline, and the error recorded for it.
var ErrDeadline = errors.New("pool: the workflow exceeded its deadline")

// ErrClosing is the cause of a run's context cancellation when Close ran
// out of time.
var ErrClosing = errors.New("pool: closing")

// PanicError is the error recorded for a run whose handler panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("pool: the handler panicked: %v", e.Value) }

// Permanent marks err as one that retrying cannot fix: the pool logs and
// drops the message instead of retrying it. Any error type can also opt
// in by having a method Permanent() bool that returns true.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// IsPermanent reports whether retrying cannot fix err: an error in its
// chain says so with a method Permanent() bool (the engine's unknown
// workflow, an error marked with Permanent), or it is a malformed request
// (*errs.ValidationError) or an entry outside the log (*errs.RangeError:
// it was truncated away, so nothing is left to complete).
func IsPermanent(err error) bool {
	var (
		ve *errs.ValidationError
		re *errs.RangeError
		pe interface{ Permanent() bool }
	)
	switch {
	case errors.As(err, &pe) && pe.Permanent():
		return true
	case errors.As(err, &ve), errors.As(err, &re):
		return true
	}
	return false
}

// Metrics are the pool's counters (since New) and gauges (now).
type Metrics struct {
	// Posted counts messages accepted by PostMessage; Coalesced those of
	// them, and of the scans, that joined a message already known.
	Posted, Coalesced int64
	// Runs counts handler calls; Completions those that returned nil;
	// Failures those that failed (error, panic, deadline).
	Runs, Completions, Failures int64
	// Retries counts retries scheduled; Dropped messages given up
	// (permanent errors, or parked after MaxAttempts); Ignored posts and
	// scan results for entries already dropped for a permanent error.
	Retries, Dropped, Ignored int64
	// Restarts counts worker goroutines replaced, after a panic (Panics)
	// or a deadline past the grace period (Abandoned).
	Restarts, Panics, Abandoned int64
	// Scans counts completed scans, ScanErrors failed ones, Resent the
	// messages scans queued that the pool did not know.
	Scans, ScanErrors, Resent int64

	// Queued, Running and Waiting (for a retry) are messages now; Stuck
	// counts abandoned goroutines that have not returned yet.
	Queued, Running, Waiting, Stuck int
}

// maxPoisoned bounds the set of entries dropped for a permanent error,
// which scans and posts skip so that an entry left pending in the log is
// not re-run (and re-logged) every re-scan.
const maxPoisoned = 10000

type key struct {
	sheet, workflow string
	seq             eventlog.SequenceID
}

type jobState uint8

const (
	queued jobState = iota
	running
	waiting
)

type job struct {
	key      key
	state    jobState
	attempts int // failed runs so far
	timer    *time.Timer
	since    time.Time // when the pool took it
}

func (j *job) msg() workers.PendingWorkflowMessage {
	return workers.PendingWorkflowMessage{Sheet: j.key.sheet, Workflow: j.key.workflow, SequenceID: j.key.seq}
}

func (j *job) logAttrs() []any {
	return []any{"sheet", j.key.sheet, "seq", uint64(j.key.seq), "workflow", j.key.workflow}
}

// slot is one of the N worker positions; gen names the goroutine that
// currently owns it.
type slot struct {
	id  int
	gen uint64
}

// run is one handler call.
type run struct {
	job       *job
	slot      *slot
	cancel    context.CancelCauseFunc
	deadline  *time.Timer
	grace     *time.Timer
	finished  bool
	abandoned bool
}

// Pool is the supervised worker pool. It is safe for concurrent use.
type Pool struct {
	opts    Options
	lg      *slog.Logger
	handler atomic.Pointer[workers.Handler]

	baseCtx    context.Context
	baseCancel context.CancelCauseFunc

	mu          sync.Mutex
	work        *sync.Cond
	started     bool
	closed      bool
	rnd         *rand.Rand
	jobs        map[key]*job
	queue       []*job
	perSheet    map[string]int
	runs        map[*run]struct{}
	poisoned    map[key]struct{} // dropped for a permanent error
	live        int              // worker goroutines not abandoned
	stopped     chan struct{}
	scanReq     chan struct{}
	scanStop    chan struct{}
	scanDone    chan struct{}
	scanCancel  context.CancelFunc
	closeCalled bool
	stopAge     func()

	m struct {
		posted, coalesced, runs, completions, failures, retries, dropped, ignored,
		restarts, panics, abandoned, scans, scanErrors, resent atomic.Int64
		stuck atomic.Int64
	}
}

var (
	_ workers.PostMessageWorkerHost = (*Pool)(nil)
	_ workers.Worker                = (*Pool)(nil)
)

// New returns a pool that accepts messages at once and runs them after
// SetHandler and Start.
func New(opts Options) (*Pool, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	p := &Pool{
		opts: o, lg: o.Logger.With("component", "workerpool"),
		baseCtx: ctx, baseCancel: cancel,
		rnd:      rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		jobs:     map[key]*job{},
		perSheet: map[string]int{},
		runs:     map[*run]struct{}{},
		poisoned: map[key]struct{}{},
		stopped:  make(chan struct{}),
		scanReq:  make(chan struct{}, 1),
		scanStop: make(chan struct{}),
		scanDone: make(chan struct{}),
	}
	p.work = sync.NewCond(&p.mu)
	return p, nil
}

// SetHandler implements workers.Worker. It may be called again at any
// time; runs that start afterwards use the new handler.
func (p *Pool) SetHandler(h workers.Handler) {
	if h == nil {
		p.handler.Store(nil)
		return
	}
	p.handler.Store(&h)
}

// Start starts the worker goroutines, the start-up scan and the periodic
// re-scan. The handler must be set first.
func (p *Pool) Start() error {
	if p.handler.Load() == nil {
		return workers.ErrNoHandler
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return workers.ErrClosed
	case p.started:
		return errors.New("pool: already started")
	}
	p.started = true
	p.stopAge = workers.PendingOldestAge.Track(p.oldestPending)
	for i := range p.opts.Workers {
		p.spawnLocked(&slot{id: i})
	}
	scanCtx, cancel := context.WithCancel(p.baseCtx)
	p.scanCancel = cancel
	go p.scanLoop(scanCtx)
	p.requestScan()
	p.lg.Info("worker pool started", "workers", p.opts.Workers, "deadline", p.opts.Deadline,
		"grace", p.opts.Grace, "backoffBase", p.opts.BackoffBase, "backoffCap", p.opts.BackoffCap,
		"maxAttempts", p.opts.MaxAttempts, "rescanInterval", p.opts.RescanInterval,
		"lister", p.opts.Lister != nil, "queued", len(p.queue))
	if p.opts.Lister == nil {
		p.lg.Warn("worker pool has no pending lister: messages lost before a restart are not re-sent until the host re-posts them")
	}
	return nil
}

// PostMessage implements workers.PostMessageWorkerHost. It queues m and
// returns at once; a message equal to one already queued, running or
// waiting for a retry is coalesced into it.
func (p *Pool) PostMessage(_ context.Context, m workers.Message) error {
	pm, ok := m.(workers.PendingWorkflowMessage)
	switch {
	case !ok:
		return errs.Validation("pool: unsupported worker message %T", m)
	case pm.Sheet == "" || pm.Workflow == "":
		return errs.Validation("pool: a pending workflow message needs a sheet and a workflow")
	case p.handler.Load() == nil:
		return workers.ErrNoHandler
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return workers.ErrClosed
	}
	p.m.posted.Add(1)
	p.enqueueLocked(pm)
	return nil
}

// enqueueLocked queues pm unless it is known, and reports whether it was
// new.
func (p *Pool) enqueueLocked(pm workers.PendingWorkflowMessage) bool {
	k := key{pm.Sheet, pm.Workflow, pm.SequenceID}
	if _, bad := p.poisoned[k]; bad {
		p.m.ignored.Add(1)
		return false
	}
	if _, dup := p.jobs[k]; dup {
		p.m.coalesced.Add(1)
		return false
	}
	j := &job{key: k, state: queued, since: time.Now()}
	p.jobs[k] = j
	p.perSheet[k.sheet]++
	p.queue = append(p.queue, j)
	p.work.Signal()
	return true
}

// Outstanding implements workers.WorkerHost: a message for sheet is
// queued, running or waiting for a retry.
func (p *Pool) Outstanding(sheet string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.perSheet[sheet] > 0
}

// oldestPending is when the pool took the oldest message it still holds
// (zero: none), for workers.PendingOldestAge.
func (p *Pool) oldestPending() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var oldest time.Time
	for _, j := range p.jobs {
		if oldest.IsZero() || j.since.Before(oldest) {
			oldest = j.since
		}
	}
	return oldest
}

// Metrics returns the pool's counters and gauges.
func (p *Pool) Metrics() Metrics {
	m := Metrics{
		Posted: p.m.posted.Load(), Coalesced: p.m.coalesced.Load(),
		Runs: p.m.runs.Load(), Completions: p.m.completions.Load(), Failures: p.m.failures.Load(),
		Retries: p.m.retries.Load(), Dropped: p.m.dropped.Load(), Ignored: p.m.ignored.Load(),
		Restarts: p.m.restarts.Load(), Panics: p.m.panics.Load(), Abandoned: p.m.abandoned.Load(),
		Scans: p.m.scans.Load(), ScanErrors: p.m.scanErrors.Load(), Resent: p.m.resent.Load(),
		Stuck: int(p.m.stuck.Load()),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range p.jobs {
		switch j.state {
		case queued:
			m.Queued++
		case running:
			m.Running++
		case waiting:
			m.Waiting++
		}
	}
	return m
}

// LogValue lets a Metrics be logged as one slog group.
func (m Metrics) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("posted", m.Posted), slog.Int64("coalesced", m.Coalesced),
		slog.Int64("runs", m.Runs), slog.Int64("completions", m.Completions),
		slog.Int64("failures", m.Failures), slog.Int64("retries", m.Retries),
		slog.Int64("dropped", m.Dropped), slog.Int64("ignored", m.Ignored),
		slog.Int64("restarts", m.Restarts),
		slog.Int64("panics", m.Panics), slog.Int64("abandoned", m.Abandoned),
		slog.Int64("scans", m.Scans), slog.Int64("scanErrors", m.ScanErrors),
		slog.Int64("resent", m.Resent), slog.Int("queued", m.Queued),
		slog.Int("running", m.Running), slog.Int("waiting", m.Waiting), slog.Int("stuck", m.Stuck))
}

// spawnLocked gives s to a fresh goroutine.
func (p *Pool) spawnLocked(s *slot) {
	s.gen++
	p.live++
	go p.workerLoop(s)
}

// retireLocked records that a worker goroutine left the pool's service.
func (p *Pool) retireLocked() {
	p.live--
	if p.closed && p.live == 0 {
		close(p.stopped)
	}
}

func (p *Pool) workerLoop(s *slot) {
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.closed {
			p.work.Wait()
		}
		if p.closed {
			p.retireLocked()
			p.mu.Unlock()
			return
		}
		j := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		j.state = running
		ctx, cancel := context.WithCancelCause(p.baseCtx)
		r := &run{job: j, slot: s, cancel: cancel}
		r.deadline = time.AfterFunc(p.opts.Deadline, func() { p.expire(r) })
		p.runs[r] = struct{}{}
		p.mu.Unlock()

		p.m.runs.Add(1)
		err := p.call(ctx, j)
		cancel(nil)

		p.mu.Lock()
		if r.abandoned {
			// The slot belongs to another goroutine now and the message
			// was already rescheduled: this result is ignored.
			p.mu.Unlock()
			p.lg.Info("an abandoned workflow run returned; its result is ignored",
				append(j.logAttrs(), "slot", s.id, "err", err)...)
			p.m.stuck.Add(-1)
			return
		}
		p.endRunLocked(r)
		p.finishLocked(j, err)
		var pe *PanicError
		if errors.As(err, &pe) {
			p.m.panics.Add(1)
			p.restartLocked(s, "panic")
			p.retireLocked()
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// call runs the handler, turning a panic into a *PanicError.
func (p *Pool) call(ctx context.Context, j *job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	h := p.handler.Load()
	if h == nil {
		return workers.ErrNoHandler
	}
	err = (*h)(ctx, j.msg())
	if err != nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrDeadline) {
		err = fmt.Errorf("%w: %w", ErrDeadline, err)
	}
	return err
}

func (p *Pool) endRunLocked(r *run) {
	r.finished = true
	r.deadline.Stop()
	if r.grace != nil {
		r.grace.Stop()
	}
	delete(p.runs, r)
}

// expire cancels a run that exceeded its deadline and gives it Grace to
// return.
func (p *Pool) expire(r *run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.finished {
		return
	}
	p.lg.Warn("workflow exceeded its deadline; cancelling it",
		append(r.job.logAttrs(), "slot", r.slot.id, "deadline", p.opts.Deadline)...)
	r.cancel(ErrDeadline)
	r.grace = time.AfterFunc(p.opts.Grace, func() { p.abandon(r) })
}

// abandon gives the slot of a run that ignored its cancellation to a fresh
// goroutine and reschedules the run's message.
func (p *Pool) abandon(r *run) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.finished {
		return
	}
	p.abandonLocked(r)
	p.m.abandoned.Add(1)
	p.finishLocked(r.job, fmt.Errorf("%w and did not return within the grace period of %v", ErrDeadline, p.opts.Grace))
	if !p.closed {
		p.restartLocked(r.slot, "deadline")
	}
	p.retireLocked()
}

func (p *Pool) abandonLocked(r *run) {
	r.abandoned = true
	p.m.stuck.Add(1)
	p.endRunLocked(r)
}

// restartLocked replaces the goroutine of s and asks for a re-scan, since
// whatever the old goroutine was doing may have lost messages.
func (p *Pool) restartLocked(s *slot, reason string) {
	p.m.restarts.Add(1)
	p.lg.Error("worker restarted", "slot", s.id, "generation", s.gen+1, "reason", reason, "restarts", p.m.restarts.Load())
	if p.closed {
		return
	}
	p.spawnLocked(s)
	p.requestScan()
}

// finishLocked settles j after a run that ended with err.
func (p *Pool) finishLocked(j *job, err error) {
	if err == nil {
		p.m.completions.Add(1)
		p.forgetLocked(j)
		p.lg.Debug("workflow complete", j.logAttrs()...)
		return
	}
	p.m.failures.Add(1)
	j.attempts++
	var pe *PanicError
	if errors.As(err, &pe) {
		p.lg.Error("workflow panicked", append(j.logAttrs(), "attempt", j.attempts, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))...)
	}
	switch {
	case p.closed:
		p.forgetLocked(j)
		p.lg.Info("workflow interrupted by shutdown; it stays pending in the log", append(j.logAttrs(), "err", err)...)
	case IsPermanent(err) || (p.opts.Permanent != nil && p.opts.Permanent(err)):
		p.m.dropped.Add(1)
		p.forgetLocked(j)
		if len(p.poisoned) >= maxPoisoned {
			clear(p.poisoned) // bound the memory; the worst case is a few more drops
		}
		p.poisoned[j.key] = struct{}{}
		p.lg.Error("dropping a workflow that retrying cannot fix", append(j.logAttrs(), "attempts", j.attempts, "err", err)...)
	case p.opts.MaxAttempts > 0 && j.attempts >= p.opts.MaxAttempts:
		p.m.dropped.Add(1)
		p.forgetLocked(j)
		p.lg.Error("parking a workflow after too many failed runs; it stays pending in the log and the next scan re-sends it",
			append(j.logAttrs(), "attempts", j.attempts, "err", err)...)
	default:
		d := p.backoffLocked(j.attempts)
		p.m.retries.Add(1)
		workers.WorkflowRetries.Inc()
		j.state = waiting
		j.timer = time.AfterFunc(d, func() { p.requeue(j) })
		p.lg.Warn("workflow failed; retrying", append(j.logAttrs(), "attempt", j.attempts, "delay", d, "err", err)...)
	}
}

func (p *Pool) requeue(j *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.jobs[j.key] != j || j.state != waiting {
		return
	}
	j.state = queued
	j.timer = nil
	p.queue = append(p.queue, j)
	p.work.Signal()
}

func (p *Pool) forgetLocked(j *job) {
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	if p.jobs[j.key] != j {
		return
	}
	delete(p.jobs, j.key)
	if p.perSheet[j.key.sheet]--; p.perSheet[j.key.sheet] <= 0 {
		delete(p.perSheet, j.key.sheet)
	}
}

// backoffLocked is the delay before retry number attempt (1 for the
// first): BackoffBase doubled per earlier failure, capped at BackoffCap,
// the top Jitter fraction of it random.
func (p *Pool) backoffLocked(attempt int) time.Duration {
	d := p.opts.BackoffBase
	for i := 1; i < attempt && d < p.opts.BackoffCap; i++ {
		d *= 2
	}
	d = min(d, p.opts.BackoffCap)
	if p.opts.Jitter > 0 && d > 0 {
		d -= time.Duration(p.rnd.Float64() * p.opts.Jitter * float64(d))
	}
	return d
}

func (p *Pool) requestScan() {
	select {
	case p.scanReq <- struct{}{}:
	default: // one is already due; it will see everything
	}
}

func (p *Pool) scanLoop(ctx context.Context) {
	defer close(p.scanDone)
	var tick <-chan time.Time
	if p.opts.RescanInterval > 0 && p.opts.Lister != nil {
		t := time.NewTicker(p.opts.RescanInterval)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	failures := 0
	for {
		select {
		case <-p.scanStop:
			return
		case <-p.scanReq:
		case <-tick:
		case <-retry:
		}
		if p.opts.Lister == nil {
			continue
		}
		_, err := p.Scan(ctx)
		switch {
		case err == nil:
			failures, retry = 0, nil
		case ctx.Err() != nil:
			return
		default:
			failures++
			p.mu.Lock()
			d := p.backoffLocked(failures)
			p.mu.Unlock()
			retry = time.After(d)
			p.lg.Warn("scan for pending workflows failed; retrying", "attempt", failures, "delay", d, "err", err)
		}
	}
}

// Scan lists the pending entries now and queues those the pool does not
// know. It reports how many it queued. Start runs it by itself; it is
// exported for callers that want to force one and see its result.
func (p *Pool) Scan(ctx context.Context) (int, error) {
	if p.opts.Lister == nil {
		return 0, nil
	}
	entries, err := p.opts.Lister.Pending(ctx)
	if err != nil {
		p.m.scanErrors.Add(1)
		return 0, fmt.Errorf("pool: listing pending workflows: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, workers.ErrClosed
	}
	n := 0
	for _, e := range entries {
		if e.Sheet == "" || e.Workflow == "" {
			continue
		}
		if p.enqueueLocked(workers.PendingWorkflowMessage{Sheet: e.Sheet, Workflow: e.Workflow, SequenceID: e.SequenceID}) {
			n++
		}
	}
	p.m.scans.Add(1)
	p.m.resent.Add(int64(n))
	if n > 0 {
		p.lg.Info("re-sent pending workflows found in the log", "resent", n, "pending", len(entries))
	} else {
		p.lg.Debug("scan found nothing new", "pending", len(entries))
	}
	return n, nil
}

// Close stops accepting messages and drops those queued or waiting for a
// retry: they stay pending in the log for the next start-up scan. Running
// workflows may finish until ctx ends; then they are cancelled, and those
// that do not return within Grace are abandoned. Close returns nil when
// every running workflow finished, otherwise an error wrapping ctx's.
// Calling it again waits again.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closeCalled {
		p.closeCalled = true
		p.closed = true
		dropped := 0
		for _, j := range p.jobs {
			if j.state != running {
				p.forgetLocked(j)
				dropped++
			}
		}
		p.queue = nil
		p.work.Broadcast()
		if p.started {
			p.stopAge()
			close(p.scanStop)
			p.scanCancel()
		} else {
			close(p.scanDone)
		}
		if p.live == 0 {
			close(p.stopped)
		}
		p.lg.Info("worker pool closing", "running", len(p.runs), "leftPending", dropped)
	}
	p.mu.Unlock()

	<-p.scanDone
	select {
	case <-p.stopped:
		p.lg.Info("worker pool closed", "metrics", p.Metrics())
		return nil
	case <-ctx.Done():
	}
	p.baseCancel(ErrClosing)
	grace := time.NewTimer(p.opts.Grace)
	defer grace.Stop()
	select {
	case <-p.stopped:
	case <-grace.C:
		p.mu.Lock()
		for r := range p.runs {
			p.abandonLocked(r)
			p.m.abandoned.Add(1)
			p.forgetLocked(r.job)
			p.retireLocked()
			p.lg.Warn("abandoning a workflow that ignored its cancellation; it stays pending in the log", r.job.logAttrs()...)
		}
		p.mu.Unlock()
	}
	p.lg.Info("worker pool closed with workflows cancelled; they stay pending in the log", "metrics", p.Metrics())
	return fmt.Errorf("pool: close cut running workflows short: %w", ctx.Err())
}
