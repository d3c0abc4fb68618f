package workers

import "github.com/sheetlog/sheetlog/pkg/metrics"

// The metrics every worker host counts, whatever carries its messages
// (the local pool, the Lambda functions; see docs/operations.md).
var (
	// WorkflowRetries counts workflow runs that failed and will run
	// again: a retry the pool schedules, a stream record the workflow
	// function reports as failed (Lambda delivers it again), a workflow
	// the sweeper could not finish (the next sweep runs it).
	WorkflowRetries = metrics.NewCounter("sheetlog_workflow_retries_total",
		"Workflow runs that failed and will be run again (pool retries, stream records reported failed, sweeps that failed).")
	// PendingOldestAge is the age of the oldest workflow still pending as
	// the host sees it: the oldest message the pool holds (queued,
	// running or waiting for a retry), or the oldest entry the sweeper
	// found pending past its grace period (0 when it found none).
	PendingOldestAge = metrics.NewAge("sheetlog_pending_oldest_age_seconds",
		"Age of the oldest pending workflow as the worker pool or the sweeper sees it; 0 when there is none.")
)
