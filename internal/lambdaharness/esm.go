package lambdaharness

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo/streamrecord"
)

// StreamsAPI is the part of the DynamoDB Streams client the mapping uses.
type StreamsAPI interface {
	DescribeStream(context.Context, *dynamodbstreams.DescribeStreamInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(context.Context, *dynamodbstreams.GetShardIteratorInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(context.Context, *dynamodbstreams.GetRecordsInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// ESMOptions configure a local event source mapping. Zero values take the
// defaults of the deployed stack where it has one.
type ESMOptions struct {
	Streams   StreamsAPI
	StreamARN string
	// FilterPattern is the mapping's filter (awsschema.StreamFilterPattern).
	FilterPattern string
	// BatchSize is the most records per invocation (default 10).
	BatchSize int
	// MaxRetries is how many times a failing record is retried before it
	// is dead-lettered (default 5). Bisecting does not count.
	MaxRetries int
	// Bisect splits a batch in two when the function fails as a whole.
	Bisect bool
	// PollInterval is the pause between GetRecords calls that found
	// nothing (default 250 ms: Lambda polls about four times a second).
	PollInterval time.Duration
	// RetryBackoff is the first retry's delay, doubled per attempt up to
	// 2 s (default 100 ms).
	RetryBackoff time.Duration
	// Fn is the function the records go to; FunctionARN names it in dead
	// letters.
	Fn          Invoker
	FunctionARN string
	// DLQFile, when set, receives one JSON line per dead letter.
	DLQFile string
	Log     *slog.Logger
}

// ESM is a local event source mapping from a DynamoDB stream to a
// function, doing what Lambda's does: it reads every shard from the trim
// horizon (children after their parents), converts records to the shape
// Lambda delivers, keeps those that match the filter, invokes the function
// with batches, one batch per shard at a time, and honours the reply:
//
//   - batch item failures: the records before the lowest failed sequence
//     number are done, the batch is retried from it; an item identifier
//     that is not the sequence number of a record in the batch fails the
//     whole batch (as Lambda treats it);
//   - a function error (handler error, crash, timeout): the batch is
//     split in two when Bisect is on, else retried;
//   - after MaxRetries retries of the same record the rest of its batch
//     is given up on: its metadata (shard, sequence range, reason) goes to
//     the dead-letter queue (kept in memory and optionally in a file), as
//     Lambda sends it to an on-failure destination, and the shard moves
//     on.
//
// Tests can make it drop the records of a sheet (Drop), as if the stream
// had lost them.
type ESM struct {
	o      ESMOptions
	filter *Filter
	log    *slog.Logger

	mu    sync.Mutex
	drop  map[string]bool
	stats ESMStats
	dlq   []DeadLetter
}

// ESMStats counts what the mapping did.
type ESMStats struct {
	RecordsRead    int `json:"recordsRead"`
	FilteredOut    int `json:"filteredOut"`
	Dropped        int `json:"dropped"`
	Invocations    int `json:"invocations"`
	FunctionErrors int `json:"functionErrors"`
	ItemFailures   int `json:"itemFailures"`
	Retries        int `json:"retries"`
	Bisects        int `json:"bisects"`
	DeadLettered   int `json:"deadLettered"`
	// Sheets counts per sheet.
	Sheets map[string]*SheetStats `json:"sheets"`
}

// SheetStats counts one sheet's records that passed the filter.
type SheetStats struct {
	// Matched records passed the filter; Delivered counts deliveries
	// (retries included); Dropped were dropped on request.
	Matched      int `json:"matched"`
	Delivered    int `json:"delivered"`
	ItemFailures int `json:"itemFailures"`
	Dropped      int `json:"dropped"`
	DeadLettered int `json:"deadLettered"`
}

// DeadLetter is what Lambda sends an event source mapping's on-failure
// destination (SQS, SNS) when it gives up on a batch of a DynamoDB stream:
// an invocation record holding metadata only, the shard and the range of
// sequence numbers, never the records themselves
// (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
// has an example). Whoever handles it reads the records from the stream
// while the stream still has them (24 hours): see RecordsInRange and the
// runbook in docs/lambda.md.
type DeadLetter struct {
	RequestContext struct {
		RequestID   string `json:"requestId"`
		FunctionARN string `json:"functionArn"`
		// Condition is RetryAttemptsExhausted (the harness does not
		// implement RecordAgeExceeded).
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		// FunctionError is "Unhandled" when the last attempt was a
		// function error; absent when the function answered with batch
		// item failures.
		FunctionError string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version            string             `json:"version"`
	Timestamp          string             `json:"timestamp"`
	DDBStreamBatchInfo DDBStreamBatchInfo `json:"DDBStreamBatchInfo"`
}

// DDBStreamBatchInfo locates a dead-lettered batch in its stream.
type DDBStreamBatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// NewESM compiles the filter and returns a mapping; Run starts it.
func NewESM(o ESMOptions) (*ESM, error) {
	if o.Streams == nil || o.StreamARN == "" || o.Fn == nil {
		return nil, errors.New("esm: Streams, StreamARN and Fn are required")
	}
	f, err := CompileFilter(o.FilterPattern)
	if err != nil {
		return nil, err
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 10
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 5
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 100 * time.Millisecond
	}
	lg := o.Log
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &ESM{o: o, filter: f, log: lg.With("component", "esm"), drop: map[string]bool{},
		stats: ESMStats{Sheets: map[string]*SheetStats{}}}, nil
}

// Drop makes the mapping drop every later record of sheet that passes the
// filter, as if the stream had lost it.
func (m *ESM) Drop(sheet string) {
	m.mu.Lock()
	m.drop[sheet] = true
	m.mu.Unlock()
}

// Stats returns a copy of the counters.
func (m *ESM) Stats() ESMStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Sheets = map[string]*SheetStats{}
	for k, v := range m.stats.Sheets {
		c := *v
		s.Sheets[k] = &c
	}
	return s
}

// DeadLetters returns the dead-letter queue so far.
func (m *ESM) DeadLetters() []DeadLetter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]DeadLetter(nil), m.dlq...)
}

func (m *ESM) sheet(name string) *SheetStats {
	s := m.stats.Sheets[name]
	if s == nil {
		s = &SheetStats{}
		m.stats.Sheets[name] = s
	}
	return s
}

// Run polls until ctx ends. Errors of the stream API are logged and
// retried; Run returns only ctx's error.
func (m *ESM) Run(ctx context.Context) error {
	shards := map[string]chan struct{}{} // shard id -> closed when drained
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		desc, err := m.describe(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("describing the stream", "err", err)
		}
		for _, sh := range desc {
			id := aws.ToString(sh.ShardId)
			if _, ok := shards[id]; ok {
				continue
			}
			done := make(chan struct{})
			shards[id] = done
			parent := shards[aws.ToString(sh.ParentShardId)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(done)
				if parent != nil {
					select {
					case <-parent:
					case <-ctx.Done():
						return
					}
				}
				m.runShard(ctx, id)
			}()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func (m *ESM) describe(ctx context.Context) ([]types.Shard, error) {
	var out []types.Shard
	var start *string
	for {
		d, err := m.o.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{
			StreamArn: aws.String(m.o.StreamARN), ExclusiveStartShardId: start,
		})
		if err != nil {
			return out, err
		}
		out = append(out, d.StreamDescription.Shards...)
		start = d.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return out, nil
		}
	}
}

type queued struct {
	rec   events.DynamoDBEventRecord
	sheet string
	shard string
}

func (m *ESM) runShard(ctx context.Context, shard string) {
	lg := m.log.With("shard", shard)
	var (
		iter     *string
		lastRead string
		queue    []queued
		limit    = m.o.BatchSize
		attempts int
		headSeq  string
	)
	getIterator := func() bool {
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(m.o.StreamARN), ShardId: aws.String(shard),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
		if lastRead != "" {
			in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
			in.SequenceNumber = aws.String(lastRead)
		}
		out, err := m.o.Streams.GetShardIterator(ctx, in)
		if err != nil {
			if ctx.Err() == nil {
				lg.Warn("getting a shard iterator", "err", err)
			}
			return false
		}
		iter = out.ShardIterator
		return true
	}
	for !getIterator() {
		if !sleep(ctx, m.o.PollInterval) {
			return
		}
	}
	closed := false
	for ctx.Err() == nil {
		if !closed && len(queue) < m.o.BatchSize {
			out, err := m.o.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return
				}
				var expired *types.ExpiredIteratorException
				if errors.As(err, &expired) {
					getIterator()
				} else {
					lg.Warn("reading the stream", "err", err)
				}
				sleep(ctx, m.o.PollInterval)
				continue
			default:
				for _, r := range out.Records {
					if r.Dynamodb != nil && r.Dynamodb.SequenceNumber != nil {
						lastRead = *r.Dynamodb.SequenceNumber
					}
					if q, ok := m.admit(lg, r); ok {
						q.shard = shard
						queue = append(queue, q)
					}
				}
				iter = out.NextShardIterator
				if iter == nil {
					closed = true
				}
				if len(out.Records) == 0 && len(queue) == 0 {
					if closed {
						return
					}
					sleep(ctx, m.o.PollInterval)
					continue
				}
			}
		}
		if len(queue) == 0 {
			if closed {
				return
			}
			continue
		}
		if queue[0].rec.Change.SequenceNumber != headSeq {
			headSeq, attempts = queue[0].rec.Change.SequenceNumber, 0
		}
		n := min(limit, len(queue))
		done, retry := m.deliver(ctx, lg, queue[:n], &attempts)
		queue = queue[done:]
		switch {
		case retry == retryBisect:
			limit = max(n/2, 1)
		case retry == retryBackoff:
			limit = m.o.BatchSize
			// The attempts belong to the record that failed, now at the
			// head.
			headSeq = queue[0].rec.Change.SequenceNumber
			d := m.o.RetryBackoff << min(attempts-1, 5)
			sleep(ctx, min(d, 2*time.Second))
		default:
			limit = m.o.BatchSize
		}
	}
}

