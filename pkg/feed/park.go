package feed

import (
	"runtime"
	"time"
)

// Park is Wait for a request that has given up its goroutine while it
// waits (a connection detached from its server, internal/detach): it
// calls poll, and again after each append to sheet, until poll is done
// or fails, the deadline passes, or Release is called; then it calls
// done once, with poll's error or nil. A parked waiter is a few words in
// its sheet's list and one timer: no goroutine, no channel, no context.
//
// The first poll runs on the caller's goroutine, and so does done when
// that poll finishes the wait. Later polls run on a few goroutines shared
// by every parked waiter; done then runs on a goroutine of its own, so
// that a slow reply holds up no other waiter. Polls of one waiter never
// overlap, and done is called after its last poll has returned.
func (n *Notifier) Park(deadline time.Time, sheet string, poll func() (done bool, err error), done func(error)) {
	w := &parked{sheet: sheet, poll: poll, done: done, polling: true}
	n.waiters.Add(1)
	feedWaiters.Add(1)
	n.mu.Lock()
	s := n.sheets[sheet]
	if s == nil {
		s = &sheetWaiters{changed: make(chan struct{})}
		n.sheets[sheet] = s
	}
	// Listed before the first poll: an append from now on polls again.
	w.link(s)
	n.mu.Unlock()
	w.timer = time.AfterFunc(time.Until(deadline), func() { n.expire(w) })
	n.run(w, false)
}

// parked is a waiter of Park. Its fields but the first three are guarded
// by Notifier.mu.
type parked struct {
	sheet string
	poll  func() (bool, error)
	done  func(error)

	timer      *time.Timer // ends the wait at its deadline
	s          *sheetWaiters
	prev, next *parked
	// polling: a poll of the waiter is running or queued; again: an
	// append came meanwhile, poll once more; expired: the deadline passed or
	// the feed was released meanwhile, finish after the poll; finished:
	// done was called or is about to be.
	polling, again, expired, finished bool
}

func (w *parked) link(s *sheetWaiters) {
	w.s = s
	w.next = s.parked
	if s.parked != nil {
		s.parked.prev = w
	}
	s.parked = w
}

func (w *parked) unlink() {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		w.s.parked = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
}

// run polls w (w.polling is set) until the poll finishes the wait or no
// append came during it.
func (n *Notifier) run(w *parked, async bool) {
	for {
		ok, err := w.poll()
		n.mu.Lock()
		if ok || err != nil || w.expired || n.isReleased {
			n.finishLocked(w)
			n.mu.Unlock()
			n.finished(w, err, async)
			return
		}
		if !w.again {
			w.polling = false
			n.mu.Unlock()
			return
		}
		w.again = false
		n.mu.Unlock()
	}
}

// finishLocked takes w out of its sheet's list.
func (n *Notifier) finishLocked(w *parked) {
	w.finished = true
	w.unlink()
	if s := w.s; s.parked == nil && s.n == 0 && n.sheets[w.sheet] == s {
		delete(n.sheets, w.sheet)
	}
}

func (n *Notifier) finished(w *parked, err error, async bool) {
	w.timer.Stop()
	n.waiters.Add(-1)
	feedWaiters.Add(-1)
	if async {
		go w.done(err)
		return
	}
	w.done(err)
}

// expire ends w's wait at its deadline.
func (n *Notifier) expire(w *parked) {
	n.mu.Lock()
	if w.finished {
		n.mu.Unlock()
		return
	}
	if w.polling {
		w.expired = true
		n.mu.Unlock()
		return
	}
	n.finishLocked(w)
	n.mu.Unlock()
	n.finished(w, nil, true)
}

// wakeParkedLocked queues a poll of each parked waiter of s.
func (n *Notifier) wakeParkedLocked(s *sheetWaiters) {
	for w := s.parked; w != nil; w = w.next {
		if w.polling {
			w.again = true
			continue
		}
		w.polling = true
		n.queue = append(n.queue, w)
	}
	n.startWorkersLocked()
}

// maxPollers bounds the goroutines polling woken waiters: the polls read
// the store, and more of them than cores would only queue there.
var maxPollers = 2 * runtime.GOMAXPROCS(0)

func (n *Notifier) startWorkersLocked() {
	for n.workers < maxPollers && n.workers < len(n.queue) {
		n.workers++
		go n.poller()
	}
}

func (n *Notifier) poller() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.workers--
			n.queue = nil // let a long queue's array go
			n.mu.Unlock()
			return
		}
		w := n.queue[0]
		n.queue[0] = nil
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.run(w, true)
	}
}

// releaseParked finishes every parked waiter, after the poll running
// for it if there is one.
func (n *Notifier) releaseParked() {
	var now []*parked
	n.mu.Lock()
	n.isReleased = true
	for _, s := range n.sheets {
		for w := s.parked; w != nil; w = w.next {
			if w.polling {
				w.expired = true
			} else {
				now = append(now, w)
			}
		}
	}
	for _, w := range now {
		n.finishLocked(w)
	}
	n.mu.Unlock()
	for _, w := range now {
		n.finished(w, nil, true)
	}
}
