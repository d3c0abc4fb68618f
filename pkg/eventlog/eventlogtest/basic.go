package eventlogtest

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

var (
	allFroms = []eventlog.From{eventlog.FromStart, eventlog.FromSnapshot}
	allKnown = []*eventlog.SequenceID{nil, known(0), known(3)}
)

func (s *suite) testEmptyLog(t *testing.T) {
	t.Run("Queries", func(t *testing.T) {
		h := s.fresh(t)
		froms := []eventlog.From{eventlog.FromStart, eventlog.FromSnapshot, from(0)}
		tos := []eventlog.To{eventlog.ToEnd, to(0), to(1), to(5), to(math.MaxUint64)}
		for _, f := range froms {
			for _, e := range tos {
				for _, k := range allKnown {
					what := fmt.Sprintf("Query(%s, %s%s)", describeFrom(f), describeTo(e), describeKnown(k))
					p := h.query(f, e, k)
					h.wantEmptyPage(p, 0, what)
					h.wantLast(p.LastSnapshot, nil, what+" on a log with no snapshot")
				}
			}
		}
		for _, id := range []uint64{1, 2, 1000, math.MaxUint64} {
			for _, e := range tos {
				_, err := h.log.Query(h.ctx, from(id), e, nil)
				h.wantRange(err, fmt.Sprintf("Query(%d, %s) on an empty log", id, describeTo(e)))
			}
		}
	})
	t.Run("Truncate", func(t *testing.T) {
		h := s.fresh(t)
		h.truncate(0)
		h.truncate(0)
		for _, id := range []uint64{1, 1000, math.MaxUint64} {
			h.wantRange(h.log.Truncate(h.ctx, eventlog.SequenceID(id)), fmt.Sprintf("Truncate(%d) on an empty log", id))
		}
		h.expect(0, nil)
	})
	t.Run("SetMetadata", func(t *testing.T) {
		h := s.fresh(t)
		for _, id := range []uint64{0, 1, 1000, math.MaxUint64} {
			for _, u := range []eventlog.MetadataUpdate{
				{Snapshot: eventlog.Set("s")},
				{},
				eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "s"),
			} {
				_, err := h.log.SetMetadata(h.ctx, eventlog.SequenceID(id), u)
				h.wantRange(err, fmt.Sprintf("SetMetadata(%d) on an empty log", id))
			}
		}
		h.expect(0, nil)
	})
	t.Run("AddEntry", func(t *testing.T) {
		h := s.fresh(t)
		for _, id := range []uint64{1, 2, 1000, math.MaxUint64} {
			_, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(id), entry(0), nil)
			h.wantConflict(err, fmt.Sprintf("AddEntry(%d) on an empty log", id), 0)
		}
		h.expect(0, nil)
		for _, k := range allKnown {
			h2 := s.fresh(t)
			last, err := h2.log.AddEntry(h2.ctx, 0, entry(0), k)
			if err != nil {
				t.Fatalf("AddEntry(0) on an empty log: %v", err)
			}
			h2.wantLast(last, nil, "AddEntry(0"+describeKnown(k)+") on a log with no snapshot")
			h2.expect(0, entries(0, 1))
		}
	})
}

func (s *suite) testAppend(t *testing.T) {
	h := s.fresh(t)
	for i := range 5 {
		last, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(i), entry(i), nil)
		if err != nil {
			t.Fatalf("AddEntry(%d): %v", i, err)
		}
		h.wantLast(last, nil, "AddEntry with no known snapshot")
		h.expect(0, entries(0, i+1))
		// The entry is immediately visible to a query from its own id.
		p := h.query(from(uint64(i)), eventlog.ToEnd, nil)
		if len(p.Entries) != 1 || !bytes.Equal(p.Entries[0].Body, body(i)) || !p.Complete || p.End != eventlog.SequenceID(i+1) {
			t.Fatalf("Query(%d, End) after AddEntry(%d) = [%d,%d) %d entries", i, i, p.Start, p.End, len(p.Entries))
		}
	}
}

