package memory

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// TestArenaBodiesAndTruncation writes bodies of every size (small ones
// that share chunks, ones that open a new chunk, big ones kept apart),
// truncates at random points and reads every remaining body back, with
// its metadata. A truncation must free the chunks before the first
// remaining entry and the big bodies and metadata before it.
func TestArenaBodiesAndTruncation(t *testing.T) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	l := New(Options{PageSize: 37, PageBytes: 3 * bigBody})
	type entry struct {
		body []byte
		md   eventlog.Metadata
	}
	var want []entry // want[i] is entry first+i
	first, next := eventlog.SequenceID(0), eventlog.SequenceID(0)
	for range 40 {
		for range rng.IntN(300) {
			n := rng.IntN(64)
			switch rng.IntN(10) {
			case 0:
				n = bigBody - 40 + rng.IntN(40) // either side of the threshold
			case 1:
				n = rng.IntN(3 * maxChunk)
			}
			e := eventlog.Entry{Body: fmt.Appendf(nil, `{"type":"X","id":%d,"pad":"%s"}`, next, bytes.Repeat([]byte{'a'}, n))}
			if rng.IntN(20) == 0 {
				e.Snapshot = fmt.Sprint(next)
			}
			if _, err := l.AddEntry(ctx, next, e, nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, entry{bytes.Clone(e.Body), e.Metadata})
			clear(e.Body) // the log must hold its own copy
			next++
		}
		if len(want) > 0 && rng.IntN(2) == 0 {
			at := first + eventlog.SequenceID(rng.IntN(len(want)))
			if _, err := l.SetMetadata(ctx, at, eventlog.MetadataUpdate{Snapshot: eventlog.Clear(), History: eventlog.Set("h")}); err != nil {
				t.Fatal(err)
			}
			want[at-first].md = eventlog.Metadata{History: "h", Pending: want[at-first].md.Pending}
		}
		if rng.IntN(3) == 0 {
			to := first + eventlog.SequenceID(rng.IntN(len(want)+1))
			if err := l.Truncate(ctx, to); err != nil {
				t.Fatal(err)
			}
			want, first = want[to-first:], to
			if len(want) > 0 {
				if c := l.entries.at(0).chunk; l.bodies.base != c {
					t.Fatalf("after truncating to %d the arena starts at chunk %d, the first entry's is %d", to, l.bodies.base, c)
				}
			} else if len(l.bodies.chunks) != 0 {
				t.Fatalf("an empty log holds %d chunks", len(l.bodies.chunks))
			}
			for id := range l.bodies.big {
				if id < first {
					t.Fatalf("big body %d kept after truncating to %d", id, first)
				}
			}
			for id := range l.meta {
				if id < first {
					t.Fatalf("metadata of %d kept after truncating to %d", id, first)
				}
			}
		}
		i := 0
		for page, err := range eventlog.Pages(ctx, l, eventlog.FromStart, eventlog.ToEnd, nil) {
			if err != nil {
				t.Fatal(err)
			}
			for id, e := range page.All() {
				if id != first+eventlog.SequenceID(i) || !bytes.Equal(e.Body, want[i].body) || e.Metadata != want[i].md {
					t.Fatalf("entry %d: %.40q %+v, want entry %d: %.40q %+v", id, e.Body, e.Metadata, first+eventlog.SequenceID(i), want[i].body, want[i].md)
				}
				i++
			}
		}
		if i != len(want) {
			t.Fatalf("read %d entries, want %d", i, len(want))
		}
	}
}
