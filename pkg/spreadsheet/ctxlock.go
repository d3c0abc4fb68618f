package spreadsheet

import (
	"context"
	"sync"
)

// ctxLock is a mutex whose lock gives up when a context ends, so that a
// call stuck behind a slow storage operation cannot pile up waiters that
// ignore their deadlines. Taking a free lock is a sync.Mutex round trip
// and ignores the context; only a waiter makes a channel. Waiters are
// served in order: unlock hands the lock to the first of them.
//
// A one-slot channel does the same job, but its send and receive cost
// several times more, and the host takes its lock once per append.
type ctxLock struct {
	mu      sync.Mutex
	held    bool
	waiters []chan struct{}
}

// lock takes l, or returns ctx's error when ctx ends first.
func (l *ctxLock) lock(ctx context.Context) error {
	l.mu.Lock()
	if !l.held {
		l.held = true
		l.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	l.waiters = append(l.waiters, ready)
	l.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-ready:
		// Handed over while giving up: pass it on.
		l.unlockLocked()
	default:
		for i, w := range l.waiters {
			if w == ready {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				break
			}
		}
	}
	return context.Cause(ctx)
}

// unlock releases l, handing it to the first waiter if there is one.
func (l *ctxLock) unlock() {
	l.mu.Lock()
	l.unlockLocked()
	l.mu.Unlock()
}

func (l *ctxLock) unlockLocked() {
	if len(l.waiters) == 0 {
		l.held = false
		return
	}
	next := l.waiters[0]
	l.waiters[0] = nil
	l.waiters = l.waiters[1:]
	close(next)
}
