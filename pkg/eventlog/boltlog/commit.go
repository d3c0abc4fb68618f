package boltlog

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

// applyFunc performs one write inside the batch's transaction. It returns
// the request's contract outcome (nil, or a ConflictError, RangeError...)
// which it must decide BEFORE changing anything, so that the transaction
// can go on with the next request; and a fatal error when bbolt failed
// midway, which aborts the whole transaction. It may run more than once
// (after an abort the batch is re-run request by request), so it sets
// every result it reports from scratch on each run.
type applyFunc func(tx *bolt.Tx) (outcome, fatal error)

// Request states: the committer and a cancelled caller race to move a
// request out of queued; whoever wins decides what the caller is told.
const (
	stateQueued int32 = iota
	stateClaimed
	stateWithdrawn
)

type request struct {
	ctx   context.Context
	size  int
	apply applyFunc
	state atomic.Int32
	done  chan error // buffered: the committer never blocks on a caller
}

// committer is the group commit queue: one goroutine turns every request
// waiting into one read-write transaction and one fsync.
type committer struct {
	db       *bolt.DB
	log      *slog.Logger
	maxOps   int
	maxBytes int
	// broken is set by the first failed commit: from then on bbolt's
	// memory may not match the file, so every call is refused.
	broken atomic.Pointer[errs.StorageError]

	mu     sync.Mutex
	queue  []*request
	closed bool

	wake    chan struct{} // capacity 1: "the queue may be non-empty"
	stopped chan struct{}

	// Counters for benchmarks and tests: requests claimed, transactions.
	claimed, batches atomic.Int64
	// onCommit, when set (by benchmarks, before any write), is told how
	// long each batch's transaction took, fsync included.
	onCommit func(ops int, d time.Duration)
}

func newCommitter(db *bolt.DB, log *slog.Logger, maxOps, maxBytes int) *committer {
	c := &committer{
		db: db, log: log, maxOps: maxOps, maxBytes: maxBytes,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}),
	}
	go c.run()
	return c
}

var errClosed = errors.New("event log store is closed")

// submit queues apply and waits for its outcome. See the package doc,
// "Cancellation", for what a cancelled caller is told.
func (c *committer) submit(ctx context.Context, size int, apply applyFunc) error {
	r := &request{ctx: ctx, size: size, apply: apply, done: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errs.Storage(errClosed, "event log write refused")
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateWithdrawn) {
			return abandoned(ctx.Err())
		}
		// The committer has it: the commit under way decides.
		return <-r.done
	}
}

// close stops accepting requests, lets the committer finish every request
// already queued, and waits for it to exit.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.stopped
}

func (c *committer) run() {
	defer close(c.stopped)
	for range c.wake {
		for {
			batch, closed := c.take()
			if len(batch) > 0 {
				c.commit(batch)
				continue
			}
			if closed {
				return
			}
			break
		}
	}
}

// take removes the next batch from the queue and claims its requests. A
// request whose caller has given up is dropped; one whose context is done
// but whose caller has not noticed yet is withdrawn here, so that a
// cancelled write is never applied once the committer can tell.
func (c *committer) take() ([]*request, bool) {
	c.mu.Lock()
	n, size := 0, 0
	for n < len(c.queue) && n < c.maxOps {
		if n > 0 && size+c.queue[n].size > c.maxBytes {
			break
		}
		size += c.queue[n].size
		n++
	}
	taken := c.queue[:n:n]
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil // let the backing array go
	}
	closed := c.closed
	c.mu.Unlock()

	batch := taken[:0:0]
	for _, r := range taken {
		if err := r.ctx.Err(); err != nil {
			if r.state.CompareAndSwap(stateQueued, stateWithdrawn) {
				r.done <- abandoned(err)
			}
			continue
		}
		if r.state.CompareAndSwap(stateQueued, stateClaimed) {
			batch = append(batch, r)
		}
	}
	if len(batch) > 0 {
		c.claimed.Add(int64(len(batch)))
		c.batches.Add(1)
	}
	return batch, closed
}

// fatalError marks an error returned by an applyFunc as fatal to the
// transaction, to tell it apart from a commit failure.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }

func (c *committer) commit(batch []*request) {
	if b := c.broken.Load(); b != nil {
		for _, r := range batch {
			r.done <- b
		}
		return
	}
	outcomes := make([]error, len(batch))
	began := time.Now()
	err := c.db.Update(func(tx *bolt.Tx) error {
		for i, r := range batch {
			outcome, fatal := r.apply(tx)
			if fatal != nil {
				return fatalError{fatal}
			}
			outcomes[i] = outcome
		}
		return nil
	})
	if c.onCommit != nil {
		c.onCommit(len(batch), time.Since(began))
	}
	var fe fatalError
	switch {
	case err == nil:
		for i, r := range batch {
			r.done <- outcomes[i]
		}
	case errors.As(err, &fe) && len(batch) > 1:
		// Nothing was written. Run each request alone so that only the
		// one bbolt refuses fails.
		for _, r := range batch {
			c.commit([]*request{r})
		}
	case errors.As(err, &fe):
		c.log.Error("event log write refused by bbolt", "err", fe.err)
		batch[0].done <- errs.Storage(fe.err, "event log write failed")
	default:
		// The commit itself failed: the outcome of the batch is unknown.
		serr := errs.Storage(err, "event log commit failed; the outcome of this write is unknown")
		c.log.Error("event log commit failed; every further call is refused until the store is reopened", "err", err, "writes", len(batch))
		c.broken.CompareAndSwap(nil, errs.Storage(err, "an earlier event log commit failed; reopen the store"))
		for _, r := range batch {
			r.done <- serr
		}
	}
}
