package eventlogtest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// testConcurrentAppenders races writers that each append at the id they
// believe is next and learn the real next id from ConflictError. Every id
// must have exactly one winner, the log must be dense, and every
// acknowledged append must be in it with its own body.
func (s *suite) testConcurrentAppenders(t *testing.T) {
	h := s.fresh(t)
	writers, attempts := s.cfg.appenders, s.cfg.attempts
	// An append this far ahead can never be at the next id: there are
	// not that many attempts in all.
	const farAhead = 1 << 40

	type ack struct {
		id   uint64
		body string
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		acks      []ack
		ambiguous = map[string]bool{} // bodies whose append ended in a StorageError
		failures  failures
	)
	fail := failures.add
	for w := range writers {
		wg.Go(func() {
			var next uint64
			for a := range attempts {
				b := fmt.Sprintf(`{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":"race"}`, w, a)
				id := next
				switch {
				case a%10 == 9:
					id = next + farAhead
				case a%10 == 5 && next > 0:
					// Ids only grow: below one already seen is always a
					// conflict.
					id = next - 1
				}
				_, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(id), eventlog.Entry{Body: []byte(b)}, nil)
				var c *errs.ConflictError
				switch {
				case err == nil:
					if id != next {
						fail("writer %d: AddEntry(%d) succeeded although %d was already known to be next", w, id, next)
					}
					mu.Lock()
					acks = append(acks, ack{id, b})
					mu.Unlock()
					next = id + 1
				case errors.As(err, &c):
					if c.NextSequenceID < next {
						fail("writer %d: ConflictError at %d says next is %d, but %d was already known to be next", w, id, c.NextSequenceID, next)
					}
					if c.NextSequenceID == id {
						fail("writer %d: ConflictError at %d says next is %d", w, id, c.NextSequenceID)
					}
					next = c.NextSequenceID
				case errs.TypeOf(err) == errs.TypeStorage:
					// The append may or may not have happened; it will be
					// found, or not, in the log.
					mu.Lock()
					ambiguous[b] = true
					mu.Unlock()
				default:
					fail("writer %d: AddEntry(%d): %v", w, id, err)
				}
			}
		})
	}
	wg.Wait()
	failures.report(t)

	first, next, got, _ := h.queryAll(eventlog.FromStart, eventlog.ToEnd, nil)
	if first != 0 || next != uint64(len(got)) {
		t.Fatalf("log is [%d,%d) with %d entries", first, next, len(got))
	}
	winner := map[uint64]string{}
	for _, a := range acks {
		if prev, ok := winner[a.id]; ok {
			t.Fatalf("two appends acknowledged at %d: %s and %s", a.id, prev, a.body)
		}
		winner[a.id] = a.body
	}
	seen := map[string]uint64{}
	for i, e := range got {
		id := uint64(i)
		b := string(e.Body)
		if prev, ok := seen[b]; ok {
			t.Fatalf("body %s is in the log twice, at %d and %d", b, prev, id)
		}
		seen[b] = id
		want, acked := winner[id]
		switch {
		case acked && want != b:
			t.Fatalf("entry %d is %s, but the append of %s there was acknowledged", id, b, want)
		case !acked && !ambiguous[b]:
			t.Fatalf("entry %d is %s, which no writer was told it appended", id, b)
		}
	}
	for id, b := range winner {
		if id >= next {
			t.Fatalf("acknowledged append of %s at %d is lost: the log ends at %d", b, id, next)
		}
	}
	t.Logf("%d writers × %d attempts: %d entries appended, %d ambiguous", writers, attempts, next, len(ambiguous))
	if next == 0 {
		t.Fatalf("no append succeeded")
	}
}

// failures collects what goroutines of a test find wrong (they may not
// stop the test themselves): the first twenty messages.
type failures struct {
	mu   sync.Mutex
	msgs []string
}

func (f *failures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.msgs) < 20 {
		f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	}
}

// report fails the test with the messages collected, if there are any.
func (f *failures) report(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		t.Error(m)
	}
	if len(f.msgs) > 0 {
		t.FailNow()
	}
}