func (s *suite) testAppendConflicts(t *testing.T) {
	setup := func(t *testing.T) *harness {
		h := s.fresh(t)
		h.fill(0, 5)
		return h
	}
	try := func(t *testing.T, h *harness, id uint64, next uint64) {
		t.Helper()
		_, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(id), entry(100+int(id%100)), known(0))
		h.wantConflict(err, fmt.Sprintf("AddEntry(%d) with next %d", id, next), next)
	}
	t.Run("TooLow", func(t *testing.T) {
		h := setup(t)
		for _, id := range []uint64{0, 1, 3} {
			try(t, h, id, 5)
		}
		h.expect(0, entries(0, 5))
	})
	t.Run("Duplicate", func(t *testing.T) {
		h := setup(t)
		try(t, h, 4, 5)
		_, err := h.log.AddEntry(h.ctx, 4, entry(4), nil) // the very same entry again
		h.wantConflict(err, "re-appending the last entry", 5)
		h.expect(0, entries(0, 5))
	})
	t.Run("TooHigh", func(t *testing.T) {
		h := setup(t)
		for _, id := range []uint64{6, 7, 1005, math.MaxUint64} {
			try(t, h, id, 5)
		}
		h.expect(0, entries(0, 5))
		// Nothing was reserved by the failed appends: the next one is
		// still 5, and 6 still fails after it.
		h.add(5, entry(5))
		try(t, h, 7, 6)
		h.expect(0, entries(0, 6))
	})
	t.Run("BelowTruncatedStart", func(t *testing.T) {
		h := setup(t)
		h.truncate(3)
		for _, id := range []uint64{0, 2, 3, 4} {
			try(t, h, id, 5)
		}
		h.expect(3, entries(3, 5))
	})
	t.Run("ConflictIsRepeatable", func(t *testing.T) {
		// A failed append learns the next id, and appending there works.
		h := setup(t)
		_, err := h.log.AddEntry(h.ctx, 2, entry(9), nil)
		h.wantConflict(err, "AddEntry(2)", 5)
		h.add(5, entry(9))
		h.expect(0, append(entries(0, 5), entry(9)))
	})
}

func (s *suite) testAppendValidation(t *testing.T) {
	bad := []struct{ name, body string }{
		{"Empty", ``},
		{"Whitespace", `   `},
		{"Null", `null`},
		{"Array", `[{"type":"X"}]`},
		{"String", `"SetCellValueAndFormat"`},
		{"Number", `42`},
		{"NotJSON", `{"type":"X"`},
		{"TrailingGarbage", `{"type":"X"} {}`},
		{"NoType", `{}`},
		{"NoTypeWithFields", `{"row":1,"column":2}`},
		{"TypeNotString", `{"type":1}`},
		{"TypeNull", `{"type":null}`},
		{"TypeEmpty", `{"type":""}`},
		{"SnapshotInBody", `{"type":"X","snapshot":"blob"}`},
		{"HistoryInBody", `{"type":"X","history":"h"}`},
		{"PendingInBody", `{"type":"X","pending":"snapshot"}`},
		{"EmptyMetadataValueInBody", `{"type":"X","pending":""}`},
		{"NullMetadataValueInBody", `{"type":"X","snapshot":null}`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			h := s.fresh(t)
			h.fill(0, 2)
			// Validation comes first: a malformed entry is refused as such
			// whatever id it is sent at.
			for _, id := range []uint64{2, 0, 3} {
				_, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(id), eventlog.Entry{Body: []byte(b.body)}, nil)
				h.wantValidation(err, fmt.Sprintf("AddEntry(%d, %q)", id, b.body))
			}
			h.expect(0, entries(0, 2))
			h.add(2, entry(2))
		})
	}
	t.Run("MetadataUpdate", func(t *testing.T) {
		h := s.fresh(t)
		h.add(0, eventlog.Entry{Body: body(0), Metadata: eventlog.Metadata{Pending: "p"}})
		for _, u := range []eventlog.MetadataUpdate{
			{Snapshot: eventlog.Set("")},
			{History: eventlog.Set("")},
			{Pending: eventlog.Set("")},
			{Snapshot: eventlog.Set("ok"), Pending: eventlog.Set("")},
		} {
			for _, id := range []uint64{0, 1, 7} {
				_, err := h.log.SetMetadata(h.ctx, eventlog.SequenceID(id), u)
				h.wantValidation(err, fmt.Sprintf("SetMetadata(%d) setting a field to the empty string", id))
			}
		}
		h.expect(0, []eventlog.Entry{{Body: body(0), Metadata: eventlog.Metadata{Pending: "p"}}})
	})
}

func (s *suite) testBodyRoundTrip(t *testing.T) {
	bodies := []string{
		`{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1,"format":"0.00"}`,
		`{"type":"SetCellValueAndFormat","row":3,"column":2,"value":{"type":"CellError","value":"#DIV/0!"}}`,
		`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":null}`,
		// Unknown types and unknown fields are the log's business only
		// as bytes.
		`{"type":"SomethingFromTheFuture","x":[1,2,{"y":null}],"z":{"deep":{"deeper":[]}}}`,
		`{"column":9,"type":"SetCellValueAndFormat","row":9,"extra":"kept","value":true}`,
		// Spelling that a decode and re-encode would change.
		`{ "type" : "X",  "n":1.50, "m":1e3, "k":-0, "big":123456789012345678901234567890, "e":"\u00e9\/\n" }`,
		"{\"type\":\"X\",\n\t\"unicode\":\"π≈3.14 🎉\",\"escaped\":\"\\ud83c\\udf89\"}",
		` {"type":"X"} `,
		`{"type":"X","dup":1,"dup":2}`,
	}
	h := s.fresh(t)
	var want []eventlog.Entry
	for i, b := range bodies {
		buf := []byte(b)
		h.add(uint64(i), eventlog.Entry{Body: buf})
		// The log must have copied the body: the caller may reuse its
		// buffer at once.
		for j := range buf {
			buf[j] = 'x'
		}
		want = append(want, eventlog.Entry{Body: []byte(b)})
	}
	h.expect(0, want)
	// Nor may a returned body alias stored data.
	p := h.query(eventlog.FromStart, eventlog.ToEnd, nil)
	for _, e := range p.Entries {
		for j := range e.Body {
			e.Body[j] = 'y'
		}
		_ = append(e.Body, "zzzz"...)
	}
	h.expect(0, want)
}

