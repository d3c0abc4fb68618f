package dynamo_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/internal/awscost"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// What each operation costs on DynamoDB: requests counted on the wire (an
// SDK middleware), and capacity units worked out from the sizes of the
// items involved by DynamoDB's published rules, because moto reports no
// capacity for transactions and a flat made-up figure for the rest. The
// table prints with -v (make bench-aws); the request budgets are asserted
// on every run.
func TestCostDynamoDB(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	clock := time.UnixMilli(1_700_000_000_000)
	s := f.store(dynamo.Options{Now: func() time.Time { return clock }})
	l, _ := s.SheetLog(newSheet())
	cell := func(i int) eventlog.Entry {
		return eventlog.Entry{Body: fmt.Appendf(nil,
			`{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":{"number":%d.5},"format":{"bold":true}}`, i/10, i%10, i)}
	}
	for i := range 150 {
		mustAdd(t, l, i, cell(i))
	}
	writes := func(u awscost.Usage) int {
		return u.Of("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
	}
	tab := &awscost.Table{Title: "DynamoDB: requests and capacity units per event log operation (requests counted on moto; RCU/WCU computed from item sizes; moto's reported CU are placeholders)"}
	row := func(name string, u awscost.Usage, rcu, wcu float64, note string, maxRequests, wantWrites int) {
		t.Helper()
		tab.Add(awscost.Row{Name: name, Usage: u, Writes: writes(u), RCU: rcu, WCU: wcu, Note: note})
		if u.Total() > maxRequests || writes(u) != wantWrites {
			t.Errorf("%s: %d requests (%v) with %d writes, want at most %d requests and %d writes",
				name, u.Total(), u.Requests, writes(u), maxRequests, wantWrites)
		}
	}
	headSize := func() int { return dynamo.ItemSize(rawItem(t, f, l.Sheet(), -1)) }
	entrySize := func(id int) int { return dynamo.ItemSize(rawItem(t, f, l.Sheet(), id)) }

	// Append.
	u := f.count.Measure(func() { mustAdd(t, l, 150, cell(150)) })
	row("append", u, rcuStrong(headSize()), 2*wcu(headSize())+2*wcu(entrySize(150)),
		"consistent GetItem(head) + TransactWriteItems{head, entry}", 2, 1)

	// Append with a conflict, found by the head read.
	u = f.count.Measure(func() {
		if _, err := l.AddEntry(ctx, 3, cell(3), nil); err == nil {
			t.Fatal("append at 3 succeeded")
		}
	})
	row("append, conflict", u, rcuStrong(headSize()), 0, "the head read answers; nothing is written", 1, 0)

	// Batch appends: one head read and one transaction whatever the
	// size, so the head's share of the cost shrinks as the batch grows.
	next := 151
	for _, n := range []int{1, 10, eventlog.MaxBatch} {
		batch := make([]eventlog.Entry, n)
		for i := range batch {
			batch[i] = cell(next + i)
		}
		u := f.count.Measure(func() {
			if _, err := l.AddEntries(ctx, eventlog.SequenceID(next), batch, nil); err != nil {
				t.Fatalf("AddEntries(%d, %d entries): %v", next, n, err)
			}
		})
		w := wcu(headSize())
		for id := next; id < next+n; id++ {
			w += wcu(entrySize(id))
		}
		w *= 2 // transactional writes
		r := rcuStrong(headSize())
		perEntry := w / float64(n)
		row(fmt.Sprintf("append, batch of %d", n), u, r, w,
			fmt.Sprintf("per entry: %.3g requests, %.3g RCU, %.3g WCU", float64(u.Total())/float64(n), r/float64(n), perEntry), 2, 1)
		if n == eventlog.MaxBatch && perEntry > 2.1 {
			t.Errorf("a batch of %d entries costs %.3g WCU per entry, want at most 2.1", n, perEntry)
		}
		next += n
	}

	// A query page of 100 entries.
	var pageBytes int
	u = f.count.Measure(func() {
		p, err := l.Query(ctx, eventlog.FromID(10), eventlog.ToID(110), nil)
		if err != nil || len(p.Entries) != 100 {
			t.Fatalf("query: %d entries, %v", len(p.Entries), err)
		}
	})
	for id := 10; id < 110; id++ {
		pageBytes += entrySize(id)
	}
	row("query page of 100", u, rcuStrong(headSize())+rcuStrong(pageBytes),
		0, fmt.Sprintf("GetItem(head) + Query; %d B of items", pageBytes), 2, 0)

	// Set metadata (one field, not the snapshot).
	u = f.count.Measure(func() {
		if ok, err := l.SetMetadata(ctx, 120, eventlog.MetadataUpdate{Pending: eventlog.Set(eventlog.WorkflowSnapshot)}); err != nil || !ok {
			t.Fatal(ok, err)
		}
	})
	row("set metadata", u, rcuStrong(headSize()), 2*wcu(headSize())+2*wcu(entrySize(120)),
		"GetItem(head) + TransactWriteItems{head version, entry}", 2, 1)

	// A query page of 100 entries, one of them pending (120): that entry is
	// read again with the head in one TransactGetItems, which bills 2 RCU
	// per 4 KB of each item whatever the projection.
	u = f.count.Measure(func() {
		p, err := l.Query(ctx, eventlog.FromID(21), eventlog.ToID(121), nil)
		if err != nil || len(p.Entries) != 100 || p.Entries[99].Pending == "" {
			t.Fatalf("query: %d entries, %v", len(p.Entries), err)
		}
	})
	pageBytes = 0
	for id := 21; id < 121; id++ {
		pageBytes += entrySize(id)
	}
	row("query page of 100, 1 pending", u, rcuStrong(headSize())+rcuStrong(pageBytes)+2*rcuStrong(headSize())+2*rcuStrong(entrySize(120)),
		0, "GetItem(head) + Query + TransactGetItems{head, the pending entry}", 3, 0)

	// Workflow completion: clear pending, set snapshot, move the head's
	// newest-snapshot pointer.
	u = f.count.Measure(func() {
		if ok, err := l.SetMetadata(ctx, 120, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "snapshots/120/index")); err != nil || !ok {
			t.Fatal(ok, err)
		}
	})
	row("workflow completion", u, rcuStrong(headSize()), 2*wcu(headSize())+2*wcu(entrySize(120)),
		"conditional on pending; same shape as set metadata", 2, 1)

	// The sweeper's listing: 20 entries pending on the sparse index.
	for i := range 20 {
		id := 130 + i
		if ok, err := l.SetMetadata(ctx, eventlog.SequenceID(id), eventlog.MetadataUpdate{Pending: eventlog.Set(eventlog.WorkflowSnapshot)}); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	clock = clock.Add(time.Hour)
	var listed int
	u = f.count.Measure(func() {
		ps, err := s.PendingBefore(ctx, clock.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		listed = len(ps)
	})
	if listed != 20 {
		t.Fatalf("sweeper listed %d, want 20", listed)
	}
	// An index item holds the table's and the index's keys and the
	// projected workflow name. One Query per shard, each billed on its own
	// (an empty one still costs the minimum).
	indexItem := len("sheet") + len(l.Sheet()) + len("seq") + 3 + len("pendingShard") + 2 + len("pendingSince") + 8 +
		len("pending") + len("snapshot")
	perShard := make([]int, awsschema.PendingShards)
	for i := range 20 {
		perShard[awsschema.PendingShard(l.Sheet(), uint64(130+i))]++
	}
	var rcu float64
	for _, n := range perShard {
		rcu += rcuEventual(n * indexItem)
	}
	row(fmt.Sprintf("sweeper query (20 pending, %d shards)", awsschema.PendingShards), u, rcu, 0,
		"one Query per shard of the sparse pending index, eventually consistent; grows with pending entries and shards, not with the logs",
		awsschema.PendingShards, 0)

	// Truncate 100 entries.
	u = f.count.Measure(func() {
		if err := l.Truncate(ctx, 100); err != nil {
			t.Fatal(err)
		}
	})
	tab.Add(awscost.Row{Name: "truncate 100 entries", Usage: u, Writes: writes(u), RCU: rcuStrong(headSize()) + rcuStrong(100*entrySize(100)),
		WCU: wcu(headSize()) + 100*float64(wcu(entrySize(100))), Note: "GetItem + UpdateItem(head) + Query(keys) + BatchWriteItem×4"})

	var b strings.Builder
	tab.Print(&b)
	if testing.Verbose() {
		fmt.Fprint(os.Stdout, "\n"+b.String()+"\n")
	} else {
		t.Log("\n" + b.String())
	}
}

// wcu is the write units of one standard write of size bytes: 1 per KB
// started. Transactional writes cost twice that (the callers double).
func wcu(size int) float64 { return math.Ceil(float64(max(size, 1)) / 1024) }

// rcuStrong is the read units of a strongly consistent read of size
// bytes: 1 per 4 KB started (a Query sums its items first).
func rcuStrong(size int) float64 { return math.Ceil(float64(max(size, 1)) / 4096) }

// rcuEventual is half of that.
func rcuEventual(size int) float64 { return rcuStrong(size) / 2 }
