package eventlogtest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// testProperty runs random operation sequences against a fresh log and
// the model in lock step, comparing every reply, and the whole log after
// every step.
func (s *suite) testProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		runProperty(rt, s.newLog(t), s.cfg.propertySteps)
	})
}

func runProperty(t *rapid.T, log eventlog.EventLog, maxSteps int) {
	ctx := context.Background()
	var m mState
	// Long sequences find more; rapid still shrinks a failure to the few
	// steps that matter, since most steps can be dropped.
	steps := rapid.IntRange(maxSteps/2, maxSteps).Draw(t, "steps")
	var trace strings.Builder
	for i := range steps {
		o := drawOp(t, m, i)
		n, want := step(m, o)
		got := call(ctx, log, o)
		fmt.Fprintf(&trace, "\n  %d: %s → %s", i, o, got.describe(o))
		if err := matches(o, want, got); err != nil {
			t.Fatalf("step %d: %s: %v\nthe model before the step: %s\nthe steps:%s", i, o, err, m, trace.String())
		}
		m = n
		if err := compareLog(ctx, log, m); err != nil {
			t.Fatalf("after step %d, %s: %v\nthe model: %s\nthe steps:%s", i, o, err, m, trace.String())
		}
	}
}

// compareLog reads the whole log, and everything from its newest
// snapshot, page by page, and compares with the model.
func compareLog(ctx context.Context, log eventlog.EventLog, m mState) error {
	for _, f := range []eventlog.From{eventlog.FromStart, eventlog.FromSnapshot} {
		o := op{kind: opQuery, from: f, to: eventlog.ToEnd, known: known(0)}
		for pages := 0; ; pages++ {
			_, want := step(m, o)
			got := call(ctx, log, o)
			if err := matches(o, want, got); err != nil {
				return fmt.Errorf("%s: %w", o, err)
			}
			if got.page.Complete {
				break
			}
			if pages > 10_000 {
				return fmt.Errorf("%s: no complete page after %d pages", o, pages)
			}
			o.from = eventlog.FromID(got.page.End)
		}
	}
	return nil
}

var (
	propBodies = []string{
		`{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1}`,
		`{"type":"Unknown","x":[1,{"y":null}]}`,
		`{ "type" : "S", "n" : 1.50 }`,
	}
	propBadBodies = []string{``, `[]`, `{}`, `{"type":7}`, `{"type":"X","pending":"snapshot"}`, `{"type":"X"`}
	propValues    = []string{eventlog.WorkflowSnapshot, "other", "x"}
)

// drawID draws an id mostly in [first, hi], sometimes just below first,
// just above hi or far beyond.
func drawID(t *rapid.T, m mState, hi uint64, label string) eventlog.SequenceID {
	// rapid favours 0 and the bounds: about three draws in four are
	// inside.
	switch rapid.IntRange(0, 9).Draw(t, label+"Where") {
	case 7:
		return eventlog.SequenceID(m.first - min(m.first, rapid.Uint64Range(1, 2).Draw(t, label+"Below")))
	case 8:
		return eventlog.SequenceID(hi + rapid.Uint64Range(1, 2).Draw(t, label+"Above"))
	case 9:
		return math.MaxUint64
	}
	return eventlog.SequenceID(rapid.Uint64Range(m.first, max(hi, m.first)).Draw(t, label))
}

// lastID is the id of the last entry, or first when the log is empty.
func (s mState) lastID() uint64 { return max(s.next(), s.first+1) - 1 }

func drawKnown(t *rapid.T, m mState) *eventlog.SequenceID {
	if !rapid.Bool().Draw(t, "hasKnown") {
		return nil
	}
	return eventlog.Known(eventlog.SequenceID(rapid.Uint64Range(0, m.next()+1).Draw(t, "known")))
}

func drawField(t *rapid.T, label string) eventlog.FieldUpdate {
	switch rapid.IntRange(0, 2).Draw(t, label) {
	case 1:
		if rapid.IntRange(0, 20).Draw(t, label+"Empty") == 10 {
			return eventlog.Set("") // a ValidationError
		}
		return eventlog.Set(rapid.SampledFrom(propValues).Draw(t, label+"Value"))
	case 2:
		return eventlog.Clear()
	}
	return eventlog.Keep()
}

// drawMetadataValue draws a field of an appended entry: set about one
// time in six, so that snapshots set by SetMetadata are often the newest.
func drawMetadataValue(t *rapid.T, label string) string {
	if rapid.IntRange(0, 5).Draw(t, label+"Set") == 3 {
		return rapid.SampledFrom(propValues).Draw(t, label)
	}
	return ""
}

