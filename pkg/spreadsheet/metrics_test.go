package spreadsheet

import (
	"context"
	"errors"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

type engineCounts struct {
	appended, conflicts, written, noop, failed, encoded, copied, durations uint64
}

func readEngineCounts() engineCounts {
	return engineCounts{
		appended: appendedEntries.Value(), conflicts: appendConflicts.Value(),
		written: snapshotsWritten.Value(), noop: snapshotsNoop.Value(), failed: snapshotsFailed.Value(),
		encoded: tilesEncoded.Value(), copied: tilesCopied.Value(),
		durations: snapshotDuration.State(false).Count,
	}
}

func (c engineCounts) minus(o engineCounts) engineCounts {
	return engineCounts{c.appended - o.appended, c.conflicts - o.conflicts, c.written - o.written,
		c.noop - o.noop, c.failed - o.failed, c.encoded - o.encoded, c.copied - o.copied, c.durations - o.durations}
}

// TestMetricsCountEngineWork runs a known workload on one sheet and
// checks the engine's process-wide metrics against it and against the
// engines' own Stats.
func TestMetricsCountEngineWork(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 10, TileWidth: 2, TileHeight: 2})
	before := readEngineCounts()
	stats0 := r.worker.Stats()

	a := r.hostE
	for i := range 25 {
		if _, err := a.Append(ctx, eventlog.SequenceID(i), cell.Entry{Row: uint32(i), Column: uint32(i % 3), Cell: cell.Cell{Value: num(float64(i))}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var ce *errs.ConflictError
	// A stale id the engine knows is stale...
	if _, err := a.Append(ctx, 3, cell.Entry{Cell: cell.Cell{Value: num(1)}}, nil); !errors.As(err, &ce) {
		t.Fatalf("stale append: %v", err)
	}
	// ...and one only the log can refuse: b has not seen a's next entry.
	b := r.fresh(t)
	defer b.Close()
	if _, err := b.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, 25, cell.Entry{Cell: cell.Cell{Value: num(1)}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, 25, cell.Entry{Cell: cell.Cell{Value: num(2)}}, nil); !errors.As(err, &ce) {
		t.Fatalf("append the log refuses: %v", err)
	}
	r.wait(t)
	// The first snapshot was outstanding during the appends: the next
	// batch requests a second one, which copies the tiles nobody changed.
	for i := 26; i < 30; i++ {
		if _, err := a.Append(ctx, eventlog.SequenceID(i), cell.Entry{Cell: cell.Cell{Value: num(float64(i))}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A batch counts each of its entries.
	if _, err := a.AppendBatch(ctx, 30, rowOf(40, 0, 5), nil); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if _, pending := snapshots(t, r.log); len(pending) != 0 {
		t.Fatalf("still pending: %v", pending)
	}
	// Run a completed snapshot again (nothing to do), and one that cannot
	// be built.
	if err := r.worker.RunSnapshot(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := r.worker.RunSnapshot(ctx, 1000); err == nil {
		t.Fatal("a snapshot beyond the log ran")
	}

	got := readEngineCounts().minus(before)
	st := r.worker.Stats()
	want := engineCounts{
		appended:  35,
		conflicts: 2,
		written:   uint64(st.SnapshotsWritten - stats0.SnapshotsWritten),
		noop:      uint64(st.CompletionsNoop - stats0.CompletionsNoop),
		failed:    1,
		encoded:   uint64(st.TilesEncoded - stats0.TilesEncoded),
		copied:    uint64(st.TilesCopied - stats0.TilesCopied),
		durations: uint64(st.SnapshotsWritten - stats0.SnapshotsWritten),
	}
	if got != want {
		t.Fatalf("metrics grew by %+v, want %+v", got, want)
	}
	if want.written < 2 || want.noop < 1 || want.encoded == 0 || want.copied == 0 {
		t.Fatalf("the workload did not exercise every metric: %+v", want)
	}
}