func (s *suite) testLargeEntries(t *testing.T) {
	large := func(n int) []byte {
		pad := strings.Repeat(string(rune('a'+n%26)), s.cfg.largeEntryBytes)
		return fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":0,"value":%q}`, n, pad)
	}
	h := s.fresh(t)
	h.add(0, entry(0))
	h.add(1, eventlog.Entry{Body: large(1)})
	h.expect(0, []eventlog.Entry{entry(0), {Body: large(1)}})
	// Enough of them to exceed any sensible byte bound on a page: the
	// log must page them, and still return every one whole.
	n := max(12, (2<<20)/s.cfg.largeEntryBytes)
	want := []eventlog.Entry{entry(0), {Body: large(1)}}
	for i := 2; i < n; i++ {
		h.add(uint64(i), eventlog.Entry{Body: large(i)})
		want = append(want, eventlog.Entry{Body: large(i)})
	}
	h.expect(0, want)
	// And a batch of them.
	var batch []eventlog.Entry
	for i := n; i < n+4; i++ {
		batch = append(batch, eventlog.Entry{Body: large(i)})
	}
	h.addBatch(uint64(n), batch)
	h.expect(0, append(want, batch...))
}

func (s *suite) testAppendWithMetadata(t *testing.T) {
	mds := []eventlog.Metadata{
		{Pending: eventlog.WorkflowSnapshot},
		{Snapshot: "0/blob"},
		{History: "hist"},
		{Snapshot: "s", History: "h", Pending: "p"},
		{},
	}
	h := s.fresh(t)
	var want []eventlog.Entry
	for i, md := range mds {
		e := eventlog.Entry{Body: body(i), Metadata: md}
		h.add(uint64(i), e)
		want = append(want, e)
	}
	h.expect(0, want)
	// The entry appended with a snapshot is the newest snapshot.
	p := h.query(eventlog.FromSnapshot, eventlog.ToEnd, known(0))
	if p.Start != 3 {
		t.Fatalf("Query(Snapshot) starts at %d, want 3 (the newest entry appended with a snapshot)", p.Start)
	}
	h.wantLast(p.LastSnapshot, ref(3, "s"), "Query(Snapshot, End, known=0)")
	last, err := h.log.AddEntry(h.ctx, 5, eventlog.Entry{Body: body(5), Metadata: eventlog.Metadata{Snapshot: "five"}}, known(3))
	if err != nil {
		t.Fatal(err)
	}
	// The reply describes the log after the append.
	h.wantLast(last, ref(5, "five"), "AddEntry(5) with a snapshot, known=3")
	last, err = h.log.AddEntry(h.ctx, 6, eventlog.Entry{Body: body(6), Metadata: eventlog.Metadata{Snapshot: "six"}}, known(6))
	if err != nil {
		t.Fatal(err)
	}
	h.wantLast(last, nil, "AddEntry(6) with a snapshot, known=6")
}

