package lambdarun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/internal/moto"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo/streamrecord"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

func TestMain(m *testing.M) { moto.Main(m) }

// fixture is a table and a bucket on moto, with the stores the functions
// open on them.
type fixture struct {
	env    moto.Env
	db     *dynamodb.Client
	table  string
	stores lambdarun.Stores
	cfg    lambdarun.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := moto.Get(t)
	ctx := context.Background()
	f := &fixture{env: env, db: env.DynamoDB(), table: moto.Name("lambdarun")}
	if err := dynamo.CreateTable(ctx, f.db, f.table); err != nil {
		t.Fatal(err)
	}
	bucket := moto.Name("lambdarun")
	if _, err := env.S3().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	var err error
	f.cfg, err = lambdarun.FromEnv(func(k string) string {
		return map[string]string{awsschema.EnvTable: f.table, awsschema.EnvBucket: bucket, "AWS_ENDPOINT_URL": env.URL}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.stores, err = lambdarun.AWSStoresFromConfig(env.Config, f.cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) workflows(t *testing.T, mod func(*lambdarun.Config)) *lambdarun.Workflows {
	c := f.cfg
	if mod != nil {
		mod(&c)
	}
	return lambdarun.NewWorkflows(f.stores, c, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func (f *fixture) log(t *testing.T, sheet string) eventlog.EventLog {
	t.Helper()
	l, err := f.stores.Logs.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendCells appends n cell entries to sheet from id from, with pending
// set on the ids in pending.
func (f *fixture) appendCells(t *testing.T, sheet string, from, n int, pending map[int]string) {
	t.Helper()
	l := f.log(t, sheet)
	for i := from; i < from+n; i++ {
		e := eventlog.Entry{Body: json.RawMessage(fmt.Sprintf(`{"type":"SetCellValueAndFormat","row":%d,"column":0,"value":%d}`, i, i))}
		e.Pending = pending[i]
		if _, err := l.AddEntry(context.Background(), eventlog.SequenceID(i), e, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// stream reads the whole stream of the table as Lambda would deliver it
// (unfiltered: heads, entries without pending, metadata changes).
func (f *fixture) stream(t *testing.T) events.DynamoDBEvent {
	t.Helper()
	ctx := context.Background()
	d, err := f.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(f.table)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(d.Table.LatestStreamArn)
	sc := f.env.Streams()
	desc, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []streamtypes.Record
	for _, sh := range desc.StreamDescription.Shards {
		it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn),
			ShardId: sh.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		for iter := it.ShardIterator; iter != nil; {
			out, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Records) == 0 {
				break
			}
			recs = append(recs, out.Records...)
			iter = out.NextShardIterator
		}
	}
	ev, err := streamrecord.Event(arn, recs)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := json.Marshal(ev)
	var got events.DynamoDBEvent
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// withPending keeps the records the deployed filter lets through.
func withPending(ev events.DynamoDBEvent) events.DynamoDBEvent {
	var out events.DynamoDBEvent
	for _, r := range ev.Records {
		if _, ok := r.Change.NewImage[awsschema.AttrPending]; ok {
			out.Records = append(out.Records, r)
		}
	}
	return out
}

func (f *fixture) entry(t *testing.T, sheet string, id int) eventlog.Entry {
	t.Helper()
	p, err := f.log(t, sheet).Query(context.Background(), eventlog.FromID(eventlog.SequenceID(id)), eventlog.ToID(eventlog.SequenceID(id+1)), nil)
	if err != nil || len(p.Entries) != 1 {
		t.Fatalf("reading %s/%d: %v %v", sheet, id, p, err)
	}
	return p.Entries[0]
}

func failedIDs(r events.DynamoDBEventResponse) []string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// The whole unfiltered stream goes through the handler: the pending
// entries' snapshots complete; the unknown workflow's record, and only
// it, is reported failed by its stream sequence number; everything else
// is acknowledged. Replaying the batch, in reverse order, changes nothing.
func TestHandleStream(t *testing.T) {
	f := newFixture(t)
	f.appendCells(t, "a", 0, 12, map[int]string{5: eventlog.WorkflowSnapshot, 10: eventlog.WorkflowSnapshot})
	f.appendCells(t, "b", 0, 4, map[int]string{3: "bogus"})
	ev := f.stream(t)
	var bogus events.DynamoDBEventRecord
	for _, r := range ev.Records {
		if r.Change.Keys["sheet"].String() == "b" && r.Change.NewImage["pending"].DataType() == events.DataTypeString {
			bogus = r
		}
	}
	if bogus.Change.SequenceNumber == "" || bogus.Change.SequenceNumber == bogus.EventID {
		t.Fatalf("no usable record of the bogus entry: %+v", bogus)
	}
	w := f.workflows(t, nil)
	ctx := context.Background()
	resp, err := w.HandleStream(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(resp); !slices.Equal(got, []string{bogus.Change.SequenceNumber}) {
		t.Fatalf("failures %v, want the bogus record's sequence number %s", got, bogus.Change.SequenceNumber)
	}
	for _, id := range []int{5, 10} {
		if e := f.entry(t, "a", id); e.Pending != "" || e.Snapshot != strconv.Itoa(id) {
			t.Fatalf("entry a/%d after the batch: %+v", id, e.Metadata)
		}
	}
	if e := f.entry(t, "b", 3); e.Pending != "bogus" {
		t.Fatalf("the unknown workflow's entry changed: %+v", e.Metadata)
	}

	// Replays, in any order, are no-ops.
	slices.Reverse(ev.Records)
	resp, err = w.HandleStream(ctx, ev)
	if err != nil || !slices.Equal(failedIDs(resp), []string{bogus.Change.SequenceNumber}) {
		t.Fatalf("replay: %v %v", failedIDs(resp), err)
	}
	// The completions' records (new images without pending) ignored too.
	resp, err = w.HandleStream(ctx, f.stream(t))
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("stream with completions: %v %v", failedIDs(resp), err)
	}
	// The snapshot's blobs are there and readable by a fresh engine.
	l := f.log(t, "a")
	root, _ := f.stores.Blobs.Sheet("a")
	e, err := spreadsheet.New("a", l, root, nil, spreadsheet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := e.Cell(ctx, 11, 0); err != nil || c.Value.NumberVal() != 11 {
		t.Fatalf("cell A12 via the snapshot: %+v %v", c, err)
	}
	if e.Stats().SnapshotsLoaded != 1 {
		t.Errorf("a fresh engine loaded %d snapshots, want 1", e.Stats().SnapshotsLoaded)
	}
}

// A record whose image is not an event log entry is reported failed (it
// can only be dead-lettered); an empty response is a success.
func TestHandleStreamMalformed(t *testing.T) {
	f := newFixture(t)
	w := f.workflows(t, nil)
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{
		EventName: "INSERT",
		Change: events.DynamoDBStreamRecord{SequenceNumber: "111", NewImage: map[string]events.DynamoDBAttributeValue{
			"sheet": events.NewStringAttribute("x"), "seq": events.NewNumberAttribute("1"),
			"pending": events.NewStringAttribute("snapshot"), // no body
		}},
	}, {
		EventName: "MODIFY",
		Change:    events.DynamoDBStreamRecord{SequenceNumber: "112", NewImage: map[string]events.DynamoDBAttributeValue{"sheet": events.NewStringAttribute("x")}},
	}}}
	resp, err := w.HandleStream(context.Background(), ev)
	if err != nil || !slices.Equal(failedIDs(resp), []string{"111"}) {
		t.Fatalf("failures %v %v, want [111]", failedIDs(resp), err)
	}
	resp, err = w.HandleStream(context.Background(), events.DynamoDBEvent{})
	if err != nil || resp.BatchItemFailures == nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("empty batch: %+v %v", resp, err)
	}
	if b, _ := json.Marshal(resp); string(b) != `{"batchItemFailures":[]}` {
		t.Errorf("empty response encodes as %s", b)
	}
}

// Fault injection fails the first attempts of each workflow of the
// chosen sheets, and nothing else.
func TestFaultInjection(t *testing.T) {
	f := newFixture(t)
	f.appendCells(t, "fault-1", 0, 3, map[int]string{2: eventlog.WorkflowSnapshot})
	f.appendCells(t, "plain", 0, 3, map[int]string{2: eventlog.WorkflowSnapshot})
	f.appendCells(t, "dlq-1", 0, 3, map[int]string{2: eventlog.WorkflowSnapshot})
	ev := withPending(f.stream(t))
	w := f.workflows(t, func(c *lambdarun.Config) {
		c.FaultFailFirst, c.FaultSheetPrefix = 2, "fault-"
		c.FaultRules = []lambdarun.FaultRule{{Prefix: "dlq-", FailFirst: 3}}
	})
	for attempt := 1; attempt <= 3; attempt++ {
		resp, err := w.HandleStream(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		want := 2 // fault-1 fails twice, dlq-1 three times
		switch attempt {
		case 3:
			want = 1
		}
		if len(resp.BatchItemFailures) != want {
			t.Fatalf("attempt %d: failures %v, want %d", attempt, failedIDs(resp), want)
		}
	}
	if e := f.entry(t, "fault-1", 2); e.Snapshot != "2" {
		t.Fatalf("fault-1/2 after three attempts: %+v", e.Metadata)
	}
	if e := f.entry(t, "dlq-1", 2); e.Snapshot != "" {
		t.Fatalf("dlq-1/2 after three attempts: %+v", e.Metadata)
	}
	if resp, _ := w.HandleStream(context.Background(), ev); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("attempt 4: failures %v", failedIDs(resp))
	}
}

// Too close to the deadline nothing starts: every workflow is reported
// failed (to be retried) rather than risking the invocation's timeout.
func TestDeadline(t *testing.T) {
	f := newFixture(t)
	f.appendCells(t, "d", 0, 3, map[int]string{2: eventlog.WorkflowSnapshot})
	ev := withPending(f.stream(t))
	ctx, cancel := context.WithTimeout(context.Background(), lambdarun.DeadlineMargin/2)
	defer cancel()
	resp, err := f.workflows(t, nil).HandleStream(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures %v %v, want 1", failedIDs(resp), err)
	}
	if e := f.entry(t, "d", 2); e.Pending == "" {
		t.Fatal("a workflow ran although the deadline was too close")
	}
}

// The sweeper runs what the stream never delivered: entries pending
// longer than the grace, known workflows first, at most maxRun.
func TestSweep(t *testing.T) {
	f := newFixture(t)
	f.appendCells(t, "s1", 0, 6, map[int]string{2: eventlog.WorkflowSnapshot, 5: eventlog.WorkflowSnapshot})
	f.appendCells(t, "s2", 0, 3, map[int]string{0: "bogus", 1: eventlog.WorkflowSnapshot})
	w := f.workflows(t, func(c *lambdarun.Config) { c.CacheEngines = 1 })
	ctx := context.Background()

	// Nothing is older than an hour's grace.
	res, err := w.Sweep(ctx, f.stores.Dynamo, time.Hour, 10, time.Now())
	if err != nil || res != (lambdarun.SweepResult{}) {
		t.Fatalf("sweep with an hour's grace: %+v %v", res, err)
	}
	later := time.Now().Add(time.Second)
	res, err = w.Sweep(ctx, f.stores.Dynamo, 0, 2, later)
	if err != nil || res.Found != 4 || res.Ran != 2 || res.Deferred != 2 || res.Unknown != 0 {
		t.Fatalf("bounded sweep: %+v %v", res, err)
	}
	res, err = w.Sweep(ctx, f.stores.Dynamo, 0, 10, later)
	if err != nil || res.Found != 2 || res.Ran != 1 || res.Unknown != 1 || res.Failed != 0 {
		t.Fatalf("second sweep: %+v %v", res, err)
	}
	for _, c := range []struct {
		sheet string
		id    int
	}{{"s1", 2}, {"s1", 5}, {"s2", 1}} {
		if e := f.entry(t, c.sheet, c.id); e.Pending != "" || e.Snapshot != strconv.Itoa(c.id) {
			t.Errorf("%s/%d after the sweeps: %+v", c.sheet, c.id, e.Metadata)
		}
	}
	if n := w.Cache().Len(); n > 1 {
		t.Errorf("the engine cache holds %d engines, bound 1", n)
	}
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	_, err := lambdarun.FromEnv(env(nil))
	if err == nil {
		t.Fatal("no table and bucket accepted")
	}
	c, err := lambdarun.FromEnv(env(map[string]string{awsschema.EnvTable: "t", awsschema.EnvBucket: "b",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", awsschema.EnvCORSOrigins: " https://a.example , ,*"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SweepGrace != lambdarun.DefaultSweepGrace || c.CacheBytes != 256<<20 || c.CacheEngines != lambdarun.DefaultCacheEngines ||
		!slices.Equal(c.CORSOrigins, []string{"https://a.example", "*"}) || c.S3PathStyle || c.SnapshotInterval != 0 || c.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = lambdarun.FromEnv(env(map[string]string{awsschema.EnvTable: "t", awsschema.EnvBucket: "b",
		awsschema.EnvSweepGrace: "90s", awsschema.EnvSnapshotInterval: "7", lambdarun.EnvCacheMB: "3",
		awsschema.EnvLogLevel: "DEBUG", "AWS_ENDPOINT_URL_S3": "http://x", lambdarun.EnvFaultFailFirst: "0",
		lambdarun.EnvFaultRules: "dlq-=4, x=1"}))
	if err != nil || c.SweepGrace != 90*time.Second || c.SnapshotInterval != 7 || c.CacheBytes != 3<<20 ||
		c.LogLevel != slog.LevelDebug || !c.S3PathStyle ||
		!slices.Equal(c.FaultRules, []lambdarun.FaultRule{{Prefix: "dlq-", FailFirst: 4}, {Prefix: "x", FailFirst: 1}}) {
		t.Fatalf("set values: %+v %v", c, err)
	}
	for k, v := range map[string]string{awsschema.EnvSweepGrace: "soon", awsschema.EnvSnapshotInterval: "0",
		lambdarun.EnvCacheEngines: "-1", awsschema.EnvLogLevel: "loud", lambdarun.EnvFaultFailFirst: "x",
		lambdarun.EnvFaultRules: "dlq-"} {
		if _, err := lambdarun.FromEnv(env(map[string]string{awsschema.EnvTable: "t", awsschema.EnvBucket: "b", k: v})); err == nil {
			t.Errorf("%s=%q accepted", k, v)
		}
	}
}

// A workflow whose entry was truncated away can never run: its record is
// acknowledged, not retried into the dead-letter queue.
func TestTruncatedEntry(t *testing.T) {
	f := newFixture(t)
	f.appendCells(t, "t", 0, 6, map[int]string{2: eventlog.WorkflowSnapshot})
	ev := withPending(f.stream(t))
	if err := f.log(t, "t").Truncate(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	resp, err := f.workflows(t, nil).HandleStream(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v %v, want none", failedIDs(resp), err)
	}
}
