package lambdaharness

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo/streamrecord"
)

// RecordsInRange reads the records a dead letter names from the stream,
// as the runbook in docs/lambda.md has an operator do with the AWS CLI: a
// shard iterator AT_SEQUENCE_NUMBER the batch's start, then GetRecords
// until the end sequence number. They come back in the shape Lambda
// delivers (eventSourceARN set), ready to be sent to the workflow function
// again. Records the mapping's filter would have dropped (head items,
// entries without pending) are included: the function ignores them. A
// stream keeps records for 24 hours; after that, or past the end of an
// open shard, the range comes back short.
func RecordsInRange(ctx context.Context, streams StreamsAPI, info DDBStreamBatchInfo) ([]events.DynamoDBEventRecord, error) {
	it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(info.StreamARN), ShardId: aws.String(info.ShardID),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(info.StartSequenceNumber),
	})
	if err != nil {
		return nil, fmt.Errorf("shard iterator at %s: %w", info.StartSequenceNumber, err)
	}
	var out []events.DynamoDBEventRecord
	iter := it.ShardIterator
	// An open shard answers empty pages for ever once it is read: a few in
	// a row end the read.
	for empty := 0; iter != nil && empty < 3; {
		page, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
		if err != nil {
			return out, fmt.Errorf("reading shard %s: %w", info.ShardID, err)
		}
		if len(page.Records) == 0 {
			empty++
		}
		for _, r := range page.Records {
			rec, err := streamrecord.Record(info.StreamARN, r)
			if err != nil {
				return out, err
			}
			if seqLess(info.EndSequenceNumber, rec.Change.SequenceNumber) {
				return out, nil
			}
			out = append(out, rec)
		}
		iter = page.NextShardIterator
	}
	return out, nil
}

// seqLess compares two sequence numbers: decimal strings of up to 40
// digits, too long for an integer type.
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// Redrive reads a dead letter's records from the stream and invokes fn
// with them, as the operator's re-drive does, and returns the function's
// batch response.
func Redrive(ctx context.Context, streams StreamsAPI, fn Invoker, info DDBStreamBatchInfo) (events.DynamoDBEventResponse, int, error) {
	var resp events.DynamoDBEventResponse
	recs, err := RecordsInRange(ctx, streams, info)
	if err != nil {
		return resp, 0, err
	}
	payload, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		return resp, 0, err
	}
	res, err := fn.Invoke(ctx, payload)
	if err != nil {
		return resp, len(recs), err
	}
	if res.Failed() {
		return resp, len(recs), fmt.Errorf("the function failed: %s", res.FunctionError)
	}
	if err := json.Unmarshal(res.Body, &resp); err != nil {
		return resp, len(recs), fmt.Errorf("the function's reply %q is not a batch response: %w", truncate(string(res.Body), 200), err)
	}
	return resp, len(recs), nil
}
