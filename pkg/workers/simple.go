package workers

import (
	"context"
	"errors"
	"sync"
)

// ErrNoHandler is returned by PostMessage when the worker has no handler.
var ErrNoHandler = errors.New("workers: the worker has no message handler")

// ErrClosed is returned by PostMessage after Close.
var ErrClosed = errors.New("workers: host is closed")

// SimpleWorker is the worker of the reference pair.
type SimpleWorker struct {
	mu      sync.Mutex
	handler Handler
}

// SetHandler implements Worker.
func (w *SimpleWorker) SetHandler(h Handler) {
	w.mu.Lock()
	w.handler = h
	w.mu.Unlock()
}

func (w *SimpleWorker) getHandler() Handler {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.handler
}

// SimpleWorkerHost is the host of the reference pair. It delivers posted
// messages one at a time, in order, on its own goroutine, never inside
// PostMessage. It does not retry: a handler error is recorded (Errors)
// and the message is dropped.
type SimpleWorkerHost struct {
	worker *SimpleWorker

	mu          sync.Mutex
	queue       []Message
	running     bool
	outstanding map[string]int
	idle        *sync.Cond
	errs        []error
	closed      bool
	ctx         context.Context
	cancel      context.CancelFunc
}

// NewSimple returns a connected reference host and worker.
func NewSimple() (*SimpleWorkerHost, *SimpleWorker) {
	w := &SimpleWorker{}
	ctx, cancel := context.WithCancel(context.Background())
	h := &SimpleWorkerHost{worker: w, outstanding: map[string]int{}, ctx: ctx, cancel: cancel}
	h.idle = sync.NewCond(&h.mu)
	return h, w
}

// PostMessage implements PostMessageWorkerHost.
func (h *SimpleWorkerHost) PostMessage(_ context.Context, m Message) error {
	if h.worker.getHandler() == nil {
		return ErrNoHandler
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.queue = append(h.queue, m)
	h.outstanding[sheetOf(m)]++
	if !h.running {
		h.running = true
		go h.deliver()
	}
	return nil
}

func (h *SimpleWorkerHost) deliver() {
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			h.running = false
			h.idle.Broadcast()
			h.mu.Unlock()
			return
		}
		m := h.queue[0]
		h.queue[0] = nil
		h.queue = h.queue[1:]
		h.mu.Unlock()

		var err error
		if handler := h.worker.getHandler(); handler == nil {
			err = ErrNoHandler
		} else {
			err = handler(h.ctx, m)
		}

		h.mu.Lock()
		if err != nil {
			h.errs = append(h.errs, err)
		}
		s := sheetOf(m)
		if h.outstanding[s]--; h.outstanding[s] <= 0 {
			delete(h.outstanding, s)
		}
		h.mu.Unlock()
	}
}

// Outstanding implements WorkerHost.
func (h *SimpleWorkerHost) Outstanding(sheet string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.outstanding[sheet] > 0
}

// Wait blocks until every posted message has been handled or ctx ends.
func (h *SimpleWorkerHost) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		h.mu.Lock()
		h.idle.Broadcast()
		h.mu.Unlock()
	})
	defer stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.running {
		if err := ctx.Err(); err != nil {
			return err
		}
		h.idle.Wait()
	}
	return nil
}

// Errors returns the handler errors recorded so far.
func (h *SimpleWorkerHost) Errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// Close refuses further messages, cancels the context handlers run with
// and waits for the delivery goroutine to stop.
func (h *SimpleWorkerHost) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	_ = h.Wait(context.Background())
}

func sheetOf(m Message) string {
	if p, ok := m.(PendingWorkflowMessage); ok {
		return p.Sheet
	}
	return ""
}
