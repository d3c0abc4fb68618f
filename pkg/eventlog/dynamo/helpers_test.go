package dynamo_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sheetlog/sheetlog/internal/awscost"
	"github.com/sheetlog/sheetlog/internal/moto"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// propertyChecks is how many sequences the suite's model-based property
// test runs here unless -rapid.checks says otherwise: every step costs
// several emulator round trips, so rapid's default of 100 would take most
// of a minute on its own.
const propertyChecks = "30"

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "rapid.checks" })
	if !given && flag.Lookup("rapid.checks") != nil {
		_ = flag.Set("rapid.checks", propertyChecks)
	}
	moto.Main(m)
}

// fastRetry keeps fault-injection tests quick.
var fastRetry = dynamo.Retry{MaxAttempts: 6, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}

// fixture is one table on the emulator (or the external endpoint).
type fixture struct {
	env    moto.Env
	client *dynamodb.Client
	table  string
	count  *awscost.Counter
}

// newFixture creates a table of its own for the test: moto copies a whole
// table on every transaction, so small tables keep the emulator fast.
func newFixture(t testing.TB, optFns ...func(*dynamodb.Options)) *fixture {
	t.Helper()
	env := moto.Get(t)
	c := awscost.New()
	fns := append([]func(*dynamodb.Options){c.DynamoDBOption}, optFns...)
	f := &fixture{env: env, client: env.DynamoDB(fns...), table: moto.Name("evlog-" + t.Name()), count: c}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dynamo.CreateTable(ctx, env.DynamoDB(), f.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dynamo.DeleteTable(context.Background(), env.DynamoDB(), f.table) })
	return f
}

func (f *fixture) store(o dynamo.Options) *dynamo.Store { return dynamo.New(f.client, f.table, o) }

var sheetSeq struct {
	sync.Mutex
	n int
}

func newSheet() string {
	sheetSeq.Lock()
	defer sheetSeq.Unlock()
	sheetSeq.n++
	return fmt.Sprintf("sheet-%d", sheetSeq.n)
}

func (f *fixture) log(t testing.TB, o dynamo.Options) *dynamo.Log {
	t.Helper()
	l, err := f.store(o).SheetLog(newSheet())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func body(n int) []byte {
	return fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%d}`, n/7, n%7, n)
}

func entry(n int) eventlog.Entry { return eventlog.Entry{Body: body(n)} }

func mustAdd(t testing.TB, l eventlog.EventLog, id int, e eventlog.Entry) {
	t.Helper()
	if _, err := l.AddEntry(context.Background(), eventlog.SequenceID(id), e, nil); err != nil {
		t.Fatalf("AddEntry(%d): %v", id, err)
	}
}

// readAll pages through the whole log.
func readAll(t testing.TB, l eventlog.EventLog) (first, next uint64, out []eventlog.Entry) {
	t.Helper()
	p, err := l.Query(context.Background(), eventlog.FromStart, eventlog.ToEnd, nil)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	first = uint64(p.Start)
	for {
		out = append(out, p.Entries...)
		if p.Complete {
			return first, uint64(p.End), out
		}
		if len(p.Entries) == 0 {
			t.Fatalf("incomplete empty page at %d", p.Start)
		}
		if p, err = l.Query(context.Background(), eventlog.FromID(p.End), eventlog.ToEnd, nil); err != nil {
			t.Fatalf("Query: %v", err)
		}
	}
}

func isErr[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

func wantErr[E error](t testing.TB, err error, what string) {
	t.Helper()
	if !isErr[E](err) {
		var e E
		t.Fatalf("%s: got %v (%T), want %T", what, err, err, e)
	}
	if _, ok := any(new(E)).(**errs.StorageError); !ok && isErr[*errs.StorageError](err) {
		t.Fatalf("%s: %v is also a StorageError", what, err)
	}
}