// drawEntry draws the entry at position j of the append of step i: a body
// from propBodies made distinct (so that a misplaced entry shows), now
// and then a malformed one, and metadata.
func drawEntry(t *rapid.T, i, j int) eventlog.Entry {
	b := rapid.SampledFrom(propBodies).Draw(t, "body")
	if rapid.IntRange(0, 15).Draw(t, "bad") == 7 {
		b = rapid.SampledFrom(propBadBodies).Draw(t, "badBody")
	} else {
		b = fmt.Sprintf(`{"i":%d,"j":%d,%s`, i, j, b[1:])
	}
	return eventlog.Entry{Body: []byte(b), Metadata: eventlog.Metadata{
		Snapshot: drawMetadataValue(t, "snapshot"),
		History:  drawMetadataValue(t, "history"),
		Pending:  drawMetadataValue(t, "pending"),
	}}
}

func drawOp(t *rapid.T, m mState, i int) op {
	// rapid favours small values (and shrinks towards them), so the kinds
	// are interleaved to get roughly a third each of appends, metadata
	// updates and queries, and a tenth of truncations.
	switch rapid.IntRange(0, 9).Draw(t, "op") {
	case 0, 2, 4:
		o := op{kind: opAdd, id: eventlog.SequenceID(m.next()), known: drawKnown(t, m)}
		// Mostly at the next id, sometimes anywhere around the log.
		if rapid.IntRange(0, 4).Draw(t, "anyID") == 3 {
			o.id = drawID(t, m, m.next(), "addID")
		}
		// A third of the appends are batches (AddEntries).
		if rapid.IntRange(0, 2).Draw(t, "batch") != 1 {
			o.entry = drawEntry(t, i, 0)
			return o
		}
		o.kind = opAddBatch
		switch rapid.IntRange(0, 15).Draw(t, "batchSize") {
		case 13, 14, 15:
			// The sizes at and beyond the limits, with plain entries.
			n := rapid.SampledFrom([]int{0, eventlog.MaxBatch, eventlog.MaxBatch + 1}).Draw(t, "edgeSize")
			o.entries = make([]eventlog.Entry, n)
			for j := range o.entries {
				o.entries[j].Body = fmt.Appendf(nil, `{"i":%d,"j":%d,"type":"Edge"}`, i, j)
			}
		default:
			// Entries drawn one by one: some batches hold a bad entry or
			// two pending fields, and are refused whole.
			o.entries = make([]eventlog.Entry, rapid.IntRange(1, 4).Draw(t, "size"))
			for j := range o.entries {
				o.entries[j] = drawEntry(t, i, j)
			}
		}
		return o
	case 1, 5, 7:
		u := eventlog.MetadataUpdate{
			Snapshot: drawField(t, "snapshot"),
			History:  drawField(t, "history"),
			Pending:  drawField(t, "pending"),
		}
		if rapid.Bool().Draw(t, "conditional") {
			u.IfPending = rapid.SampledFrom(propValues).Draw(t, "ifPending")
		}
		// Often an entry that has metadata already, so that set, change
		// and clear meet on one entry (the newest snapshot cleared, a
		// workflow completed twice).
		var marked []eventlog.SequenceID
		for i, e := range m.entries {
			if e.md != (eventlog.Metadata{}) {
				marked = append(marked, eventlog.SequenceID(m.first+uint64(i)))
			}
		}
		if len(marked) > 0 && rapid.IntRange(0, 2).Draw(t, "marked") == 1 {
			return op{kind: opSetMetadata, id: rapid.SampledFrom(marked).Draw(t, "markedID"), upd: u}
		}
		return op{kind: opSetMetadata, id: drawID(t, m, m.lastID(), "metadataID"), upd: u}
	case 3, 6, 8:
		o := op{kind: opQuery, known: drawKnown(t, m)}
		switch rapid.IntRange(0, 2).Draw(t, "from") {
		case 0:
			o.from = eventlog.FromStart
		case 1:
			o.from = eventlog.FromSnapshot
		default:
			o.from = eventlog.FromID(drawID(t, m, m.next(), "fromID"))
		}
		if rapid.Bool().Draw(t, "bounded") {
			o.to = eventlog.ToID(drawID(t, m, m.next()+1, "toID"))
		}
		return o
	default:
		return op{kind: opTruncate, id: drawID(t, m, m.next(), "truncateID")}
	}
}
