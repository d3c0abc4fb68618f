// Package feed holds the requests of the change feed (GET log?wait=N in
// the HTTP API) until the sheet they watch may have new entries. It has
// two ways of knowing, one per deployment:
//
//   - Notifier, for a process that makes every append itself (the
//     single-machine server, whose event log file only it may open): it
//     wraps the eventlog.Store, and each append through it wakes the
//     sheet's waiters at once. A waiter in Wait costs no timer, no
//     goroutine and no allocation of its own while it waits, and no CPU:
//     it blocks on a channel that the next append closes (and replaces),
//     so one append wakes any number of waiters with one close. A waiter
//     that has no goroutine (its request detached from its connection)
//     is parked instead (Park): an entry in its sheet's list and a timer.
//   - Poller, for processes that cannot hear other writers' appends (the
//     API Lambda: every invocation may run in another execution
//     environment): it polls the log with capped exponential backoff.
//
// Both implement the one method pkg/api's Config.Feed needs, Wait. The
// caller's poll function reads what the waiter waits for (the log's page
// from the id it asked for) and reports whether it has it (done); it is
// called once at the start and again each time the log may have changed.
package feed

import (
	"context"
)

// wait is the loop both feeds share: poll, and when that does not finish
// the wait, block until next is ready (the log may have changed), ctx
// ends or stop is closed. It returns poll's error, or nil when the wait
// ended without one.
func wait[T any](ctx context.Context, poll func() (done bool, err error), next func() <-chan T, stop <-chan struct{}) error {
	feedWaiters.Add(1)
	defer feedWaiters.Add(-1)
	for {
		ch := next()
		if done, err := poll(); done || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		}
	}
}
