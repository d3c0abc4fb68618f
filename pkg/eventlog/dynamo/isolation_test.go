package dynamo_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// staleHTTP can record the body of a Query response and later serve it in
// place of the real one: a read that returns an item as it was before a
// transaction whose write to another item (the head) was already visible.
// DynamoDB's GetItem and Query are read-committed, not a snapshot across
// items, and AWS tells readers who need a transaction's items together to
// use TransactGetItems; moto, serialising every request, never shows the
// window, so this transport opens it on purpose.
type staleHTTP struct {
	base *awshttp.BuildableClient

	mu       sync.Mutex
	record   bool
	recorded []byte
	replay   int
	replayed int
	ops      []string
}

func (s *staleHTTP) Do(req *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	resp, err := s.base.Do(req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op)
	if op != "Query" || (!s.record && s.replay == 0) {
		return resp, nil
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if s.record {
		s.recorded, s.record = b, false
	} else {
		b = s.recorded
		s.replay--
		s.replayed++
		// The checksum of the real body would not match.
		resp.Header.Del("X-Amz-Crc32")
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return resp, nil
}

func (s *staleHTTP) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.ops {
		if o == op {
			n++
		}
	}
	return n
}

// A page never shows the head's completion of a workflow (the newest
// snapshot pointer moved to the entry) together with that entry's old
// metadata (still pending, no snapshot), even when the entry is read
// stale after the head: the page's pending entries are read again with
// the head in one TransactGetItems, and any change sends the read round
// again.
func TestReadIsolationCompletion(t *testing.T) {
	sh := &staleHTTP{base: awshttp.NewBuildableClient()}
	f := newFixture(t, func(o *dynamodb.Options) { o.HTTPClient = sh })
	l := f.log(t, dynamo.Options{Retry: fastRetry})
	ctx := context.Background()
	mustAdd(t, l, 0, entry(0))
	mustAdd(t, l, 1, entry(1))
	mustAdd(t, l, 2, eventlog.Entry{Body: body(2), Metadata: eventlog.Metadata{Pending: eventlog.WorkflowSnapshot}})

	// The entries as they are before the completion.
	sh.mu.Lock()
	sh.record = true
	sh.mu.Unlock()
	if _, err := l.Query(ctx, eventlog.FromStart, eventlog.ToEnd, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.SetMetadata(ctx, 2, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "2")); err != nil || !ok {
		t.Fatalf("completion: %v %v", ok, err)
	}

	// The head is read after the completion, the entries before it.
	sh.mu.Lock()
	sh.replay = 1
	sh.mu.Unlock()
	tgi := sh.count("TransactGetItems")
	p, err := l.Query(ctx, eventlog.FromStart, eventlog.ToEnd, eventlog.Known(0))
	if err != nil {
		t.Fatal(err)
	}
	sh.mu.Lock()
	replayed := sh.replayed
	sh.mu.Unlock()
	if replayed != 1 {
		t.Fatalf("the stale read was served %d times, want 1: the test does not test anything", replayed)
	}
	if p.LastSnapshot == nil || p.LastSnapshot.SequenceID != 2 || len(p.Entries) != 3 {
		t.Fatalf("page %+v: want the snapshot at 2 and three entries", p)
	}
	if e := p.Entries[2]; e.Snapshot != "2" || e.Pending != "" {
		t.Fatalf("the page names the snapshot at 2 (the head after the completion) but shows entry 2 as %+v "+
			"(before it): a moment that never was", e.Metadata)
	}
	if n := sh.count("TransactGetItems") - tgi; n < 1 {
		t.Errorf("%d TransactGetItems: the pending entry was not read again with the head", n)
	}

	// A page with nothing pending costs no transactional read.
	tgi = sh.count("TransactGetItems")
	if _, err := l.Query(ctx, eventlog.FromStart, eventlog.ToEnd, nil); err != nil {
		t.Fatal(err)
	}
	if n := sh.count("TransactGetItems") - tgi; n != 0 {
		t.Errorf("a page without pending entries sent %d TransactGetItems", n)
	}
}