func (s *suite) testMetadata(t *testing.T) {
	// Five entries; entry 2 starts with every field set.
	full := eventlog.Metadata{Snapshot: "s0", History: "h0", Pending: "p0"}
	setup := func(t *testing.T) (*harness, []eventlog.Entry) {
		h := s.fresh(t)
		want := entries(0, 5)
		want[2].Metadata = full
		for i, e := range want {
			h.add(uint64(i), e)
		}
		return h, want
	}
	apply := func(t *testing.T, h *harness, want []eventlog.Entry, id uint64, u eventlog.MetadataUpdate, md eventlog.Metadata) {
		t.Helper()
		if !h.setMetadata(id, u) {
			t.Fatalf("SetMetadata(%d) reported not applied", id)
		}
		want[id].Metadata = md
		h.expect(0, want)
	}

	t.Run("SetEachField", func(t *testing.T) {
		h, want := setup(t)
		apply(t, h, want, 1, eventlog.MetadataUpdate{Snapshot: eventlog.Set("a")}, eventlog.Metadata{Snapshot: "a"})
		apply(t, h, want, 1, eventlog.MetadataUpdate{History: eventlog.Set("b")}, eventlog.Metadata{Snapshot: "a", History: "b"})
		apply(t, h, want, 1, eventlog.MetadataUpdate{Pending: eventlog.Set("c")}, eventlog.Metadata{Snapshot: "a", History: "b", Pending: "c"})
		apply(t, h, want, 1, eventlog.MetadataUpdate{Snapshot: eventlog.Set("a2")}, eventlog.Metadata{Snapshot: "a2", History: "b", Pending: "c"})
		apply(t, h, want, 2, eventlog.MetadataUpdate{History: eventlog.Set("h1")}, eventlog.Metadata{Snapshot: "s0", History: "h1", Pending: "p0"})
	})
	t.Run("ClearEachField", func(t *testing.T) {
		h, want := setup(t)
		apply(t, h, want, 2, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()}, eventlog.Metadata{History: "h0", Pending: "p0"})
		apply(t, h, want, 2, eventlog.MetadataUpdate{Pending: eventlog.Clear()}, eventlog.Metadata{History: "h0"})
		apply(t, h, want, 2, eventlog.MetadataUpdate{History: eventlog.Clear()}, eventlog.Metadata{})
		// Clearing an absent field is allowed and changes nothing.
		apply(t, h, want, 2, eventlog.MetadataUpdate{History: eventlog.Clear(), Pending: eventlog.Clear()}, eventlog.Metadata{})
		apply(t, h, want, 0, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()}, eventlog.Metadata{})
	})
	t.Run("LeaveAlone", func(t *testing.T) {
		h, want := setup(t)
		apply(t, h, want, 2, eventlog.MetadataUpdate{}, full)
		apply(t, h, want, 0, eventlog.MetadataUpdate{}, eventlog.Metadata{})
		apply(t, h, want, 2, eventlog.MetadataUpdate{Snapshot: eventlog.Keep(), History: eventlog.Set("h1"), Pending: eventlog.Keep()},
			eventlog.Metadata{Snapshot: "s0", History: "h1", Pending: "p0"})
	})
	t.Run("AtomicMultiField", func(t *testing.T) {
		h, want := setup(t)
		apply(t, h, want, 3, eventlog.MetadataUpdate{Snapshot: eventlog.Set("x"), History: eventlog.Set("y"), Pending: eventlog.Set("z")},
			eventlog.Metadata{Snapshot: "x", History: "y", Pending: "z"})
		apply(t, h, want, 3, eventlog.MetadataUpdate{Snapshot: eventlog.Set("x2"), History: eventlog.Clear(), Pending: eventlog.Set("z2")},
			eventlog.Metadata{Snapshot: "x2", Pending: "z2"})
		apply(t, h, want, 2, eventlog.MetadataUpdate{Snapshot: eventlog.Clear(), History: eventlog.Clear(), Pending: eventlog.Clear()}, eventlog.Metadata{})
		apply(t, h, want, 2, eventlog.MetadataUpdate{Snapshot: eventlog.Set("s"), Pending: eventlog.Set("p")}, eventlog.Metadata{Snapshot: "s", Pending: "p"})
		// Completing a workflow: clear pending and set snapshot in one
		// write.
		apply(t, h, want, 2, eventlog.MetadataUpdate{Snapshot: eventlog.Set("done"), Pending: eventlog.Clear()}, eventlog.Metadata{Snapshot: "done"})
	})
	t.Run("Range", func(t *testing.T) {
		h, want := setup(t)
		h.truncate(1)
		want = want[1:]
		for _, id := range []uint64{0, 5, 6, 1000, math.MaxUint64} {
			for _, u := range []eventlog.MetadataUpdate{
				{Snapshot: eventlog.Set("x")},
				{Pending: eventlog.Clear()},
				{},
				eventlog.CompleteWorkflow("p0", "x"),
			} {
				_, err := h.log.SetMetadata(h.ctx, eventlog.SequenceID(id), u)
				h.wantRange(err, fmt.Sprintf("SetMetadata(%d) on the log [1,5)", id))
			}
		}
		h.expect(1, want)
		// Both ends of [start, next) are in range.
		for _, id := range []uint64{1, 4} {
			if !h.setMetadata(id, eventlog.MetadataUpdate{History: eventlog.Set("edge")}) {
				t.Fatalf("SetMetadata(%d) on the log [1,5) reported not applied", id)
			}
			want[id-1].History = "edge"
		}
		h.expect(1, want)
	})
	t.Run("Conditional", func(t *testing.T) {
		h, want := setup(t)
		h.add(5, eventlog.Entry{Body: body(5), Metadata: eventlog.Metadata{Pending: eventlog.WorkflowSnapshot}})
		want = append(want, eventlog.Entry{Body: body(5), Metadata: eventlog.Metadata{Pending: eventlog.WorkflowSnapshot}})
		notApplied := func(id uint64, u eventlog.MetadataUpdate, what string) {
			t.Helper()
			applied, err := h.log.SetMetadata(h.ctx, eventlog.SequenceID(id), u)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if applied {
				t.Fatalf("%s: reported applied", what)
			}
			h.expect(0, want)
		}
		notApplied(0, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "x"), "completion where pending is absent")
		notApplied(2, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "x"), "completion where pending names another workflow")
		notApplied(5, eventlog.CompleteWorkflow("snap", "x"), "completion of a workflow whose name is a prefix")
		notApplied(5, eventlog.MetadataUpdate{History: eventlog.Set("h"), IfPending: "other"}, "conditional history update")

		apply(t, h, want, 5, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "5/index"), eventlog.Metadata{Snapshot: "5/index"})
		// A duplicate or stale completion does nothing, not even to a
		// snapshot set meanwhile.
		notApplied(5, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "5/other"), "duplicate completion")

		// A condition may guard an update that leaves pending alone.
		apply(t, h, want, 2, eventlog.MetadataUpdate{History: eventlog.Set("h2"), IfPending: "p0"}, eventlog.Metadata{Snapshot: "s0", History: "h2", Pending: "p0"})
		apply(t, h, want, 2, eventlog.MetadataUpdate{IfPending: "p0"}, eventlog.Metadata{Snapshot: "s0", History: "h2", Pending: "p0"})
		apply(t, h, want, 2, eventlog.MetadataUpdate{Pending: eventlog.Set("p1"), IfPending: "p0"}, eventlog.Metadata{Snapshot: "s0", History: "h2", Pending: "p1"})
		notApplied(2, eventlog.MetadataUpdate{Pending: eventlog.Clear(), IfPending: "p0"}, "condition on the old pending value")
	})
	t.Run("BodyNeverTouched", func(t *testing.T) {
		h, want := setup(t)
		for i, u := range []eventlog.MetadataUpdate{
			{Snapshot: eventlog.Set("a"), History: eventlog.Set("b"), Pending: eventlog.Set("c")},
			{Snapshot: eventlog.Clear(), History: eventlog.Clear(), Pending: eventlog.Clear()},
			{Snapshot: eventlog.Set(`{"type":"Y"}`)},
			eventlog.CompleteWorkflow("p0", "z"),
		} {
			for id := range 5 {
				if _, err := h.log.SetMetadata(h.ctx, eventlog.SequenceID(id), u); err != nil {
					t.Fatalf("update %d of entry %d: %v", i, id, err)
				}
			}
		}
		_, _, got, _ := h.queryAll(eventlog.FromStart, eventlog.ToEnd, nil)
		for i := range want {
			if !bytes.Equal(got[i].Body, want[i].Body) {
				t.Fatalf("entry %d body is %s after metadata updates, want %s", i, got[i].Body, want[i].Body)
			}
		}
	})
}