// admit converts a stream record and applies the filter and drop rules.
func (m *ESM) admit(lg *slog.Logger, r types.Record) (queued, bool) {
	rec, err := streamrecord.Record(m.o.StreamARN, r)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.RecordsRead++
	if err != nil {
		lg.Error("cannot convert a stream record; skipped", "err", err)
		return queued{}, false
	}
	wire, err := json.Marshal(rec)
	if err != nil {
		lg.Error("cannot encode a stream record; skipped", "err", err)
		return queued{}, false
	}
	ok, err := m.filter.Match(wire)
	if err != nil || !ok {
		m.stats.FilteredOut++
		return queued{}, false
	}
	// What Lambda hands the function is the JSON form: decode it back so
	// the batch holds exactly that.
	var delivered events.DynamoDBEventRecord
	if err := json.Unmarshal(wire, &delivered); err != nil {
		lg.Error("cannot decode a stream record; skipped", "err", err)
		return queued{}, false
	}
	sheet := ""
	if k, ok := rec.Change.Keys[awsschema.AttrSheet]; ok && k.DataType() == events.DataTypeString {
		sheet = k.String()
	}
	st := m.sheet(sheet)
	st.Matched++
	if m.drop[sheet] {
		m.stats.Dropped++
		st.Dropped++
		lg.Info("dropped a stream record on request", "sheet", sheet, "streamSeq", rec.Change.SequenceNumber)
		return queued{}, false
	}
	return queued{rec: delivered, sheet: sheet}, true
}

