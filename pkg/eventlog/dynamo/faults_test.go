package dynamo_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// fault is what the injecting transport does to a request.
type fault int

const (
	// Refused before reaching the server.
	throttled   fault = iota // 400 ThrottlingException
	unavailable              // 503 ServiceUnavailable
	txConflict               // transaction cancelled: TransactionConflict
	// Reaching the server, which applies it; the reply is lost.
	lostReply // connection reset after the server answered
	lost500   // the server's answer replaced by a 500
)

// faultyHTTP is an HTTP client that fails the first count requests of one
// DynamoDB operation, in the way mode says, and passes everything else to
// the real emulator.
type faultyHTTP struct {
	base *awshttp.BuildableClient

	mu       sync.Mutex
	op       string
	mode     fault
	count    int
	injected int
}

func newFaulty() *faultyHTTP { return &faultyHTTP{base: awshttp.NewBuildableClient()} }

func (f *faultyHTTP) arm(op string, mode fault, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.op, f.mode, f.count, f.injected = op, mode, count, 0
}

func (f *faultyHTTP) fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

func (f *faultyHTTP) Do(req *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	f.mu.Lock()
	hit := f.count > 0 && op == f.op
	if hit {
		f.count--
		f.injected++
	}
	mode := f.mode
	f.mu.Unlock()
	if !hit {
		return f.base.Do(req)
	}
	reply := func(status int, typ string, extra ...string) *http.Response {
		body := `{"__type":"com.amazonaws.dynamodb.v20120810#` + typ + `","message":"injected fault"` + strings.Join(extra, "") + `}`
		return &http.Response{
			StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:  http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"injected"}},
			Body:    io.NopCloser(strings.NewReader(body)),
			Request: req, ContentLength: int64(len(body)),
		}
	}
	switch mode {
	case throttled:
		return reply(400, "ThrottlingException"), nil
	case unavailable:
		return reply(503, "ServiceUnavailable"), nil
	case txConflict:
		return reply(400, "TransactionCanceledException",
			`,"CancellationReasons":[{"Code":"TransactionConflict","Message":"injected"},{"Code":"None"}]`), nil
	}
	resp, err := f.base.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if mode == lost500 {
		return reply(500, "InternalServerError"), nil
	}
	return nil, errors.New("read tcp: connection reset by peer (injected after the server answered)")
}

func faultyLog(t *testing.T) (*fixture, *faultyHTTP, *dynamo.Log) {
	fh := newFaulty()
	f := newFixture(t, func(o *dynamodb.Options) { o.HTTPClient = fh })
	return f, fh, f.log(t, dynamo.Options{Retry: fastRetry})
}

// faultCase injects mode into the requests of operation op.
type faultCase struct {
	name string
	op   string
	mode fault
}

// appendFaults are the faults an append meets: on its head read, and on
// its transaction before or after the server applied it.
var appendFaults = []faultCase{
	{"GetItemThrottled", "GetItem", throttled},
	{"TransactThrottled", "TransactWriteItems", throttled},
	{"Transact503", "TransactWriteItems", unavailable},
	{"TransactConflict", "TransactWriteItems", txConflict},
	{"TransactReplyLost", "TransactWriteItems", lostReply},
	{"TransactReply500", "TransactWriteItems", lost500},
}

// Transient failures, before or after the write reached the server, are
// retried; every append lands exactly once and ids stay dense.
func TestFaultsRetried(t *testing.T) {
	ctx := context.Background()
	for _, c := range append(appendFaults,
		faultCase{"QueryThrottled", "Query", throttled},
		faultCase{"UpdateItemReplyLost", "UpdateItem", lostReply},
	) {
		t.Run(c.name, func(t *testing.T) {
			_, fh, l := faultyLog(t)
			mustAdd(t, l, 0, entry(0))
			mustAdd(t, l, 1, eventlog.Entry{Body: body(1), Metadata: eventlog.Metadata{Pending: "snapshot"}})
			mustAdd(t, l, 2, entry(2))
			fh.arm(c.op, c.mode, 3)
			wantFirst := uint64(0)
			switch c.op {
			case "GetItem", "TransactWriteItems":
				mustAdd(t, l, 3, entry(3))
				// A completion whose reply was lost still reports applied.
				fh.arm(c.op, c.mode, 3)
				ok, err := l.SetMetadata(ctx, 1, eventlog.CompleteWorkflow("snapshot", "blob-1"))
				if err != nil || !ok {
					t.Fatalf("completion under faults: %v %v, want true", ok, err)
				}
			case "Query":
				if _, _, got := readAll(t, l); len(got) != 3 {
					t.Fatalf("read %d entries", len(got))
				}
				mustAdd(t, l, 3, entry(3))
				if _, err := l.SetMetadata(ctx, 1, eventlog.CompleteWorkflow("snapshot", "blob-1")); err != nil {
					t.Fatal(err)
				}
			case "UpdateItem":
				wantFirst = 1
				if err := l.Truncate(ctx, 1); err != nil {
					t.Fatalf("Truncate under faults: %v", err)
				}
				mustAdd(t, l, 3, entry(3))
				if _, err := l.SetMetadata(ctx, 1, eventlog.CompleteWorkflow("snapshot", "blob-1")); err != nil {
					t.Fatal(err)
				}
			}
			if fh.fired() == 0 {
				t.Fatalf("no fault was injected")
			}
			first, next, got := readAll(t, l)
			if first != wantFirst || next != 4 {
				t.Fatalf("log is [%d,%d), want [%d,4)", first, next, wantFirst)
			}
			for i, e := range got {
				if id := int(first) + i; string(e.Body) != string(body(id)) {
					t.Fatalf("entry %d is %s", id, e.Body)
				}
			}
			if got[1-first].Metadata != (eventlog.Metadata{Snapshot: "blob-1"}) {
				t.Fatalf("entry 1 metadata %+v", got[1-first].Metadata)
			}
			_, err := l.AddEntry(ctx, 5, entry(5), nil)
			wantErr[*errs.ConflictError](t, err, "AddEntry(5)")
		})
	}
}