func (s *suite) testTruncate(t *testing.T) {
	setup := func(t *testing.T) *harness {
		h := s.fresh(t)
		h.fill(0, 8)
		return h
	}
	t.Run("AtFirstIsNoOp", func(t *testing.T) {
		h := setup(t)
		h.truncate(0)
		h.expect(0, entries(0, 8))
		h.truncate(3)
		h.truncate(3)
		h.expect(3, entries(3, 8))
	})
	t.Run("BelowFirst", func(t *testing.T) {
		h := setup(t)
		h.truncate(4)
		for _, id := range []uint64{0, 3} {
			h.wantRange(h.log.Truncate(h.ctx, eventlog.SequenceID(id)), fmt.Sprintf("Truncate(%d) of the log [4,8)", id))
		}
		h.expect(4, entries(4, 8))
	})
	t.Run("AboveNext", func(t *testing.T) {
		h := setup(t)
		for _, id := range []uint64{9, 10, 1000, math.MaxUint64} {
			h.wantRange(h.log.Truncate(h.ctx, eventlog.SequenceID(id)), fmt.Sprintf("Truncate(%d) of the log [0,8)", id))
		}
		h.expect(0, entries(0, 8))
	})
	t.Run("Middle", func(t *testing.T) {
		h := setup(t)
		h.truncate(5)
		h.expect(5, entries(5, 8))
		h.add(8, entry(8))
		h.expect(5, entries(5, 9))
		h.truncate(6)
		h.expect(6, entries(6, 9))
	})
	t.Run("AtNext", func(t *testing.T) {
		h := setup(t)
		h.truncate(8)
		h.expect(8, nil)
		for _, f := range []eventlog.From{eventlog.FromStart, eventlog.FromSnapshot, from(8)} {
			for _, k := range allKnown {
				h.wantEmptyPage(h.query(f, eventlog.ToEnd, k), 8, "query of the emptied log [8,8)")
			}
		}
		h.truncate(8)
		// Ids are never reused: the next append is still at 8.
		for _, id := range []uint64{0, 7, 9} {
			_, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(id), entry(int(id)), nil)
			h.wantConflict(err, fmt.Sprintf("AddEntry(%d) on the emptied log [8,8)", id), 8)
		}
		_, err := h.log.SetMetadata(h.ctx, 7, eventlog.MetadataUpdate{})
		h.wantRange(err, "SetMetadata(7) on the emptied log [8,8)")
		h.add(8, entry(8))
		h.expect(8, entries(8, 9))
		h.truncate(9)
		h.expect(9, nil)
		h.add(9, entry(9))
		h.expect(9, entries(9, 10))
	})
	t.Run("QueriesAfterTruncate", func(t *testing.T) {
		h := setup(t)
		h.truncate(3)
		for _, id := range []uint64{0, 2} {
			_, err := h.log.Query(h.ctx, from(id), eventlog.ToEnd, nil)
			h.wantRange(err, fmt.Sprintf("Query(%d) of the log [3,8)", id))
			_, err = h.log.Query(h.ctx, from(id), to(1), nil)
			h.wantRange(err, fmt.Sprintf("Query(%d, 1) of the log [3,8)", id))
			_, err = h.log.SetMetadata(h.ctx, eventlog.SequenceID(id), eventlog.MetadataUpdate{History: eventlog.Set("x")})
			h.wantRange(err, fmt.Sprintf("SetMetadata(%d) of the log [3,8)", id))
		}
		for _, f := range allFroms {
			start, end, got, _ := h.queryAll(f, eventlog.ToEnd, nil)
			if start != 3 || end != 8 || len(got) != 5 {
				t.Fatalf("Query(%s) of the log [3,8) = [%d,%d)", describeFrom(f), start, end)
			}
		}
		h.wantEmptyPage(h.query(eventlog.FromStart, to(2), nil), 3, "Query(Start, 2) of the log [3,8)")
		h.wantEmptyPage(h.query(eventlog.FromStart, to(3), nil), 3, "Query(Start, 3) of the log [3,8)")
		p := h.query(from(3), to(4), nil)
		if p.Start != 3 || p.End != 4 || !p.Complete || len(p.Entries) != 1 || !bytes.Equal(p.Entries[0].Body, body(3)) {
			t.Fatalf("Query(3, 4) of the log [3,8) = [%d,%d) complete=%v", p.Start, p.End, p.Complete)
		}
	})
}

