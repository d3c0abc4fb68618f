package lambdaharness

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sheetlog/sheetlog/internal/moto"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

func TestMain(m *testing.M) { moto.Main(m) }

// streamFixture is a fresh table with its stream on moto.
type streamFixture struct {
	env   moto.Env
	store *dynamo.Store
	arn   string
}

func newStreamFixture(t *testing.T) *streamFixture {
	t.Helper()
	env := moto.Get(t)
	ctx := context.Background()
	db := env.DynamoDB()
	table := moto.Name("esm")
	if err := dynamo.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	return &streamFixture{env: env, store: dynamo.New(db, table, dynamo.Options{}), arn: aws.ToString(d.Table.LatestStreamArn)}
}

// write appends n entries to sheet, those in pending with pending set.
func (f *streamFixture) write(t *testing.T, sheet string, n int, pending ...int) {
	t.Helper()
	l, err := f.store.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := eventlog.Entry{Body: json.RawMessage(`{"type":"SetCellValueAndFormat","row":0,"column":0}`)}
		if slices.Contains(pending, i) {
			e.Pending = eventlog.WorkflowSnapshot
		}
		if _, err := l.AddEntry(context.Background(), eventlog.SequenceID(i), e, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder is a fake workflow function: it records every batch and
// answers with respond.
type recorder struct {
	mu      sync.Mutex
	batches [][]string // "sheet/seq" per record
	respond func(keys []string, recs []events.DynamoDBEventRecord) (Result, error)
}

func key(r events.DynamoDBEventRecord) string {
	return r.Change.Keys[awsschema.AttrSheet].String() + "/" + r.Change.Keys[awsschema.AttrSeq].Number()
}

func (rc *recorder) Invoke(_ context.Context, payload []byte) (Result, error) {
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return Result{}, err
	}
	keys := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		keys[i] = key(r)
	}
	rc.mu.Lock()
	rc.batches = append(rc.batches, keys)
	rc.mu.Unlock()
	if rc.respond != nil {
		return rc.respond(keys, ev.Records)
	}
	return Result{Status: http.StatusOK, Body: []byte(`{"batchItemFailures":[]}`)}, nil
}

// seen returns a copy of the batches so far: the ESM goroutine may still
// be appending to them.
func (rc *recorder) seen() [][]string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.batches)
}

func (rc *recorder) deliveries() map[string]int {
	n := map[string]int{}
	for _, b := range rc.seen() {
		for _, k := range b {
			n[k]++
		}
	}
	return n
}

func failures(seqs ...string) Result {
	var r events.DynamoDBEventResponse
	for _, s := range seqs {
		r.BatchItemFailures = append(r.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: s})
	}
	b, _ := json.Marshal(r)
	return Result{Status: http.StatusOK, Body: b}
}

