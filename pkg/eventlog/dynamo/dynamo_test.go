package dynamo_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// The table the helper creates is the one awsschema describes.
func TestCreateTable(t *testing.T) {
	f := newFixture(t)
	out, err := f.client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(f.table)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	schema := awsschema.EventLogTable
	keys := func(ks []types.KeySchemaElement) string {
		var s []string
		for _, k := range ks {
			s = append(s, aws.ToString(k.AttributeName)+"/"+string(k.KeyType))
		}
		return strings.Join(s, ",")
	}
	if got, want := keys(d.KeySchema), schema.PartitionKey.Name+"/HASH,"+schema.SortKey.Name+"/RANGE"; got != want {
		t.Errorf("key schema %s, want %s", got, want)
	}
	if d.StreamSpecification == nil || !aws.ToBool(d.StreamSpecification.StreamEnabled) ||
		string(d.StreamSpecification.StreamViewType) != schema.StreamView || aws.ToString(d.LatestStreamArn) == "" {
		t.Errorf("stream %+v (arn %q), want %s", d.StreamSpecification, aws.ToString(d.LatestStreamArn), schema.StreamView)
	}
	if d.BillingModeSummary == nil || string(d.BillingModeSummary.BillingMode) != schema.BillingMode {
		t.Errorf("billing mode %+v, want %s", d.BillingModeSummary, schema.BillingMode)
	}
	if len(d.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("%d indexes, want 1", len(d.GlobalSecondaryIndexes))
	}
	ix := d.GlobalSecondaryIndexes[0]
	want := schema.Indexes[0]
	if aws.ToString(ix.IndexName) != want.Name || keys(ix.KeySchema) != want.PartitionKey.Name+"/HASH,"+want.SortKey.Name+"/RANGE" ||
		string(ix.Projection.ProjectionType) != want.Projection {
		t.Errorf("index %s %s %s, want %+v", aws.ToString(ix.IndexName), keys(ix.KeySchema), ix.Projection.ProjectionType, want)
	}
	types := map[string]string{}
	for _, a := range d.AttributeDefinitions {
		types[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	for _, k := range []awsschema.Key{schema.PartitionKey, schema.SortKey, want.PartitionKey, want.SortKey} {
		if types[k.Name] != string(k.Type) {
			t.Errorf("attribute %s has type %q, want %s", k.Name, types[k.Name], k.Type)
		}
	}
}

func TestAppendAndQuery(t *testing.T) {
	f := newFixture(t)
	l := f.log(t, dynamo.Options{})
	ctx := context.Background()
	p, err := l.Query(ctx, eventlog.FromStart, eventlog.ToEnd, nil)
	if err != nil || p.Start != 0 || p.End != 0 || !p.Complete || len(p.Entries) != 0 {
		t.Fatalf("empty log: %+v %v", p, err)
	}
	want := []eventlog.Entry{entry(0), {Body: body(1), Metadata: eventlog.Metadata{Pending: "snapshot", History: "h"}}, entry(2)}
	for i, e := range want {
		mustAdd(t, l, i, e)
	}
	first, next, got := readAll(t, l)
	if first != 0 || next != 3 || len(got) != 3 {
		t.Fatalf("log [%d,%d) with %d entries", first, next, len(got))
	}
	for i := range want {
		if string(got[i].Body) != string(want[i].Body) || got[i].Metadata != want[i].Metadata {
			t.Errorf("entry %d = %s %+v, want %s %+v", i, got[i].Body, got[i].Metadata, want[i].Body, want[i].Metadata)
		}
	}
	// Conflicts: too low, too high, the same id twice.
	for _, id := range []int{0, 2, 4, 100} {
		_, err := l.AddEntry(ctx, eventlog.SequenceID(id), entry(id), nil)
		wantErr[*errs.ConflictError](t, err, fmt.Sprintf("AddEntry(%d)", id))
		if c := err.(*errs.ConflictError); c.NextSequenceID != 3 {
			t.Errorf("conflict at %d carries next %d, want 3", id, c.NextSequenceID)
		}
	}
	// Ranges.
	if _, err := l.Query(ctx, eventlog.FromID(4), eventlog.ToEnd, nil); !isErr[*errs.RangeError](err) {
		t.Errorf("Query(4): %v, want RangeError", err)
	}
	p, err = l.Query(ctx, eventlog.FromID(1), eventlog.ToID(2), nil)
	if err != nil || p.Start != 1 || p.End != 2 || !p.Complete || len(p.Entries) != 1 {
		t.Errorf("Query(1,2) = %+v, %v", p, err)
	}
	p, err = l.Query(ctx, eventlog.FromID(2), eventlog.ToID(1), nil)
	if err != nil || p.Start != 2 || p.End != 2 || !p.Complete || len(p.Entries) != 0 {
		t.Errorf("Query(2,1) = %+v, %v", p, err)
	}
	if _, err := l.SetMetadata(ctx, 3, eventlog.MetadataUpdate{History: eventlog.Set("x")}); !isErr[*errs.RangeError](err) {
		t.Errorf("SetMetadata(3): %v, want RangeError", err)
	}
}

// Values the store would only see refused by DynamoDB are refused before
// any call: bad sheet ids, oversized entries, invalid UTF-8.
func TestValidation(t *testing.T) {
	f := newFixture(t)
	s := f.store(dynamo.Options{})
	for _, id := range []string{"", "a/b", "..", strings.Repeat("x", 65), "a b", "ä"} {
		if _, err := s.Log(id); !isErr[*errs.ValidationError](err) {
			t.Errorf("Log(%q): %v, want ValidationError", id, err)
		}
	}
	l := f.log(t, dynamo.Options{})
	ctx := context.Background()
	mustAdd(t, l, 0, entry(0))
	big := `{"type":"x","pad":"` + strings.Repeat("a", dynamo.MaxBodyBytes) + `"}`
	before := f.count.Snapshot()
	for name, e := range map[string]eventlog.Entry{
		"over 400 KB":      {Body: []byte(big)},
		"invalid UTF-8":    {Body: []byte("{\"type\":\"x\",\"v\":\"\xff\"}")},
		"no type":          {Body: []byte(`{"v":1}`)},
		"long metadata":    {Body: body(1), Metadata: eventlog.Metadata{Snapshot: strings.Repeat("s", dynamo.MaxMetadataLen+1)}},
		"metadata in body": {Body: []byte(`{"type":"x","pending":"snapshot"}`)},
	} {
		_, err := l.AddEntry(ctx, 1, e, nil)
		wantErr[*errs.ValidationError](t, err, name)
	}
	if n := f.count.Since(before).Total(); n != 0 {
		t.Errorf("refused appends made %d requests", n)
	}
	// The largest body that is allowed fits, with every metadata field at
	// its longest.
	max := eventlog.Entry{Body: []byte(`{"type":"x","pad":"` + strings.Repeat("a", dynamo.MaxBodyBytes-len(`{"type":"x","pad":""}`)) + `"}`)}
	mustAdd(t, l, 1, max)
	long := strings.Repeat("m", dynamo.MaxMetadataLen)
	if ok, err := l.SetMetadata(ctx, 1, eventlog.MetadataUpdate{Snapshot: eventlog.Set(long), History: eventlog.Set(long), Pending: eventlog.Set(long)}); err != nil || !ok {
		t.Fatalf("SetMetadata on the largest entry: %v %v", ok, err)
	}
	_, _, got := readAll(t, l)
	if len(got) != 2 || string(got[1].Body) != string(max.Body) || got[1].Pending != long {
		t.Fatalf("largest entry did not round-trip")
	}
}

// Racing appenders: every id has exactly one winner, ids stay dense, and
// every acknowledged append is in the log at its id.
func TestRacingAppenders(t *testing.T) {
	f := newFixture(t)
	s := f.store(dynamo.Options{})
	sheet := newSheet()
	const writers, total = 6, 60
	var (
		mu  sync.Mutex
		won = map[uint64]string{}
		wg  sync.WaitGroup
		ctx = context.Background()
	)
	for w := range writers {
		wg.Go(func() {
			l, _ := s.Log(sheet)
			next := uint64(0)
			for i := 0; ; i++ {
				if next >= total {
					return
				}
				b := fmt.Sprintf(`{"type":"x","writer":%d,"n":%d}`, w, i)
				// Now and then aim too high: that must never succeed.
				id := next
				if i%7 == 3 {
					id = next + 1
				}
				_, err := l.AddEntry(ctx, eventlog.SequenceID(id), eventlog.Entry{Body: []byte(b)}, nil)
				if err == nil {
					mu.Lock()
					if prev, dup := won[id]; dup {
						t.Errorf("two winners at %d: %s and %s", id, prev, b)
					}
					won[id] = b
					mu.Unlock()
					next = id + 1
					continue
				}
				var c *errs.ConflictError
				if !isErr[*errs.ConflictError](err) {
					t.Errorf("AddEntry(%d): %v", id, err)
					return
				}
				c = err.(*errs.ConflictError)
				next = c.NextSequenceID
			}
		})
	}
	wg.Wait()
	l, _ := s.Log(sheet)
	first, next, got := readAll(t, l)
	if first != 0 || next < total {
		t.Fatalf("log is [%d,%d), want [0,>=%d)", first, next, total)
	}
	if uint64(len(won)) != next {
		t.Fatalf("%d appends acknowledged, log has %d entries", len(won), next)
	}
	for id, b := range won {
		if string(got[id].Body) != b {
			t.Fatalf("entry %d is %s, acknowledged %s", id, got[id].Body, b)
		}
	}
}

// A query over more than DynamoDB's 1 MB page returns every entry: one
// store page stitched from several DynamoDB pages, and store pages
// followed to the end.
func TestLargeValues(t *testing.T) {
	f := newFixture(t)
	const n, size = 24, 100 << 10 // 2.4 MB
	big := func(i int) eventlog.Entry {
		pad := strings.Repeat(string(rune('a'+i%26)), size)
		return eventlog.Entry{Body: fmt.Appendf(nil, `{"type":"x","i":%d,"pad":"%s"}`, i, pad)}
	}
	sheet := newSheet()
	wide, _ := f.store(dynamo.Options{PageBytes: 8 << 20}).SheetLog(sheet)
	for i := range n {
		mustAdd(t, wide, i, big(i))
	}
	u := f.count.Measure(func() {
		p, err := wide.Query(context.Background(), eventlog.FromStart, eventlog.ToEnd, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Complete || len(p.Entries) != n {
			t.Fatalf("one 8 MB page: complete=%v with %d entries, want all %d", p.Complete, len(p.Entries), n)
		}
		for i, e := range p.Entries {
			if string(e.Body) != string(big(i).Body) {
				t.Fatalf("entry %d differs", i)
			}
		}
	})
	if u.Requests["Query"] < 3 {
		t.Errorf("2.4 MB read in %d Query requests: DynamoDB pages are 1 MB, so LastEvaluatedKey was not followed", u.Requests["Query"])
	}
	// With the default 2 MiB page bound, pages are bounded and follow on.
	def, _ := f.store(dynamo.Options{}).SheetLog(sheet)
	p, err := def.Query(context.Background(), eventlog.FromStart, eventlog.ToEnd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Complete || len(p.Entries) == 0 || len(p.Entries)*size > dynamo.DefaultPageBytes {
		t.Fatalf("default page: complete=%v with %d entries", p.Complete, len(p.Entries))
	}
	_, next, all := readAll(t, def)
	if next != n || len(all) != n {
		t.Fatalf("paged read: next %d with %d entries, want %d", next, len(all), n)
	}
}

// Page bounds by count and bytes.
func TestPageBounds(t *testing.T) {
	f := newFixture(t)
	sheet := newSheet()
	l, _ := f.store(dynamo.Options{PageEntries: 7}).SheetLog(sheet)
	for i := range 20 {
		mustAdd(t, l, i, entry(i))
	}
	p, err := l.Query(context.Background(), eventlog.FromID(3), eventlog.ToEnd, nil)
	if err != nil || p.Start != 3 || p.End != 10 || p.Complete || len(p.Entries) != 7 {
		t.Fatalf("page of 7 from 3: %+v %v", p, err)
	}
	p, err = l.Query(context.Background(), eventlog.FromID(3), eventlog.ToID(8), nil)
	if err != nil || p.End != 8 || !p.Complete {
		t.Fatalf("Query(3,8): %+v %v", p, err)
	}
	lb, _ := f.store(dynamo.Options{PageBytes: 3 * len(body(10))}).SheetLog(sheet)
	p, err = lb.Query(context.Background(), eventlog.FromID(10), eventlog.ToEnd, nil)
	if err != nil || len(p.Entries) < 2 || len(p.Entries) > 3 || p.Complete {
		t.Fatalf("byte-bounded page: %d entries, complete=%v, %v", len(p.Entries), p.Complete, err)
	}
	_, next, all := readAll(t, lb)
	if next != 20 || len(all) != 20 {
		t.Fatalf("paged: %d, %d", next, len(all))
	}
}

// The head's newest-snapshot pointer follows SetMetadata and Truncate.
func TestSnapshotPointer(t *testing.T) {
	f := newFixture(t)
	l := f.log(t, dynamo.Options{})
	ctx := context.Background()
	for i := range 12 {
		mustAdd(t, l, i, entry(i))
	}
	wantStart := func(want uint64, last *eventlog.SnapshotRef) {
		t.Helper()
		p, err := l.Query(ctx, eventlog.FromSnapshot, eventlog.ToEnd, eventlog.Known(999))
		if err != nil || uint64(p.Start) != want {
			t.Fatalf("FromSnapshot starts at %d (%v), want %d", p.Start, err, want)
		}
		if (p.LastSnapshot == nil) != (last == nil) || last != nil && *p.LastSnapshot != *last {
			t.Fatalf("lastSnapshot %+v, want %+v", p.LastSnapshot, last)
		}
		ls, err := l.AddEntry(ctx, 0, entry(0), eventlog.Known(999))
		if !isErr[*errs.ConflictError](err) || ls != nil {
			t.Fatalf("conflicting append replied %+v %v", ls, err)
		}
	}
	set := func(id uint64, u eventlog.MetadataUpdate) {
		t.Helper()
		if ok, err := l.SetMetadata(ctx, eventlog.SequenceID(id), u); err != nil || !ok {
			t.Fatalf("SetMetadata(%d): %v %v", id, ok, err)
		}
	}
	ref := func(id uint64, b string) *eventlog.SnapshotRef {
		return &eventlog.SnapshotRef{SequenceID: eventlog.SequenceID(id), BlobID: b}
	}
	wantStart(0, nil)
	set(5, eventlog.MetadataUpdate{Snapshot: eventlog.Set("s5")})
	wantStart(5, ref(5, "s5"))
	set(3, eventlog.MetadataUpdate{Snapshot: eventlog.Set("s3")}) // older: pointer stays
	wantStart(5, ref(5, "s5"))
	set(8, eventlog.MetadataUpdate{Snapshot: eventlog.Set("s8")})
	wantStart(8, ref(8, "s8"))
	set(8, eventlog.MetadataUpdate{Snapshot: eventlog.Set("s8b")})
	wantStart(8, ref(8, "s8b"))
	// An append reports the newest snapshot to a caller that knows another.
	ls, err := l.AddEntry(ctx, 12, entry(12), eventlog.Known(5))
	if err != nil || ls == nil || *ls != *ref(8, "s8b") {
		t.Fatalf("AddEntry lastSnapshot %+v %v", ls, err)
	}
	if ls, err := l.AddEntry(ctx, 13, entry(13), eventlog.Known(8)); err != nil || ls != nil {
		t.Fatalf("AddEntry knowing the newest: %+v %v", ls, err)
	}
	set(8, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()}) // the newest: falls back to 5
	wantStart(5, ref(5, "s5"))
	set(5, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()})
	wantStart(3, ref(3, "s3"))
	set(10, eventlog.MetadataUpdate{Snapshot: eventlog.Set("s10")})
	if err := l.Truncate(ctx, 4); err != nil {
		t.Fatal(err)
	}
	wantStart(10, ref(10, "s10"))
	set(10, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()}) // s3 is truncated
	wantStart(4, nil)
	set(6, eventlog.MetadataUpdate{Snapshot: eventlog.Set("s6")})
	if err := l.Truncate(ctx, 7); err != nil { // truncated past the newest snapshot
		t.Fatal(err)
	}
	wantStart(7, nil)
}

func TestTruncate(t *testing.T) {
	f := newFixture(t)
	l := f.log(t, dynamo.Options{})
	ctx := context.Background()
	if err := l.Truncate(ctx, 0); err != nil {
		t.Fatalf("Truncate(0) of an empty log: %v", err)
	}
	if err := l.Truncate(ctx, 1); !isErr[*errs.RangeError](err) {
		t.Fatalf("Truncate(1) of an empty log: %v", err)
	}
	for i := range 40 {
		mustAdd(t, l, i, entry(i))
	}
	if err := l.Truncate(ctx, 30); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []uint64{29, 41} {
		if err := l.Truncate(ctx, eventlog.SequenceID(bad)); !isErr[*errs.RangeError](err) {
			t.Errorf("Truncate(%d): %v, want RangeError", bad, err)
		}
	}
	if _, err := l.Query(ctx, eventlog.FromID(29), eventlog.ToEnd, nil); !isErr[*errs.RangeError](err) {
		t.Errorf("Query below first: %v", err)
	}
	if _, err := l.SetMetadata(ctx, 29, eventlog.MetadataUpdate{History: eventlog.Set("h")}); !isErr[*errs.RangeError](err) {
		t.Errorf("SetMetadata below first: %v", err)
	}
	first, next, got := readAll(t, l)
	if first != 30 || next != 40 || len(got) != 10 || string(got[0].Body) != string(body(30)) {
		t.Fatalf("after Truncate(30): [%d,%d) %d entries", first, next, len(got))
	}
	// The truncated items are gone from the table, not just hidden.
	out, err := f.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(f.table),
		KeyConditionExpression:    aws.String("#s = :s AND #q BETWEEN :a AND :b"),
		ExpressionAttributeNames:  map[string]string{"#s": "sheet", "#q": "seq"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: l.Sheet()}, ":a": &types.AttributeValueMemberN{Value: "0"}, ":b": &types.AttributeValueMemberN{Value: "29"}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil || len(out.Items) != 0 {
		t.Fatalf("%d items below first remain (%v)", len(out.Items), err)
	}
	if err := l.Truncate(ctx, 40); err != nil {
		t.Fatal(err)
	}
	p, err := l.Query(ctx, eventlog.FromStart, eventlog.ToEnd, nil)
	if err != nil || p.Start != 40 || p.End != 40 || !p.Complete {
		t.Fatalf("empty log after Truncate(next): %+v %v", p, err)
	}
	mustAdd(t, l, 40, entry(40)) // ids are never reused
	if _, err := l.AddEntry(ctx, 0, entry(0), nil); !isErr[*errs.ConflictError](err) {
		t.Fatalf("append at 0 after truncation: %v", err)
	}
}

// The workflow completion is conditional, and a condition that does not
// hold is a plain false, never an error; the pending index lists what is
// outstanding, across sheets.
func TestCompletionAndPending(t *testing.T) {
	f := newFixture(t)
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { return now }
	s := f.store(dynamo.Options{Now: clock})
	ctx := context.Background()
	a, _ := s.SheetLog(newSheet())
	b, _ := s.SheetLog(newSheet())
	pending := eventlog.Entry{Body: body(1), Metadata: eventlog.Metadata{Pending: eventlog.WorkflowSnapshot}}
	mustAdd(t, a, 0, entry(0))
	mustAdd(t, a, 1, pending)
	now = now.Add(time.Minute)
	mustAdd(t, b, 0, pending)
	mustAdd(t, b, 1, entry(1))
	if ok, err := b.SetMetadata(ctx, 1, eventlog.MetadataUpdate{Pending: eventlog.Set("other")}); err != nil || !ok {
		t.Fatalf("set pending: %v %v", ok, err)
	}

	list := func(olderThan time.Time) []string {
		t.Helper()
		ps, err := s.PendingBefore(ctx, olderThan)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%s/%d/%s", p.Sheet, p.SequenceID, p.Workflow))
		}
		slices.Sort(out)
		return out
	}
	all := []string{a.Sheet() + "/1/snapshot", b.Sheet() + "/0/snapshot", b.Sheet() + "/1/other"}
	slices.Sort(all)
	if got := list(now.Add(time.Second)); !slices.Equal(got, all) {
		t.Fatalf("pending = %v, want %v", got, all)
	}
	if got := list(now.Add(-time.Second)); !slices.Equal(got, []string{a.Sheet() + "/1/snapshot"}) {
		t.Fatalf("pending older than a minute = %v", got)
	}
	// Each entry says since when it is pending (the sweeper's oldest
	// pending age).
	ps, err := s.PendingBefore(ctx, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		want := now
		if p.Sheet == a.Sheet() {
			want = now.Add(-time.Minute)
		}
		if !p.Since.Equal(want) {
			t.Errorf("%s/%d pending since %v, want %v", p.Sheet, p.SequenceID, p.Since, want)
		}
	}
	// The index key: the entry's shard, set with pending (by the append
	// and by SetMetadata alike), removed with it.
	for _, k := range []struct {
		sheet string
		seq   int
	}{{a.Sheet(), 1}, {b.Sheet(), 0}, {b.Sheet(), 1}} {
		it := rawItem(t, f, k.sheet, k.seq)
		want := strconv.Itoa(awsschema.PendingShard(k.sheet, uint64(k.seq)))
		if sh, ok := it[awsschema.AttrPendingShard].(*types.AttributeValueMemberN); !ok || sh.Value != want {
			t.Errorf("%s/%d: %s = %v, want %s", k.sheet, k.seq, awsschema.AttrPendingShard, it[awsschema.AttrPendingShard], want)
		}
	}
	if _, ok := rawItem(t, f, a.Sheet(), 0)[awsschema.AttrPendingShard]; ok {
		t.Errorf("an entry without pending has %s", awsschema.AttrPendingShard)
	}

	done := eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "snap-1")
	if ok, err := a.SetMetadata(ctx, 1, done); err != nil || !ok {
		t.Fatalf("completion: %v %v", ok, err)
	}
	// A completion that does not apply changes nothing at all: moto must
	// roll back the head update that precedes the failed condition in the
	// same transaction.
	headBefore := rawItem(t, f, a.Sheet(), -1)
	if ok, err := a.SetMetadata(ctx, 1, done); err != nil || ok {
		t.Fatalf("duplicate completion: %v %v, want false, nil", ok, err)
	}
	if headAfter := rawItem(t, f, a.Sheet(), -1); !reflect.DeepEqual(headBefore, headAfter) {
		t.Fatalf("a completion that did not apply changed the head:\n%v\n%v", headBefore, headAfter)
	}
	if ok, err := a.SetMetadata(ctx, 0, done); err != nil || ok {
		t.Fatalf("completion where nothing is pending: %v %v, want false, nil", ok, err)
	}
	if ok, err := b.SetMetadata(ctx, 1, done); err != nil || ok {
		t.Fatalf("completion of another workflow: %v %v, want false, nil", ok, err)
	}
	_, _, got := readAll(t, a)
	if got[1].Metadata != (eventlog.Metadata{Snapshot: "snap-1"}) {
		t.Fatalf("after completion: %+v", got[1].Metadata)
	}
	p, err := a.Query(ctx, eventlog.FromSnapshot, eventlog.ToEnd, eventlog.Known(0))
	if err != nil || p.Start != 1 || p.LastSnapshot == nil || p.LastSnapshot.BlobID != "snap-1" {
		t.Fatalf("FromSnapshot after completion: %+v %v", p, err)
	}
	want := []string{b.Sheet() + "/0/snapshot", b.Sheet() + "/1/other"}
	if got := list(now.Add(time.Second)); !slices.Equal(got, want) {
		t.Fatalf("pending after completion = %v, want %v", got, want)
	}
	for _, attr := range []string{awsschema.AttrPendingShard, awsschema.AttrPendingSince} {
		if v, ok := rawItem(t, f, a.Sheet(), 1)[attr]; ok {
			t.Errorf("the completed entry still has %s = %v: it stays in the pending index", attr, v)
		}
	}
}

// rawItem reads one item of the table as stored.
func rawItem(t *testing.T, f *fixture, sheet string, seq int) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(f.table),
		Key: map[string]types.AttributeValue{
			"sheet": &types.AttributeValueMemberS{Value: sheet},
			"seq":   &types.AttributeValueMemberN{Value: fmt.Sprint(seq)},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// Several completions of one workflow race: exactly one applies.
func TestRacingCompletions(t *testing.T) {
	f := newFixture(t)
	l := f.log(t, dynamo.Options{})
	ctx := context.Background()
	mustAdd(t, l, 0, eventlog.Entry{Body: body(0), Metadata: eventlog.Metadata{Pending: "snapshot"}})
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for i := range 6 {
		wg.Go(func() {
			ok, err := l.SetMetadata(ctx, 0, eventlog.CompleteWorkflow("snapshot", fmt.Sprint("blob-", i)))
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				applied++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if applied != 1 {
		t.Fatalf("%d completions applied, want 1", applied)
	}
}