func (s *suite) testQuery(t *testing.T) {
	t.Run("Ranges", func(t *testing.T) {
		// Every numeric [a, b) around a log [2, 6), against the model.
		h := s.fresh(t)
		h.fill(0, 6)
		h.truncate(2)
		m := mState{first: 2}
		for i := 2; i < 6; i++ {
			m.entries = append(m.entries, mEntry{body: string(body(i))})
		}
		for a := uint64(0); a <= 8; a++ {
			for b := uint64(0); b <= 9; b++ {
				for _, tt := range []eventlog.To{to(b), eventlog.ToEnd} {
					o := op{kind: opQuery, from: from(a), to: tt}
					_, want := step(m, o)
					if want.errTag != "" {
						got := call(h.ctx, h.log, o)
						if err := matches(o, want, got); err != nil {
							t.Fatalf("%s: %v", o, err)
						}
						continue
					}
					start, end, got, _ := h.queryAll(o.from, o.to, nil)
					if start != uint64(want.page.Start) || end != uint64(want.page.End) || len(got) != len(want.page.Entries) {
						t.Fatalf("%s read [%d,%d) with %d entries, want [%d,%d)", o, start, end, len(got), want.page.Start, want.page.End)
					}
					for i := range got {
						if !bytes.Equal(got[i].Body, want.page.Entries[i].Body) {
							t.Fatalf("%s: entry %d is %s, want %s", o, start+uint64(i), got[i].Body, want.page.Entries[i].Body)
						}
					}
				}
			}
		}
	})
	t.Run("StartAtNext", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 3)
		for _, e := range []eventlog.To{eventlog.ToEnd, to(3), to(4), to(0), to(math.MaxUint64)} {
			h.wantEmptyPage(h.query(from(3), e, nil), 3, "Query(3, "+describeTo(e)+") of [0,3)")
		}
	})
	t.Run("EndAtOrBelowStart", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 5)
		for _, a := range []uint64{0, 2, 4} {
			for _, b := range []uint64{0, a / 2, a} {
				h.wantEmptyPage(h.query(from(a), to(b), nil), a, fmt.Sprintf("Query(%d, %d)", a, b))
			}
		}
		h.wantEmptyPage(h.query(eventlog.FromStart, to(0), nil), 0, "Query(Start, 0)")
	})
	t.Run("EndBeyondNextIsClamped", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 5)
		for _, b := range []uint64{6, 100, math.MaxUint64} {
			start, end, got, _ := h.queryAll(from(1), to(b), nil)
			if start != 1 || end != 5 || len(got) != 4 {
				t.Fatalf("Query(1, %d) of [0,5) read [%d,%d)", b, start, end)
			}
		}
	})
	t.Run("StartAboveNext", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 5)
		for _, a := range []uint64{6, 7, 1000, math.MaxUint64} {
			for _, e := range []eventlog.To{eventlog.ToEnd, to(0), to(a), to(math.MaxUint64)} {
				_, err := h.log.Query(h.ctx, from(a), e, known(0))
				h.wantRange(err, fmt.Sprintf("Query(%d, %s) of [0,5)", a, describeTo(e)))
			}
		}
	})
	t.Run("Paging", func(t *testing.T) {
		n := s.cfg.pagingEntries
		h := s.fresh(t)
		h.fill(0, n)
		// Some metadata, so that pages carry it too.
		want := entries(0, n)
		for i := 0; i < n; i += 17 {
			md := eventlog.Metadata{Snapshot: fmt.Sprintf("s%d", i), History: "h"}
			h.setMetadata(uint64(i), eventlog.MetadataUpdate{Snapshot: eventlog.Set(md.Snapshot), History: eventlog.Set(md.History)})
			want[i].Metadata = md
		}
		h.expect(0, want)
		check := func(f eventlog.From, e eventlog.To, wantStart, wantEnd int) {
			t.Helper()
			start, end, got, _ := h.queryAll(f, e, nil)
			if start != uint64(wantStart) || end != uint64(wantEnd) {
				t.Fatalf("paging Query(%s, %s) read [%d,%d), want [%d,%d)", describeFrom(f), describeTo(e), start, end, wantStart, wantEnd)
			}
			for i, g := range got {
				w := want[wantStart+i]
				if !bytes.Equal(g.Body, w.Body) || g.Metadata != w.Metadata {
					t.Fatalf("paging Query(%s, %s): entry %d is %s%s, want %s%s", describeFrom(f), describeTo(e),
						wantStart+i, g.Body, describeMetadata(g.Metadata), w.Body, describeMetadata(w.Metadata))
				}
			}
		}
		check(eventlog.FromStart, eventlog.ToEnd, 0, n)
		check(from(7), eventlog.ToEnd, 7, n)
		check(from(7), to(uint64(n-7)), 7, n-7)
		check(eventlog.FromStart, to(uint64(n/2)), 0, n/2)
		check(eventlog.FromSnapshot, eventlog.ToEnd, (n-1)/17*17, n)
		h.truncate(uint64(n / 3))
		check(eventlog.FromStart, eventlog.ToEnd, n/3, n)
	})
}

