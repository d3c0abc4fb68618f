package pool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/workers"
)

// TestMetricsRetriesAndOldestAge: every failed run that is retried counts
// in sheetlog_workflow_retries_total, and the oldest pending age follows
// the oldest message the pool holds, back to 0 once it holds none.
func TestMetricsRetriesAndOldestAge(t *testing.T) {
	opts, _ := fastOptions(t)
	retries0 := workers.WorkflowRetries.Value()
	release := make(chan struct{})
	var calls counter
	p := start(t, opts, func(ctx context.Context, m workers.Message) error {
		pm := m.(workers.PendingWorkflowMessage)
		n := calls.inc(m)
		switch {
		case pm.Sheet == "flaky" && n <= 3:
			return errors.New("transient")
		case pm.Sheet == "slow":
			<-release
		}
		return nil
	})
	if age := workers.PendingOldestAge.Seconds(time.Now()); age != 0 {
		t.Fatalf("age %v with nothing pending", age)
	}
	if err := p.PostMessage(context.Background(), msg("slow", 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.PostMessage(context.Background(), msg("flaky", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "flaky completes", func() bool { return calls.get(msg("flaky", 1)) == 4 })
	time.Sleep(20 * time.Millisecond)
	if age := workers.PendingOldestAge.Seconds(time.Now()); age < 0.02 {
		t.Fatalf("oldest pending age %v while a workflow has run for 20 ms", age)
	}
	close(release)
	eventually(t, "nothing pending", func() bool { return workers.PendingOldestAge.Seconds(time.Now()) == 0 })
	if d := workers.WorkflowRetries.Value() - retries0; d != 3 {
		t.Fatalf("retries grew by %d, want 3", d)
	}
}
