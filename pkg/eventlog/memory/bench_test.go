package memory_test

import (
	"fmt"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

func cellBody(i int) []byte {
	return fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%d,"format":"0.00"}`, i/100, i%100, i)
}

// BenchmarkAppend40k is the engine benchmarks' use of the log: 40,000
// appends to a fresh log, with a known snapshot as the engine passes it.
// The goal is well under 100 ms per op.
func BenchmarkAppend40k(b *testing.B) {
	bodies := make([][]byte, 40_000)
	for i := range bodies {
		bodies[i] = cellBody(i)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		l := memory.New(memory.Options{})
		for i, body := range bodies {
			e := eventlog.Entry{Body: body}
			if i%1000 == 999 {
				e.Pending = eventlog.WorkflowSnapshot
			}
			if _, err := l.AddEntry(ctx, eventlog.SequenceID(i), e, eventlog.Known(0)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkQueryFromSnapshot reads the tail of a 40,000-entry log from its
// newest snapshot, as an engine does when it loads a sheet.
func BenchmarkQueryFromSnapshot(b *testing.B) {
	ctx := b.Context()
	l := memory.New(memory.Options{})
	for i := range 40_000 {
		e := eventlog.Entry{Body: cellBody(i)}
		if i%1000 == 0 {
			e.Snapshot = fmt.Sprint(i)
		}
		if _, err := l.AddEntry(ctx, eventlog.SequenceID(i), e, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := l.Query(ctx, eventlog.FromSnapshot, eventlog.ToEnd, eventlog.Known(0))
		if err != nil || p.Start != 39_000 || len(p.Entries) != 1000 {
			b.Fatalf("%v %d %d", err, p.Start, len(p.Entries))
		}
	}
}

// BenchmarkValidate40k is the share of BenchmarkAppend40k spent in
// eventlog.ValidateEntry, which every implementation calls.
func BenchmarkValidate40k(b *testing.B) {
	bodies := make([][]byte, 40_000)
	for i := range bodies {
		bodies[i] = cellBody(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			if err := eventlog.ValidateEntry(eventlog.Entry{Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