// When the faults outlast the retries, the error is a StorageError and
// the log is whole: the write happened completely or not at all.
func TestFaultsExhausted(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		mode    fault
		applied bool // the server applied the write
	}{
		{"Refused", throttled, false},
		{"ReplyLost", lostReply, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, fh, l := faultyLog(t)
			mustAdd(t, l, 0, eventlog.Entry{Body: body(0), Metadata: eventlog.Metadata{Pending: "snapshot"}})
			fh.arm("TransactWriteItems", c.mode, 1000)
			_, err := l.AddEntry(ctx, 1, entry(1), nil)
			wantErr[*errs.StorageError](t, err, "AddEntry with every attempt failing")
			if isErr[*errs.ConflictError](err) {
				t.Fatalf("a failed append reported a conflict: %v", err)
			}
			_, err = l.SetMetadata(ctx, 0, eventlog.CompleteWorkflow("snapshot", "b"))
			wantErr[*errs.StorageError](t, err, "SetMetadata with every attempt failing")
			fh.arm("", 0, 0)
			first, next, got := readAll(t, l)
			wantNext := uint64(1)
			wantMD := eventlog.Metadata{Pending: "snapshot"}
			if c.applied {
				wantNext, wantMD = 2, eventlog.Metadata{Snapshot: "b"}
			}
			if first != 0 || next != wantNext || uint64(len(got)) != wantNext {
				t.Fatalf("log is [%d,%d) with %d entries, want [0,%d)", first, next, len(got), wantNext)
			}
			if c.applied && string(got[1].Body) != string(body(1)) {
				t.Fatalf("entry 1 is %s", got[1].Body)
			}
			if got[0].Metadata != wantMD {
				t.Fatalf("entry 0 metadata %+v, want %+v", got[0].Metadata, wantMD)
			}
			mustAdd(t, l, int(wantNext), entry(int(wantNext)))
		})
	}
}

// A conditional check that fails is never a StorageError, also when it
// comes back inside a cancelled transaction, and also under faults.
func TestConditionNeverStorageError(t *testing.T) {
	ctx := context.Background()
	_, fh, l := faultyLog(t)
	mustAdd(t, l, 0, entry(0))
	fh.arm("TransactWriteItems", lostReply, 2)
	_, err := l.AddEntry(ctx, 0, entry(9), nil) // the head read already says conflict
	wantErr[*errs.ConflictError](t, err, "AddEntry(0)")
	ok, err := l.SetMetadata(ctx, 0, eventlog.CompleteWorkflow("snapshot", "b"))
	if err != nil || ok {
		t.Fatalf("completion with nothing pending under faults: %v %v", ok, err)
	}
}

// A batch under the same faults: retried until it lands, once and whole;
// a lost reply is resolved by the batch's token. The reply's snapshot is
// the batch's own.
func TestFaultsBatch(t *testing.T) {
	ctx := context.Background()
	for _, c := range appendFaults {
		t.Run(c.name, func(t *testing.T) {
			_, fh, l := faultyLog(t)
			mustAdd(t, l, 0, entry(0))
			batch := entries(1, 6)
			batch[2].Pending = "snapshot"
			batch[3].Snapshot = "blob-4"
			fh.arm(c.op, c.mode, 3)
			last, err := l.AddEntries(ctx, 1, batch, eventlog.Known(0))
			if err != nil {
				t.Fatalf("AddEntries under faults: %v", err)
			}
			if fh.fired() == 0 {
				t.Fatalf("no fault was injected")
			}
			if last == nil || *last != (eventlog.SnapshotRef{SequenceID: 4, BlobID: "blob-4"}) {
				t.Fatalf("lastSnapshot = %+v, want {4 blob-4}", last)
			}
			first, next, got := readAll(t, l)
			if first != 0 || next != 6 {
				t.Fatalf("log is [%d,%d), want [0,6)", first, next)
			}
			for i, e := range batch {
				if g := got[1+i]; string(g.Body) != string(e.Body) || g.Metadata != e.Metadata {
					t.Fatalf("entry %d is %s %+v, want %s %+v", 1+i, g.Body, g.Metadata, e.Body, e.Metadata)
				}
			}
			_, err = l.AddEntries(ctx, 1, batch, nil)
			wantErr[*errs.ConflictError](t, err, "the same batch again")
		})
	}
}

// When the faults outlast the retries, a batch is all in the log or not
// at all.
func TestFaultsExhaustedBatch(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		mode    fault
		applied bool
	}{
		{"Refused", throttled, false},
		{"ReplyLost", lostReply, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, fh, l := faultyLog(t)
			mustAdd(t, l, 0, entry(0))
			fh.arm("TransactWriteItems", c.mode, 1000)
			_, err := l.AddEntries(ctx, 1, entries(1, 8), nil)
			wantErr[*errs.StorageError](t, err, "AddEntries with every attempt failing")
			fh.arm("", 0, 0)
			_, next, got := readAll(t, l)
			want := entries(0, 1)
			if c.applied {
				want = entries(0, 8)
			}
			if next != uint64(len(want)) {
				t.Fatalf("log ends at %d, want %d: the batch is half in", next, len(want))
			}
			for i := range want {
				if string(got[i].Body) != string(want[i].Body) {
					t.Fatalf("entry %d is %s", i, got[i].Body)
				}
			}
		})
	}
}
