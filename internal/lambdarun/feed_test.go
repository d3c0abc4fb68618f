package lambdarun_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/internal/awscost"
	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// apiFixture is the API Lambda's handler over moto, its DynamoDB
// requests counted.
type apiFixture struct {
	serve func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	cost  *awscost.Counter
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	f := newFixture(t)
	cost := awscost.New()
	db := dynamo.New(dynamodb.NewFromConfig(f.env.Config, cost.DynamoDBOption), f.table, dynamo.Options{Logger: slog.New(slog.DiscardHandler)})
	h, err := lambdarun.APIHandler(lambdarun.Stores{Logs: db, Blobs: f.stores.Blobs, Dynamo: db}, f.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &apiFixture{serve: apigw.Handler(h), cost: cost}
}

func apiEvent(method, path, query, body string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: path, RawQueryString: query, Body: body,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "192.0.2.1"},
		},
	}
}

// invoke runs one event with an invocation deadline of budget, as Lambda
// gives the function its timeout.
func (a *apiFixture) invoke(t *testing.T, budget time.Duration, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	r, err := a.serve(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the reply came after the invocation's deadline (%v)", time.Since(start))
	}
	return r, time.Since(start)
}

func page(t *testing.T, r events.APIGatewayV2HTTPResponse) (end string, entries int) {
	t.Helper()
	var p struct {
		End     string            `json:"endSequenceId"`
		Entries []json.RawMessage `json:"entries"`
	}
	if r.StatusCode != 200 || json.Unmarshal([]byte(r.Body), &p) != nil {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	return p.End, len(p.Entries)
}

// TestFeedOnLambda: the API function's change feed re-reads the head
// with backoff. A wait ends with the append another invocation makes; a
// wait that sees nothing costs one consistent GetItem per read (and no
// other request), on the poller's schedule; a wait longer than the
// invocation has left ends in time to reply.
func TestFeedOnLambda(t *testing.T) {
	a := newAPIFixture(t)
	const sheet = "/v1/sheets/feed/log"

	done := make(chan events.APIGatewayV2HTTPResponse, 1)
	var took time.Duration
	go func() {
		var r events.APIGatewayV2HTTPResponse
		r, took = a.invoke(t, 29*time.Second, apiEvent("GET", sheet, "start=0&wait=10", ""))
		done <- r
	}()
	time.Sleep(700 * time.Millisecond)
	post := apiEvent("POST", sheet, "", `{"sequenceId":0,"entries":[{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1},{"type":"SetCellValueAndFormat","row":0,"column":1,"value":2}]}`)
	if r, _ := a.invoke(t, 29*time.Second, post); r.StatusCode != 200 {
		t.Fatalf("append: %d %s", r.StatusCode, r.Body)
	}
	r := <-done
	if end, n := page(t, r); end != "2" || n != 2 || took < 700*time.Millisecond || took > 5*time.Second {
		t.Fatalf("woken wait: end %s, %d entries, after %v", end, n, took)
	}

	// Nothing appended: 2 s of reads at about 0, 0.1, 0.3, 0.7 and 1.5 s
	// (jitter may add one).
	before := a.cost.Snapshot()
	r, took = a.invoke(t, 29*time.Second, apiEvent("GET", sheet, "start=2&wait=2", ""))
	use := a.cost.Since(before)
	if end, n := page(t, r); end != "2" || n != 0 || took < 2*time.Second {
		t.Fatalf("idle wait: end %s, %d entries, after %v", end, n, took)
	}
	reads := use.Requests["GetItem"]
	t.Logf("a 2 s wait with nothing appended: %v requests, %v capacity units", use.Requests, use.Capacity)
	if reads < 5 || reads > 6 || use.Total() != reads {
		t.Fatalf("a 2 s idle wait made %v; want 5 or 6 GetItem and nothing else", use.Requests)
	}

	// The invocation has 1.5 s left: the wait of 20 s ends 1 s before
	// that, with the empty page.
	r, took = a.invoke(t, 1500*time.Millisecond, apiEvent("GET", sheet, "start=2&wait=20", ""))
	if end, n := page(t, r); end != "2" || n != 0 || took > 1400*time.Millisecond {
		t.Fatalf("wait within the deadline: end %s, %d entries, after %v", end, n, took)
	}
}
