package lambdarun

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// HandleStream is the workflow Lambda's handler: a batch of DynamoDB
// stream records from the event source mapping.
//
// Every record whose new image has pending becomes a
// PendingWorkflowMessage{sheet, workflow, sequence id} for the worker;
// the engine then reads the log by key range, so the order and the
// duplicates of the stream do not matter. Records without pending (the
// mapping's filter should never deliver one) and images of a log's head
// item are acknowledged and ignored.
//
// A failed record is reported by its stream sequence number (the item
// identifier Lambda expects for streams; the event id would make Lambda
// retry the whole batch): Lambda checkpoints at the lowest failure and
// re-delivers from there, and records already done are then no-ops. A
// record that cannot be decoded, or names an unknown workflow, is also
// reported as failed, so that after the mapping's finite retries it lands
// in the dead-letter queue. The function itself never returns an error
// and never retries.
func (w *Workflows) HandleStream(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	start := time.Now()
	lg := w.log
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		lg = lg.With("requestId", lc.AwsRequestID)
	}
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	fail := func(seq string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
	}
	var jobs []Job
	ignored := 0
	for _, r := range ev.Records {
		seq := r.Change.SequenceNumber
		if _, ok := r.Change.NewImage[awsschema.AttrPending]; !ok {
			ignored++
			lg.Debug("stream record without pending ignored", "streamSeq", seq, "event", r.EventName)
			continue
		}
		se, err := dynamo.EntryFromImage(r.Change.NewImage)
		switch {
		case errors.Is(err, dynamo.ErrNotEntry):
			ignored++
			continue
		case err != nil:
			lg.Error("stream record is not an entry of the event log; reported as failed", "streamSeq", seq, "err", err)
			fail(seq)
			continue
		case se.Entry.Pending == "":
			ignored++
			continue
		}
		jobs = append(jobs, Job{ID: seq, Msg: workers.PendingWorkflowMessage{
			Sheet: se.Sheet, Workflow: se.Entry.Pending, SequenceID: se.SequenceID,
		}})
	}
	for i, err := range w.RunAll(ctx, jobs) {
		if err != nil {
			fail(jobs[i].ID)
		}
	}
	workers.WorkflowRetries.Add(uint64(len(resp.BatchItemFailures)))
	lg.Info("stream batch handled", "records", len(ev.Records), "workflows", len(jobs),
		"ignored", ignored, "failed", len(resp.BatchItemFailures), "ms", time.Since(start).Milliseconds())
	return resp, nil
}
