package eventlogtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// testBatchRace races, round after round, a batch of 2 to 5 entries at
// the next id against a single append at the same id and another one at
// the id after it (which can only land behind the single append, never
// inside the batch). Exactly one of the two appends at the next id wins,
// the log stays dense with the winner whole, and every ConflictError
// names a next id the log really had in that round.
func (s *suite) testBatchRace(t *testing.T) {
	h := s.fresh(t)
	type attempt struct {
		name    string
		id      uint64
		entries []eventlog.Entry
		err     error
	}
	var (
		next uint64
		want []eventlog.Entry
	)
	for round := range s.cfg.batchRounds {
		k := 2 + round%4
		mk := func(who string, n int) []eventlog.Entry {
			es := make([]eventlog.Entry, n)
			for i := range es {
				es[i].Body = fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%q}`, round, i, who)
			}
			return es
		}
		batch := &attempt{name: "the batch", id: next, entries: mk("batch", k)}
		single := &attempt{name: "the single append", id: next, entries: mk("single", 1)}
		behind := &attempt{name: "the append behind it", id: next + 1, entries: mk("behind", 1)}
		all := []*attempt{batch, single, behind}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, a := range all {
			wg.Go(func() {
				<-start
				if len(a.entries) == 1 {
					_, a.err = h.log.AddEntry(h.ctx, eventlog.SequenceID(a.id), a.entries[0], nil)
				} else {
					_, a.err = h.log.AddEntries(h.ctx, eventlog.SequenceID(a.id), a.entries, nil)
				}
			})
		}
		close(start)
		wg.Wait()

		// What happened, from the log: the batch alone, or the single
		// append perhaps followed by the one behind it. States are the
		// next ids the log went through.
		_, end, got, _ := h.queryAll(from(next), eventlog.ToEnd, nil)
		var landed []*attempt
		for i := 0; i < len(got); {
			var a *attempt
			for _, c := range all {
				if string(got[i].Body) == string(c.entries[0].Body) {
					a = c
				}
			}
			if a == nil || uint64(i) != a.id-next || uint64(i+len(a.entries)) > end-next {
				t.Fatalf("round %d: entry %d is %s, which none of the racing appends put there (log ends at %d)", round, next+uint64(i), got[i].Body, end)
			}
			for j, e := range a.entries {
				if string(got[i+j].Body) != string(e.Body) {
					t.Fatalf("round %d: %s (%d entries at %d) is not whole: entry %d is %s", round, a.name, len(a.entries), a.id, next+uint64(i+j), got[i+j].Body)
				}
			}
			landed = append(landed, a)
			i += len(a.entries)
		}
		states := []uint64{next}
		for _, a := range landed {
			states = append(states, a.id+uint64(len(a.entries)))
		}
		if slices.Contains(landed, batch) && slices.Contains(landed, single) {
			t.Fatalf("round %d: both the batch and the single append landed at %d", round, next)
		}
		for _, a := range all {
			var c *errs.ConflictError
			in := slices.Contains(landed, a)
			switch {
			case errs.TypeOf(a.err) == errs.TypeStorage:
				// Its outcome is unknown; the log decides.
			case in && a.err != nil:
				t.Fatalf("round %d: %s is in the log but failed with %v", round, a.name, a.err)
			case !in && a.err == nil:
				t.Fatalf("round %d: %s at %d was acknowledged but is not in the log", round, a.name, a.id)
			case !in && !errors.As(a.err, &c):
				t.Fatalf("round %d: %s at %d failed with %v (%T), want a ConflictError", round, a.name, a.id, a.err, a.err)
			case !in && (c.NextSequenceID == a.id || !slices.Contains(states, c.NextSequenceID)):
				t.Fatalf("round %d: %s at %d was told the next id is %d; the log went through %v", round, a.name, a.id, c.NextSequenceID, states)
			}
		}
		want = append(want, got...)
		next = end
	}
	h.expect(0, want)
}

// batchBody is what the entries testBatchReaders appends say: entry i
// of batch b of writer w, a batch of n entries.
type batchBody struct{ W, B, I, N int }

// batchEntry is the entry's body: a spreadsheet entry (row w, column b,
// the string "i/n"), which every log takes, a thin client's included.
func (b batchBody) entry() []byte {
	return fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":"%d/%d"}`, b.W, b.B, b.I, b.N)
}

func decodeBatchBody(body []byte) (batchBody, bool) {
	var e struct {
		Type        string
		Row, Column int
		Value       string
	}
	var b batchBody
	if json.Unmarshal(body, &e) != nil || e.Type != "SetCellValueAndFormat" {
		return b, false
	}
	b.W, b.B = e.Row, e.Column
	_, err := fmt.Sscanf(e.Value, "%d/%d", &b.I, &b.N)
	return b, err == nil
}

// testBatchReaders has writers append batches of 1 to 5 entries while
// readers query the end of the log: no reader may ever see part of a
// batch. A page that reaches the end of the log (Complete, to End) must
// end with the last entry of a batch, and inside a page each batch's
// entries follow one another in order.
func (s *suite) testBatchReaders(t *testing.T) {
	h := s.fresh(t)
	var (
		done     = make(chan struct{})
		checked  atomic.Int64 // complete, non-empty pages checked
		mu       sync.Mutex
		acked    = map[[2]int]bool{}
		failures failures
	)
	fail := failures.add
	decode := func(e eventlog.Entry) (batchBody, bool) {
		b, ok := decodeBatchBody(e.Body)
		if !ok || b.I < 0 || b.I >= b.N {
			fail("entry %s is not one the writers appended", e.Body)
			return b, false
		}
		return b, true
	}
	// checkPage holds a page to the rule; it reports false on a failure.
	checkPage := func(p eventlog.Page, what string) bool {
		var prev batchBody
		for i, e := range p.Entries {
			b, ok := decode(e)
			if !ok {
				return false
			}
			if i > 0 {
				if b.I > 0 && (prev.W != b.W || prev.B != b.B || prev.I != b.I-1) {
					fail("%s: entry %d is entry %d of batch %d/%d, but entry %d is not the one before it in that batch", what, uint64(p.Start)+uint64(i), b.I, b.W, b.B, uint64(p.Start)+uint64(i)-1)
					return false
				}
				if b.I == 0 && prev.I != prev.N-1 {
					fail("%s: a batch starts at %d, but batch %d/%d before it ends after entry %d of %d", what, uint64(p.Start)+uint64(i), prev.W, prev.B, prev.I, prev.N)
					return false
				}
			}
			prev = b
		}
		if p.Complete && len(p.Entries) > 0 {
			if prev.I != prev.N-1 {
				fail("%s: the log ended at %d with entry %d of the %d of batch %d/%d: a half-written batch was visible", what, p.End, prev.I, prev.N, prev.W, prev.B)
				return false
			}
			checked.Add(1)
		}
		return true
	}

	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			var pos, end uint64
			for round := 0; ; round++ {
				select {
				case <-done:
					return
				default:
				}
				from := eventlog.FromID(eventlog.SequenceID(pos))
				if round%50 == 49 {
					from = eventlog.FromStart
				}
				p, err := h.log.Query(h.ctx, from, eventlog.ToEnd, nil)
				switch {
				case errs.TypeOf(err) == errs.TypeStorage:
					continue
				case err != nil:
					fail("reader %d: Query(%s, End): %v", r, describeFrom(from), err)
					return
				}
				if !checkPage(p, fmt.Sprintf("reader %d: Query(%s, End)", r, describeFrom(from))) {
					return
				}
				// Read on from the end of an incomplete page, and from a
				// little before the end of a complete one, so that pages
				// hold batch boundaries. A log that has not grown since
				// the last read is read again a little later, not at
				// once: the readers must not starve the writers.
				if p.Complete && uint64(p.End) == end {
					time.Sleep(20 * time.Microsecond)
				}
				end, pos = uint64(p.End), uint64(p.End)
				if p.Complete {
					pos = max(uint64(p.Start), pos-min(pos, 3))
				}
			}
		})
	}

	var writers sync.WaitGroup
	for w := range s.cfg.batchWriters {
		writers.Go(func() {
			var next uint64
			for b := 0; b < s.cfg.batches; {
				n := 1 + (b+w)%5
				es := make([]eventlog.Entry, n)
				for i := range es {
					es[i].Body = batchBody{W: w, B: b, I: i, N: n}.entry()
				}
				_, err := h.log.AddEntries(h.ctx, eventlog.SequenceID(next), es, nil)
				var c *errs.ConflictError
				switch {
				case err == nil:
					mu.Lock()
					acked[[2]int{w, b}] = true
					mu.Unlock()
					next += uint64(n)
					b++
				case errors.As(err, &c):
					next = c.NextSequenceID // and try the batch again there
				case errs.TypeOf(err) == errs.TypeStorage:
					b++ // in the log or not; the final check accepts either
				default:
					fail("writer %d: AddEntries(%d, %d entries): %v", w, next, n, err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	readers.Wait()
	failures.report(t)

	// The whole log: dense, every batch whole, once, every acknowledged
	// batch in it.
	_, _, got, _ := h.queryAll(eventlog.FromStart, eventlog.ToEnd, nil)
	if !checkPage(eventlog.Page{Start: 0, End: eventlog.SequenceID(len(got)), Complete: true, Entries: got}, "the whole log") {
		failures.report(t)
	}
	seen := map[[2]int]bool{}
	for _, e := range got {
		b, _ := decode(e)
		if k := [2]int{b.W, b.B}; b.I == 0 {
			if seen[k] {
				t.Fatalf("batch %d/%d is in the log twice", b.W, b.B)
			}
			seen[k] = true
		}
	}
	for k := range acked {
		if !seen[k] {
			t.Fatalf("batch %d/%d was acknowledged but is not in the log", k[0], k[1])
		}
	}
	if checked.Load() == 0 {
		t.Fatalf("the readers saw no complete page with entries: nothing was checked")
	}
	t.Logf("%d writers × %d batches: %d entries; the readers checked %d pages that reached the end of the log", s.cfg.batchWriters, s.cfg.batches, len(got), checked.Load())
}
