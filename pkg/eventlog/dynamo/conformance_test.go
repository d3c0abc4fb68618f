package dynamo_test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
	"github.com/sheetlog/sheetlog/pkg/eventlog/eventlogtest"
)

// Small pages, so that the suite's paging tests cross many page
// boundaries and its large entries cross DynamoDB's 1 MB pages.
const (
	confPageEntries = 16
	confPageBytes   = 256 << 10
)

// The conformance suite, in full (racing appenders and the
// linearizability check included), against the emulator: every log is a
// sheet of its own in one shared table, as in production.
func TestConformance(t *testing.T) {
	f := newFixture(t)
	s := f.store(dynamo.Options{PageEntries: confPageEntries, PageBytes: confPageBytes})
	eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog {
		l, err := s.Log(newSheet())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, eventlogtest.Light(), eventlogtest.PageLimits(confPageEntries, confPageBytes))
}

func TestConformanceStore(t *testing.T) {
	f := newFixture(t)
	eventlogtest.RunStore(t, f.store(dynamo.Options{}))
}

// lossyHTTP loses the reply of one write request in five, after the
// emulator has applied it: the hardest fault, since the client cannot
// tell whether its write happened.
type lossyHTTP struct{ base *awshttp.BuildableClient }

func (h lossyHTTP) Do(req *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	resp, err := h.base.Do(req)
	if err != nil {
		return resp, err
	}
	if (op == "TransactWriteItems" || op == "UpdateItem") && rand.IntN(5) == 0 {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("read tcp: connection reset by peer (injected after the server answered)")
	}
	return resp, nil
}

// The conformance suite again, with a fifth of all write replies lost:
// every sequential expectation still holds (a retried write finds its own
// earlier attempt by its token), and the concurrent histories stay
// linearizable (where a write's fate cannot be established it is reported
// as a StorageError, which the model treats as "may have happened").
func TestConformanceLostReplies(t *testing.T) {
	f := newFixture(t, func(o *dynamodb.Options) { o.HTTPClient = lossyHTTP{awshttp.NewBuildableClient()} })
	// Enough attempts that running out (0.2^12 per write) never happens.
	retry := dynamo.Retry{MaxAttempts: 12, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	s := f.store(dynamo.Options{PageEntries: confPageEntries, PageBytes: confPageBytes, Retry: retry})
	eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog {
		l, err := s.Log(newSheet())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, eventlogtest.Light(), eventlogtest.Appenders(3, 20), eventlogtest.PagingEntries(20), eventlogtest.PropertySteps(6),
		eventlogtest.PageLimits(confPageEntries, confPageBytes))
}
