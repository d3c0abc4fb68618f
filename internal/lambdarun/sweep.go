package lambdarun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// PendingLister lists entries of every sheet whose pending field was set
// before a time (the DynamoDB store, through its sparse pending index).
type PendingLister interface {
	PendingBefore(ctx context.Context, olderThan time.Time) ([]eventlog.PendingEntry, error)
}

// SweepResult is what one sweep did.
type SweepResult struct {
	// Found is the number of entries pending longer than the grace.
	Found int `json:"found"`
	// Ran counts workflows run to the end (or found already complete).
	Ran int `json:"ran"`
	// Failed counts workflows that failed (the next sweep tries again).
	Failed int `json:"failed"`
	// Unknown counts entries naming a workflow nobody knows.
	Unknown int `json:"unknown"`
	// Deferred counts entries left for the next sweep (over the bound, or
	// out of time).
	Deferred int `json:"deferred"`
	// Retire is what the drain of the retire queue did.
	Retire RetireResult `json:"retire"`
}

// Sweep runs the workflows of entries pending for longer than grace, at
// most maxRun of them, through the same worker as the stream path. It is
// the safety net for stream records that were lost, expired (a stream
// keeps them for 24 hours) or dead-lettered after a transient outage.
// Entries of known workflows go first, so that poisoned entries (an
// unknown workflow stays pending forever) cannot crowd them out.
func (w *Workflows) Sweep(ctx context.Context, lister PendingLister, grace time.Duration, maxRun int, now time.Time) (SweepResult, error) {
	pending, err := lister.PendingBefore(ctx, now.Add(-grace))
	if err != nil {
		return SweepResult{}, fmt.Errorf("listing pending entries: %w", err)
	}
	notePendingAge(pending, now.Add(-grace))
	res := SweepResult{Found: len(pending)}
	known := func(e eventlog.PendingEntry) int {
		if e.Workflow == eventlog.WorkflowSnapshot {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(pending, func(a, b eventlog.PendingEntry) int { return known(a) - known(b) })
	if len(pending) > maxRun {
		res.Deferred = len(pending) - maxRun
		pending = pending[:maxRun]
	}
	jobs := make([]Job, len(pending))
	for i, p := range pending {
		jobs[i] = Job{
			ID:  fmt.Sprintf("sweep:%s/%d", p.Sheet, uint64(p.SequenceID)),
			Msg: workers.PendingWorkflowMessage{Sheet: p.Sheet, Workflow: p.Workflow, SequenceID: p.SequenceID},
		}
	}
	var unknown *spreadsheet.UnknownWorkflowError
	for _, err := range w.RunAll(ctx, jobs) {
		switch {
		case err == nil:
			res.Ran++
		case errors.As(err, &unknown):
			res.Unknown++
		case errors.Is(err, ErrNoTime):
			res.Deferred++
		default:
			res.Failed++
		}
	}
	workers.WorkflowRetries.Add(uint64(res.Failed))
	return res, nil
}