func (s *suite) testSnapshots(t *testing.T) {
	startOf := func(h *harness) uint64 {
		h.t.Helper()
		return uint64(h.query(eventlog.FromSnapshot, eventlog.ToEnd, nil).Start)
	}
	wantStart := func(h *harness, want uint64, what string) {
		h.t.Helper()
		if got := startOf(h); got != want {
			h.t.Fatalf("%s: Query(Snapshot) starts at %d, want %d", what, got, want)
		}
		// And the query returns everything from there.
		start, end, got, _ := h.queryAll(eventlog.FromSnapshot, eventlog.ToEnd, nil)
		_, next := h.bounds()
		if start != want || end != next || uint64(len(got)) != next-want {
			h.t.Fatalf("%s: Query(Snapshot) read [%d,%d), want [%d,%d)", what, start, end, want, next)
		}
	}
	setSnap := func(h *harness, id uint64, blob string) {
		h.t.Helper()
		h.setMetadata(id, eventlog.MetadataUpdate{Snapshot: eventlog.Set(blob)})
	}
	clearSnap := func(h *harness, id uint64) {
		h.t.Helper()
		h.setMetadata(id, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()})
	}

	t.Run("NoSnapshot", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 6)
		wantStart(h, 0, "no snapshot")
		h.setMetadata(3, eventlog.MetadataUpdate{History: eventlog.Set("h"), Pending: eventlog.Set(eventlog.WorkflowSnapshot)})
		wantStart(h, 0, "pending and history are not snapshots")
		h.truncate(2)
		wantStart(h, 2, "no snapshot after truncation")
	})
	t.Run("Newest", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 10)
		setSnap(h, 2, "b2")
		wantStart(h, 2, "snapshot at 2")
		setSnap(h, 6, "b6")
		wantStart(h, 6, "snapshots at 2 and 6")
		setSnap(h, 4, "b4")
		wantStart(h, 6, "snapshot set at 4 below the newest at 6")
		setSnap(h, 9, "b9")
		wantStart(h, 9, "snapshot at the last entry")
		h.add(10, eventlog.Entry{Body: body(10), Metadata: eventlog.Metadata{Snapshot: "b10"}})
		wantStart(h, 10, "entry appended with a snapshot")
		h.fill(11, 13)
		wantStart(h, 10, "entries appended after the snapshot")
		p := h.query(eventlog.FromSnapshot, to(10), nil)
		h.wantEmptyPage(p, 10, "Query(Snapshot, 10)")
		p = h.query(eventlog.FromSnapshot, to(11), nil)
		if p.Start != 10 || len(p.Entries) != 1 || p.Entries[0].Snapshot != "b10" {
			t.Fatalf("Query(Snapshot, 11) = [%d,%d), want the entry at 10 with its snapshot", p.Start, p.End)
		}
	})
	t.Run("NewestCleared", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 10)
		for _, id := range []uint64{1, 4, 7} {
			setSnap(h, id, fmt.Sprint("b", id))
		}
		clearSnap(h, 7)
		wantStart(h, 4, "newest snapshot at 7 cleared")
		clearSnap(h, 1)
		wantStart(h, 4, "older snapshot at 1 cleared")
		h.setMetadata(4, eventlog.MetadataUpdate{Snapshot: eventlog.Clear(), Pending: eventlog.Set(eventlog.WorkflowSnapshot)})
		wantStart(h, 0, "every snapshot cleared")
		h.setMetadata(8, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b8")})
		wantStart(h, 8, "snapshot set again")
		h.setMetadata(4, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "b4"))
		wantStart(h, 8, "workflow completed below the newest snapshot")
	})
	t.Run("AfterTruncation", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 10)
		setSnap(h, 3, "b3")
		setSnap(h, 6, "b6")
		h.truncate(5)
		wantStart(h, 6, "truncated below the newest snapshot")
		h.truncate(6)
		wantStart(h, 6, "truncated at the newest snapshot")
		h.truncate(7)
		wantStart(h, 7, "truncated past every snapshot")
		setSnap(h, 8, "b8")
		wantStart(h, 8, "snapshot set after truncation")
		h.truncate(10)
		wantStart(h, 10, "emptied log")
	})
}