func (f *streamFixture) run(t *testing.T, fn Invoker, o ESMOptions) *ESM {
	t.Helper()
	o.Streams, o.StreamARN, o.FilterPattern, o.Fn = f.env.Streams(), f.arn, awsschema.StreamFilterPattern, fn
	o.PollInterval, o.RetryBackoff = 20*time.Millisecond, time.Millisecond
	m, err := NewESM(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Only records whose new image has pending reach the function, in
// batches of at most BatchSize, each once; dropped sheets reach it never.
func TestESMFiltersBatchesAndDrops(t *testing.T) {
	f := newStreamFixture(t)
	rc := &recorder{}
	m := f.run(t, rc, ESMOptions{BatchSize: 2})
	m.Drop("lost")
	f.write(t, "a", 10, 2, 5, 9)
	f.write(t, "b", 4, 0, 3)
	f.write(t, "lost", 3, 1)
	want := map[string]int{"a/2": 1, "a/5": 1, "a/9": 1, "b/0": 1, "b/3": 1}
	waitFor(t, "five deliveries", func() bool { return len(rc.deliveries()) == 5 })
	time.Sleep(200 * time.Millisecond) // nothing more arrives
	got := rc.deliveries()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s delivered %d times, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("deliveries %v, want %v", got, want)
	}
	for _, b := range rc.seen() {
		if len(b) > 2 {
			t.Errorf("batch of %d records, BatchSize 2", len(b))
		}
	}
	st := m.Stats()
	if st.Dropped != 1 || st.Sheets["lost"].Dropped != 1 || st.FilteredOut == 0 || st.Invocations != len(rc.seen()) {
		t.Errorf("stats %+v", st)
	}
}

// An item failure retries the batch from the lowest failed record: the
// records before it are not delivered again, it and those after are.
func TestESMRetriesFromTheLowestFailure(t *testing.T) {
	f := newStreamFixture(t)
	var mu sync.Mutex
	failsLeft := 2
	rc := &recorder{}
	rc.respond = func(keys []string, recs []events.DynamoDBEventRecord) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		for i, k := range keys {
			if k == "a/3" && failsLeft > 0 {
				failsLeft--
				// Report a later record too: the lowest one counts.
				return failures(recs[len(recs)-1].Change.SequenceNumber, recs[i].Change.SequenceNumber), nil
			}
		}
		return failures(), nil
	}
	f.write(t, "a", 5, 0, 1, 2, 3, 4)
	m := f.run(t, rc, ESMOptions{BatchSize: 10, MaxRetries: 5})
	waitFor(t, "all records", func() bool { return len(rc.deliveries()) == 5 && m.Stats().Retries == 2 })
	time.Sleep(100 * time.Millisecond)
	got := rc.deliveries()
	for k, n := range map[string]int{"a/0": 1, "a/1": 1, "a/2": 1, "a/3": 3, "a/4": 3} {
		if got[k] != n {
			t.Errorf("%s delivered %d times, want %d (batches %v)", k, got[k], n, rc.seen())
		}
	}
	if st := m.Stats(); st.ItemFailures != 4 || st.DeadLettered != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A record that keeps failing is dead-lettered after MaxRetries retries,
// with the rest of its batch (as the on-failure destination gets a batch's
// range), and the shard moves on.
func TestESMDeadLetters(t *testing.T) {
	f := newStreamFixture(t)
	rc := &recorder{}
	rc.respond = func(keys []string, recs []events.DynamoDBEventRecord) (Result, error) {
		for i, k := range keys {
			if k == "a/1" {
				return failures(recs[i].Change.SequenceNumber), nil
			}
		}
		return failures(), nil
	}
	f.write(t, "a", 3, 0, 1, 2)
	m := f.run(t, rc, ESMOptions{BatchSize: 3, MaxRetries: 2})
	waitFor(t, "a dead letter", func() bool { return len(m.DeadLetters()) == 1 })
	f.write(t, "b", 1, 0)
	waitFor(t, "b/0 after the dead letter", func() bool { return rc.deliveries()["b/0"] == 1 })
	dl := m.DeadLetters()[0]
	checkDeadLetterShape(t, dl)
	info := dl.DDBStreamBatchInfo
	if dl.RequestContext.ApproximateInvokeCount != 3 || dl.RequestContext.Condition != "RetryAttemptsExhausted" ||
		dl.ResponseContext.FunctionError != "" || info.BatchSize != 2 || info.StreamARN != f.arn || info.ShardID == "" {
		t.Fatalf("dead letter %+v", dl)
	}
	// The records are not in it: they are read back from the stream by
	// the range, from the failed one to the end of its batch.
	if got := pendingInRange(t, f, info); !slices.Equal(got, []string{"a/1", "a/2"}) {
		t.Errorf("records of the dead letter's range %v, want [a/1 a/2]", got)
	}
	if got := rc.deliveries(); got["a/0"] != 1 || got["a/1"] != 3 || got["a/2"] != 3 {
		t.Errorf("deliveries %v", got)
	}
	if st := m.Stats(); st.DeadLettered != 2 || st.Sheets["a"].DeadLettered != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A function error (a crash, a timeout) splits the batch until the bad
// record is alone; it is then retried and dead-lettered, the others pass.
func TestESMBisects(t *testing.T) {
	f := newStreamFixture(t)
	rc := &recorder{}
	rc.respond = func(keys []string, _ []events.DynamoDBEventRecord) (Result, error) {
		if slices.Contains(keys, "a/5") {
			return Result{Status: http.StatusBadGateway, FunctionError: "Runtime.ExitError"}, nil
		}
		return failures(), nil
	}
	f.write(t, "a", 8, 0, 1, 2, 3, 4, 5, 6, 7)
	m := f.run(t, rc, ESMOptions{BatchSize: 8, MaxRetries: 1, Bisect: true})
	waitFor(t, "the bad record dead-lettered and the rest delivered", func() bool {
		d := rc.deliveries()
		return len(m.DeadLetters()) == 1 && d["a/6"] > 0 && d["a/7"] > 0
	})
	st := m.Stats()
	if st.Bisects < 3 || st.DeadLettered != 1 {
		t.Errorf("stats %+v, dead letters %+v", st, m.DeadLetters())
	}
	dl := m.DeadLetters()[0]
	checkDeadLetterShape(t, dl)
	if dl.ResponseContext.FunctionError != "Unhandled" || dl.DDBStreamBatchInfo.BatchSize != 1 || dl.RequestContext.ApproximateInvokeCount != 2 {
		t.Errorf("dead letter %+v", dl)
	}
	if got := pendingInRange(t, f, dl.DDBStreamBatchInfo); !slices.Equal(got, []string{"a/5"}) {
		t.Errorf("records of the dead letter's range %v, want [a/5]", got)
	}
	alone := 0
	for _, b := range rc.seen() {
		if slices.Equal(b, []string{"a/5"}) {
			alone++
		}
	}
	if alone != 2 {
		t.Errorf("a/5 was tried alone %d times, want 2 (1 + MaxRetries); batches %v", alone, rc.seen())
	}
}

// An item identifier that names no record of the batch (the event id, as
// a well-known sample wrongly sends) fails the whole batch.
func TestESMUnknownItemIdentifier(t *testing.T) {
	f := newStreamFixture(t)
	var mu sync.Mutex
	first := true
	rc := &recorder{}
	rc.respond = func(_ []string, recs []events.DynamoDBEventRecord) (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return failures(recs[1].EventID), nil
		}
		return failures(), nil
	}
	f.write(t, "a", 3, 0, 1, 2)
	m := f.run(t, rc, ESMOptions{BatchSize: 3})
	waitFor(t, "the retry", func() bool { return m.Stats().Retries == 1 && len(rc.seen()) >= 2 })
	if got := rc.deliveries(); got["a/0"] != 2 || got["a/1"] != 2 || got["a/2"] != 2 {
		t.Errorf("deliveries %v: the whole batch should have been retried", got)
	}
}

// checkDeadLetterShape: the message has exactly the members of the
// invocation record Lambda sends an on-failure destination for a DynamoDB
// stream, and no record.
func checkDeadLetterShape(t *testing.T, dl DeadLetter) {
	t.Helper()
	b, err := json.Marshal(dl)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	want := []string{"DDBStreamBatchInfo", "requestContext", "responseContext", "timestamp", "version"}
	if got := slices.Sorted(maps.Keys(top)); !slices.Equal(got, want) {
		t.Errorf("dead letter members %v, want %v", got, want)
	}
	var info map[string]any
	if err := json.Unmarshal(top["DDBStreamBatchInfo"], &info); err != nil {
		t.Fatal(err)
	}
	want = []string{"approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord", "batchSize", "endSequenceNumber",
		"shardId", "startSequenceNumber", "streamArn"}
	if got := slices.Sorted(maps.Keys(info)); !slices.Equal(got, want) {
		t.Errorf("DDBStreamBatchInfo members %v, want %v", got, want)
	}
	if _, err := time.Parse(time.RFC3339, info["approximateArrivalOfFirstRecord"].(string)); err != nil {
		t.Errorf("approximateArrivalOfFirstRecord: %v", err)
	}
}

// pendingInRange reads a dead letter's range from the stream and returns
// the records with pending, as "sheet/seq".
func pendingInRange(t *testing.T, f *streamFixture, info DDBStreamBatchInfo) []string {
	t.Helper()
	recs, err := RecordsInRange(context.Background(), f.env.Streams(), info)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if k := recordKey(r); k.Pending != "" {
			out = append(out, k.Sheet+"/"+k.Seq)
		}
	}
	return out
}
