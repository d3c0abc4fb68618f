package dynamo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// padded is an entry whose body is size bytes.
func padded(i, size int) eventlog.Entry {
	head := fmt.Sprintf(`{"type":"x","i":%d,"pad":"`, i)
	return eventlog.Entry{Body: []byte(head + strings.Repeat("p", size-len(head)-2) + `"}`)}
}

// A batch is one transaction, so it must fit DynamoDB's limit on the
// size of a transaction's items; one that does not is refused before any
// request, and what DynamoDB would refuse in one entry is refused with
// the entry's index.
func TestBatchLimits(t *testing.T) {
	f := newFixture(t)
	l := f.log(t, dynamo.Options{})
	ctx := context.Background()
	mustAdd(t, l, 0, entry(0))
	const size = 390_000 // each entry fits an item; eleven of them do not fit a transaction
	var eleven []eventlog.Entry
	for i := range 11 {
		eleven = append(eleven, padded(1+i, size))
	}
	long := strings.Repeat("s", dynamo.MaxMetadataLen+1)
	before := f.count.Snapshot()
	for name, c := range map[string]struct {
		batch []eventlog.Entry
		msg   string
	}{
		"over 4 MB in all":              {eleven, "DynamoDB transaction"},
		"invalid UTF-8 in entry 2":      {[]eventlog.Entry{entry(1), entry(2), {Body: []byte("{\"type\":\"x\",\"v\":\"\xff\"}")}}, "entry 2 of the batch"},
		"long metadata in entry 1":      {[]eventlog.Entry{entry(1), {Body: body(2), Metadata: eventlog.Metadata{History: long}}}, "entry 1 of the batch"},
		"a body over 400 KB in entry 0": {[]eventlog.Entry{padded(1, dynamo.MaxBodyBytes+1), entry(2)}, "entry 0 of the batch"},
		"100 entries":                   {make([]eventlog.Entry, eventlog.MaxBatch+1), "1 to 99 entries"},
		"two pending entries (3 and 4)": {[]eventlog.Entry{entry(1), entry(2), entry(3), {Body: body(4), Metadata: eventlog.Metadata{Pending: "a"}}, {Body: body(5), Metadata: eventlog.Metadata{Pending: "b"}}}, "entries 3 and 4"},
		"a malformed body in entry 57":  {append(append(entries(1, 58), eventlog.Entry{Body: []byte(`{"type":7}`)}), entries(59, 60)...), "entry 57 of the batch"},
	} {
		_, err := l.AddEntries(ctx, 1, c.batch, nil)
		wantErr[*errs.ValidationError](t, err, name)
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %q does not say %q", name, err, c.msg)
		}
	}
	if n := f.count.Since(before).Total(); n != 0 {
		t.Errorf("refused batches made %d requests", n)
	}
	// Ten such entries fit one transaction: all land.
	if _, err := l.AddEntries(ctx, 1, eleven[:10], nil); err != nil {
		t.Fatalf("a batch of ten %d-byte entries: %v", size, err)
	}
	first, next, got := readAll(t, l)
	if first != 0 || next != 11 {
		t.Fatalf("log is [%d,%d), want [0,11)", first, next)
	}
	for i, e := range eleven[:10] {
		if string(got[1+i].Body) != string(e.Body) {
			t.Fatalf("entry %d did not round-trip", 1+i)
		}
	}
}

func entries(from, to int) []eventlog.Entry {
	var out []eventlog.Entry
	for i := from; i < to; i++ {
		out = append(out, entry(i))
	}
	return out
}
