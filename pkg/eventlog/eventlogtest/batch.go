package eventlogtest

import (
	"fmt"
	"math"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// testAppendBatch covers AddEntries call by call: sizes, refused batches
// (which write nothing, whatever id they are sent at), conflicts wherever
// the log's next id falls relative to the batch, metadata and lastSnapshot
// after a batch, and caller buffers.
func (s *suite) testAppendBatch(t *testing.T) {
	t.Run("Sizes", func(t *testing.T) {
		for _, n := range []int{1, 2, eventlog.MaxBatch} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				h := s.fresh(t)
				h.addBatch(0, entries(0, n))
				h.expect(0, entries(0, n))
				h.add(uint64(n), entry(n))
				last, err := h.log.AddEntries(h.ctx, eventlog.SequenceID(n+1), entries(n+1, 2*n+1), known(0))
				if err != nil {
					t.Fatalf("AddEntries(%d, %d entries): %v", n+1, n, err)
				}
				h.wantLast(last, nil, "a batch appended to a log with no snapshot")
				h.expect(0, entries(0, 2*n+1))
				// Each entry of a batch is at its own id.
				p := h.query(from(uint64(n+1)), to(uint64(n+2)), nil)
				if len(p.Entries) != 1 || string(p.Entries[0].Body) != string(body(n+1)) {
					t.Fatalf("Query(%d, %d) after the batch: %d entries", n+1, n+2, len(p.Entries))
				}
			})
		}
	})
	// refusals makes a log [0,3) and returns refused, which appends es
	// there at the next id and at other ids and wants a ValidationError
	// every time and nothing written, and done, which checks that the
	// log still takes an append at 3.
	refusals := func(t *testing.T) (refused func(es []eventlog.Entry, what string), done func()) {
		h := s.fresh(t)
		h.fill(0, 3)
		done = func() {
			if t.Failed() {
				return
			}
			h.add(3, entry(3))
			h.expect(0, entries(0, 4))
		}
		return func(es []eventlog.Entry, what string) {
			t.Helper()
			for _, id := range []uint64{3, 0, 4, math.MaxUint64} {
				_, err := h.log.AddEntries(h.ctx, eventlog.SequenceID(id), es, known(0))
				h.wantValidation(err, fmt.Sprintf("AddEntries(%d) of %s", id, what))
			}
			h.expect(0, entries(0, 3))
		}, done
	}
	t.Run("SizeRefused", func(t *testing.T) {
		refused, done := refusals(t)
		defer done()
		refused(nil, "no entries (nil)")
		refused([]eventlog.Entry{}, "no entries")
		refused(entries(3, 3+eventlog.MaxBatch+1), fmt.Sprintf("%d entries", eventlog.MaxBatch+1))
		refused(entries(3, 3+2*eventlog.MaxBatch), fmt.Sprintf("%d entries", 2*eventlog.MaxBatch))
	})
	t.Run("BadEntryAtEveryPosition", func(t *testing.T) {
		refused, done := refusals(t)
		defer done()
		for _, bad := range []string{`{}`, `{"type":"X","pending":"snapshot"}`, `{"type":"X"`} {
			for k := range 5 {
				es := entries(3, 8)
				es[k].Body = []byte(bad)
				refused(es, fmt.Sprintf("a batch of 5 whose entry %d is %s", k, bad))
			}
		}
		es := entries(3, 3+eventlog.MaxBatch)
		es[57].Body = []byte(`{"type":7}`)
		refused(es, fmt.Sprintf("a batch of %d whose entry 57 is malformed", eventlog.MaxBatch))
	})
	t.Run("Pending", func(t *testing.T) {
		refused, done := refusals(t)
		defer done()
		pend := eventlog.Metadata{Pending: eventlog.WorkflowSnapshot}
		for _, at := range [][]int{{0, 1}, {0, 3}, {2, 3}, {1, 2, 3}} {
			es := entries(3, 7)
			for _, k := range at {
				es[k].Metadata = pend
			}
			refused(es, fmt.Sprintf("a batch with pending on entries %v", at))
		}
		// One entry with pending, anywhere in the batch, is allowed.
		h := s.fresh(t)
		want := entries(0, 12)
		for i, k := range []int{0, 5, 11} {
			want[k].Metadata = pend
			h.addBatch(uint64(4*i), want[4*i:4*i+4])
		}
		h.expect(0, want)
	})
	t.Run("Conflicts", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 5)
		try := func(id uint64, n int, next uint64) {
			t.Helper()
			b := 100 + int(id%100)
			_, err := h.log.AddEntries(h.ctx, eventlog.SequenceID(id), entries(b, b+n), known(0))
			h.wantConflict(err, fmt.Sprintf("AddEntries(%d, %d entries) with next %d", id, n, next), next)
		}
		// A batch of 4 below the next id, ending on it, spanning it at
		// every position, and beyond it: only the batch starting at the
		// next id may land.
		for id := range uint64(10) {
			if id != 5 {
				try(id, 4, 5)
			}
		}
		try(1005, 4, 5)
		try(math.MaxUint64, 4, 5)
		try(math.MaxUint64-1, 2, 5)
		h.expect(0, entries(0, 5))
		h.addBatch(5, entries(5, 9))
		// The same batch again is a conflict, as is anything inside it.
		for _, id := range []uint64{5, 6, 8, 10} {
			try(id, 4, 9)
		}
		_, err := h.log.AddEntry(h.ctx, 7, entry(7), nil)
		h.wantConflict(err, "AddEntry(7) inside an appended batch", 9)
		h.truncate(7)
		try(6, 4, 9)
		h.addBatch(9, entries(9, 11))
		h.expect(7, entries(7, 11))
	})
	t.Run("Metadata", func(t *testing.T) {
		h := s.fresh(t)
		h.fill(0, 2)
		mds := []eventlog.Metadata{
			{},
			{Snapshot: "s3"},
			{History: "h4"},
			{Pending: eventlog.WorkflowSnapshot, History: "h5"},
			{Snapshot: "s6", History: "h6"},
			{},
		}
		want := entries(0, 8)
		for i, md := range mds {
			want[2+i].Metadata = md
		}
		last, err := h.log.AddEntries(h.ctx, 2, want[2:], known(0))
		if err != nil {
			t.Fatal(err)
		}
		// The reply and the log describe the state after the whole
		// batch: its last snapshot is the log's newest.
		h.wantLast(last, ref(6, "s6"), "AddEntries(2) carrying snapshots at 3 and 6, known=0")
		h.expect(0, want)
		p := h.query(eventlog.FromSnapshot, eventlog.ToEnd, known(3))
		if p.Start != 6 {
			t.Fatalf("Query(Snapshot) starts at %d after a batch with snapshots at 3 and 6, want 6", p.Start)
		}
		h.wantLast(p.LastSnapshot, ref(6, "s6"), "Query(Snapshot, End, known=3)")
		for _, c := range []struct {
			known *eventlog.SequenceID
			want  *eventlog.SnapshotRef
		}{{nil, nil}, {known(6), nil}, {known(3), ref(6, "s6")}, {known(0), ref(6, "s6")}} {
			_, next := h.bounds()
			es := entries(int(next), int(next)+3)
			last, err := h.log.AddEntries(h.ctx, eventlog.SequenceID(next), es, c.known)
			if err != nil {
				t.Fatal(err)
			}
			h.wantLast(last, c.want, fmt.Sprintf("AddEntries(%d) with no snapshot of its own%s", next, describeKnown(c.known)))
			want = append(want, es...)
		}
		h.expect(0, want)
		// A caller that knows a snapshot of the batch but not its last.
		last, err = h.log.AddEntries(h.ctx, 20, []eventlog.Entry{
			{Body: body(20), Metadata: eventlog.Metadata{Snapshot: "s20"}},
			{Body: body(21), Metadata: eventlog.Metadata{Snapshot: "s21"}},
		}, known(20))
		if err != nil {
			t.Fatal(err)
		}
		h.wantLast(last, ref(21, "s21"), "AddEntries(20) with snapshots at 20 and 21, known=20")
	})
	t.Run("CallerBuffers", func(t *testing.T) {
		h := s.fresh(t)
		es := entries(0, 4)
		h.addBatch(0, es)
		// The log copied the bodies and kept no reference to the slice.
		for i := range es {
			for j := range es[i].Body {
				es[i].Body[j] = 'x'
			}
			es[i] = eventlog.Entry{Body: []byte(`{"type":"Other"}`), Metadata: eventlog.Metadata{Snapshot: "z"}}
		}
		h.expect(0, entries(0, 4))
	})
}