func (s *suite) testLastSnapshot(t *testing.T) {
	// check asks both Query and AddEntry (which appends one more entry)
	// with each known value, and wants lastSnapshot as want says.
	check := func(h *harness, what string, want func(k *eventlog.SequenceID) *eventlog.SnapshotRef) {
		h.t.Helper()
		for _, k := range []*eventlog.SequenceID{nil, known(0), known(1), known(2), known(3), known(5), known(1000)} {
			for _, f := range []eventlog.From{eventlog.FromStart, eventlog.FromSnapshot} {
				p := h.query(f, eventlog.ToEnd, k)
				h.wantLast(p.LastSnapshot, want(k), fmt.Sprintf("%s: Query(%s%s)", what, describeFrom(f), describeKnown(k)))
			}
			// The reply is the same whatever the page holds.
			_, next := h.bounds()
			p := h.query(from(next), eventlog.ToEnd, k)
			h.wantLast(p.LastSnapshot, want(k), fmt.Sprintf("%s: Query(%d%s)", what, next, describeKnown(k)))
			last, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(next), entry(int(next)), k)
			if err != nil {
				h.t.Fatalf("AddEntry(%d): %v", next, err)
			}
			h.wantLast(last, want(k), fmt.Sprintf("%s: AddEntry(%d%s)", what, next, describeKnown(k)))
		}
	}
	// differs is the rule: reported when known is given and differs from
	// the newest snapshot's id.
	differs := func(r *eventlog.SnapshotRef) func(k *eventlog.SequenceID) *eventlog.SnapshotRef {
		return func(k *eventlog.SequenceID) *eventlog.SnapshotRef {
			if k == nil || r == nil || *k == r.SequenceID {
				return nil
			}
			return r
		}
	}

	t.Run("NoSnapshot", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 4)
		check(h, "no snapshot", differs(nil))
	})
	t.Run("SnapshotAtZero", func(t *testing.T) {
		// known=0 means "I know none", and also "I know the one at 0":
		// the id comparison cannot tell them apart, so a snapshot at 0 is
		// not reported to a caller passing 0.
		h := s.fresh(t)
		h.add(0, eventlog.Entry{Body: body(0), Metadata: eventlog.Metadata{Snapshot: "b0"}})
		h.fill(1, 4)
		check(h, "snapshot at 0", differs(ref(0, "b0")))
	})
	t.Run("SnapshotElsewhere", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 4)
		h.setMetadata(1, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b1")})
		h.setMetadata(3, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b3")})
		check(h, "snapshots at 1 and 3", differs(ref(3, "b3")))
	})
	t.Run("ComparesIDsOnly", func(t *testing.T) {
		// A new blob at the same id is not a different snapshot.
		h := s.fresh(t)
		h.fill(0, 4)
		h.setMetadata(3, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b3")})
		h.setMetadata(3, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b3-again")})
		check(h, "snapshot at 3 rewritten", differs(ref(3, "b3-again")))
	})
	t.Run("NewestCleared", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 6)
		h.setMetadata(2, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b2")})
		h.setMetadata(5, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b5")})
		h.setMetadata(5, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()})
		// A caller that knows 5 learns the newest is now 2.
		check(h, "snapshot at 5 cleared, 2 left", differs(ref(2, "b2")))
		h.setMetadata(2, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()})
		check(h, "every snapshot cleared", differs(nil))
	})
	t.Run("AfterTruncation", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 6)
		h.setMetadata(2, eventlog.MetadataUpdate{Snapshot: eventlog.Set("b2")})
		h.truncate(2)
		check(h, "truncated at the snapshot", differs(ref(2, "b2")))
		h.truncate(3)
		check(h, "truncated past the snapshot", differs(nil))
	})
}