type retryKind int

const (
	retryNone retryKind = iota
	retryBackoff
	retryBisect
)

// deliver invokes the function with batch and returns how many records at
// its head are finished (done or dead-lettered) and how to go on.
func (m *ESM) deliver(ctx context.Context, lg *slog.Logger, batch []queued, attempts *int) (int, retryKind) {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, len(batch))}
	for i, q := range batch {
		ev.Records[i] = q.rec
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		lg.Error("cannot encode a batch", "err", err)
		return 0, retryBackoff
	}
	res, err := m.o.Fn.Invoke(ctx, payload)
	if ctx.Err() != nil {
		return 0, retryNone
	}
	m.mu.Lock()
	m.stats.Invocations++
	for _, q := range batch {
		m.sheet(q.sheet).Delivered++
	}
	m.mu.Unlock()

	failedAt := -1 // index of the lowest failed record; -1: none
	reason := ""
	functionError := false
	switch {
	case err != nil || res.Failed():
		m.mu.Lock()
		m.stats.FunctionErrors++
		m.mu.Unlock()
		reason = res.FunctionError
		if err != nil {
			reason = err.Error()
		}
		lg.Warn("the function failed on a batch", "records", len(batch), "reason", truncate(reason, 300))
		if m.o.Bisect && len(batch) > 1 {
			m.mu.Lock()
			m.stats.Bisects++
			m.mu.Unlock()
			return 0, retryBisect
		}
		failedAt = 0
		functionError = true
	default:
		var resp events.DynamoDBEventResponse
		if len(res.Body) > 0 && string(res.Body) != "null" {
			if err := json.Unmarshal(res.Body, &resp); err != nil {
				lg.Warn("the function's reply is not a batch response; the batch failed", "body", truncate(string(res.Body), 300))
				failedAt = 0
				reason = "malformed batch response"
			}
		}
		for _, f := range resp.BatchItemFailures {
			idx := -1
			for i, q := range batch {
				if f.ItemIdentifier != "" && q.rec.Change.SequenceNumber == f.ItemIdentifier {
					idx = i
					break
				}
			}
			m.mu.Lock()
			m.stats.ItemFailures++
			if idx >= 0 {
				m.sheet(batch[idx].sheet).ItemFailures++
			}
			m.mu.Unlock()
			if idx < 0 {
				lg.Warn("an item failure names no record of the batch; the whole batch failed", "itemIdentifier", f.ItemIdentifier)
				idx = 0
			}
			if failedAt < 0 || idx < failedAt {
				failedAt = idx
			}
			reason = "reported as a batch item failure"
		}
	}
	if failedAt < 0 {
		return len(batch), retryNone
	}
	*attempts++
	if *attempts <= m.o.MaxRetries {
		m.mu.Lock()
		m.stats.Retries++
		m.mu.Unlock()
		return failedAt, retryBackoff
	}
	rest := batch[failedAt:]
	d := DeadLetter{Version: "1.0", Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
	d.RequestContext.RequestID = newUUID()
	d.RequestContext.FunctionARN = m.o.FunctionARN
	d.RequestContext.Condition = "RetryAttemptsExhausted"
	d.RequestContext.ApproximateInvokeCount = *attempts
	d.ResponseContext.StatusCode = http.StatusOK
	d.ResponseContext.ExecutedVersion = "$LATEST"
	if functionError {
		d.ResponseContext.FunctionError = "Unhandled"
	}
	arrival := func(q queued) string { return q.rec.Change.ApproximateCreationDateTime.UTC().Format(time.RFC3339) }
	d.DDBStreamBatchInfo = DDBStreamBatchInfo{
		ShardID:                         rest[0].shard,
		StartSequenceNumber:             rest[0].rec.Change.SequenceNumber,
		EndSequenceNumber:               rest[len(rest)-1].rec.Change.SequenceNumber,
		ApproximateArrivalOfFirstRecord: arrival(rest[0]),
		ApproximateArrivalOfLastRecord:  arrival(rest[len(rest)-1]),
		BatchSize:                       len(rest),
		StreamARN:                       m.o.StreamARN,
	}
	m.deadLetter(lg, d, rest, reason)
	return len(batch), retryNone
}

func (m *ESM) deadLetter(lg *slog.Logger, d DeadLetter, batch []queued, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dlq = append(m.dlq, d)
	for _, q := range batch {
		m.stats.DeadLettered++
		m.sheet(q.sheet).DeadLettered++
	}
	lg.Error("batch given up on: its range goes to the dead-letter queue", "records", len(batch),
		"startSequenceNumber", d.DDBStreamBatchInfo.StartSequenceNumber, "endSequenceNumber", d.DDBStreamBatchInfo.EndSequenceNumber,
		"attempts", d.RequestContext.ApproximateInvokeCount, "reason", truncate(reason, 300))
	if m.o.DLQFile == "" {
		return
	}
	f, err := os.OpenFile(m.o.DLQFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		lg.Error("opening the dead-letter file", "err", err)
		return
	}
	defer f.Close()
	if b, err := json.Marshal(d); err == nil {
		fmt.Fprintf(f, "%s\n", b)
	}
}

// newUUID is a random (version 4) UUID, as Lambda's request ids are.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
