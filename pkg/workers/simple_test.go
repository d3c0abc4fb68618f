package workers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

func msg(sheet string, id uint64) PendingWorkflowMessage {
	return PendingWorkflowMessage{Sheet: sheet, Workflow: "snapshot", SequenceID: eventlog.SequenceID(id)}
}

func TestPostWithoutHandlerIsAnError(t *testing.T) {
	h, _ := NewSimple()
	defer h.Close()
	if err := h.PostMessage(context.Background(), msg("a", 1)); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("got %v, want ErrNoHandler", err)
	}
}

func TestDeliveryIsAsynchronousAndOrdered(t *testing.T) {
	h, w := NewSimple()
	defer h.Close()
	release := make(chan struct{})
	var mu sync.Mutex
	var got []uint64
	w.SetHandler(func(ctx context.Context, m Message) error {
		<-release // a synchronous delivery would deadlock PostMessage
		mu.Lock()
		got = append(got, uint64(m.(PendingWorkflowMessage).SequenceID))
		mu.Unlock()
		return nil
	})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		for i := range 5 {
			if err := h.PostMessage(ctx, msg("a", uint64(i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("PostMessage ran the handler itself")
	}
	if !h.Outstanding("a") || h.Outstanding("b") {
		t.Fatal("Outstanding is wrong while messages wait")
	}
	close(release)
	if err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Outstanding("a") {
		t.Fatal("still outstanding after Wait")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 || got[0] != 0 || got[4] != 4 {
		t.Fatalf("delivered %v", got)
	}
}

func TestHandlerErrorsAreRecordedNotRetried(t *testing.T) {
	h, w := NewSimple()
	defer h.Close()
	var calls int
	w.SetHandler(func(context.Context, Message) error { calls++; return errors.New("boom") })
	if err := h.PostMessage(context.Background(), msg("a", 1)); err != nil {
		t.Fatal(err)
	}
	if err := h.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || len(h.Errors()) != 1 {
		t.Fatalf("calls %d errors %v", calls, h.Errors())
	}
}

func TestWaitHonoursContextAndCloseRefuses(t *testing.T) {
	h, w := NewSimple()
	block := make(chan struct{})
	w.SetHandler(func(ctx context.Context, m Message) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	if err := h.PostMessage(context.Background(), msg("a", 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v", err)
	}
	h.Close() // cancels the handler's context and waits
	if err := h.PostMessage(context.Background(), msg("a", 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("post after close: %v", err)
	}
	if _, ok := Message(msg("a", 1)).(PendingWorkflowMessage); !ok || msg("a", 1).MessageType() != "PendingWorkflow" {
		t.Fatal("message union")
	}
	var _ PostMessageWorkerHost = h
	var _ Worker = w
	var _ WorkerHost = ImplicitHost{}
	if (ImplicitHost{}).Outstanding("a") {
		t.Fatal("an implicit host cannot know")
	}
}
