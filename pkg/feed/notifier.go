package feed

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Notifier is an eventlog.Store whose logs wake the requests waiting on
// their sheet after every append, and the feed those requests wait in.
// It knows only of appends made through it: every writer of the store
// must use it (the single-machine server's engines do).
type Notifier struct {
	store eventlog.Store

	mu     sync.Mutex
	sheets map[string]*sheetWaiters

	waiters  atomic.Int64
	released chan struct{}
	once     sync.Once

	// Parked waiters (Park). Guarded by mu: isReleased, queue, workers.
	isReleased bool
	queue      []*parked // to poll again: their sheet had an append
	workers    int       // goroutines polling the queue
}

// sheetWaiters is what the waiters of one sheet share: a channel the
// next append closes, and the list of its parked waiters. It exists
// only while the sheet has waiters. Guarded by Notifier.mu.
type sheetWaiters struct {
	changed chan struct{}
	n       int     // waiters blocked in Wait
	parked  *parked // the first parked waiter; they link to each other
}

var _ eventlog.Store = (*Notifier)(nil)

// NewNotifier wraps store.
func NewNotifier(store eventlog.Store) *Notifier {
	return &Notifier{store: store, sheets: map[string]*sheetWaiters{}, released: make(chan struct{})}
}

// Log opens the sheet's log in the wrapped store; its appends wake the
// sheet's waiters.
func (n *Notifier) Log(sheet string) (eventlog.EventLog, error) {
	l, err := n.store.Log(sheet)
	if err != nil {
		return nil, err
	}
	return &notifyingLog{EventLog: l, n: n, sheet: sheet}, nil
}

// Wait calls poll, then again after each append to sheet, until poll is
// done or fails, ctx ends, or Release is called. It returns poll's error,
// or nil. The waiter holds no timer and allocates nothing while it
// waits.
func (n *Notifier) Wait(ctx context.Context, sheet string, poll func() (done bool, err error)) error {
	w := n.join(sheet)
	defer n.leave(sheet, w)
	return wait(ctx, poll, func() <-chan struct{} {
		n.mu.Lock()
		defer n.mu.Unlock()
		return w.changed
	}, n.released)
}

// Waiters is the number of requests waiting now, over all sheets.
func (n *Notifier) Waiters() int { return int(n.waiters.Load()) }

// Release lets every waiter go, now and from now on: a Wait returns
// after its first poll. A server calls it when it starts to shut down,
// so that waiting requests get their (empty) reply at once instead of
// holding the shutdown for up to their whole wait.
func (n *Notifier) Release() {
	n.once.Do(func() { close(n.released) })
	n.releaseParked()
}

// Notify wakes the waiters of sheet. The logs of the Notifier call it
// after every append; a process with other writers it can hear of may
// call it too.
func (n *Notifier) Notify(sheet string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w := n.sheets[sheet]; w != nil {
		close(w.changed)
		w.changed = make(chan struct{})
		n.wakeParkedLocked(w)
	}
}

func (n *Notifier) join(sheet string) *sheetWaiters {
	n.waiters.Add(1)
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.sheets[sheet]
	if w == nil {
		w = &sheetWaiters{changed: make(chan struct{})}
		n.sheets[sheet] = w
	}
	w.n++
	return w
}

func (n *Notifier) leave(sheet string, w *sheetWaiters) {
	n.mu.Lock()
	if w.n--; w.n == 0 && w.parked == nil {
		delete(n.sheets, sheet)
	}
	n.mu.Unlock()
	n.waiters.Add(-1)
}

// notifyingLog is a sheet's log that calls Notify after each append that
// may have written.
type notifyingLog struct {
	eventlog.EventLog
	n     *Notifier
	sheet string
}

func (l *notifyingLog) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	s, err := l.EventLog.AddEntry(ctx, id, e, known)
	l.appended(err)
	return s, err
}

func (l *notifyingLog) AddEntries(ctx context.Context, id eventlog.SequenceID, es []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	s, err := l.EventLog.AddEntries(ctx, id, es, known)
	l.appended(err)
	return s, err
}

// appended wakes the sheet's waiters unless the append certainly wrote
// nothing (a conflict or a refused entry). A failure of the store may
// still have written, and a waiter woken for nothing only reads the log
// again.
func (l *notifyingLog) appended(err error) {
	var ce *errs.ConflictError
	var ve *errs.ValidationError
	if err != nil && (errors.As(err, &ce) || errors.As(err, &ve)) {
		return
	}
	l.n.Notify(l.sheet)
}
