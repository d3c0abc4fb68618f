package spreadsheet

import (
	"context"
	"fmt"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// TestInProcessEndToEnd wires the memory log, the memory blob store, the
// reference workers and two engines (host and worker): 1,000 edits,
// snapshots at the expected ids, then a third engine loads the newest
// snapshot plus the tail and reads every cell.
func TestInProcessEndToEnd(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{})
	m := map[coord]cell.Cell{}
	for i := range 1000 {
		row, col := uint32(i*7%173), uint32(i*13%37)
		c := cell.Cell{Value: num(float64(i))}
		switch i % 10 {
		case 3:
			c = cell.Cell{Value: cell.StringValue(fmt.Sprint("s", i))}.WithFormat("@")
		case 7:
			c = cell.Cell{} // clear
		}
		res, err := r.hostE.Append(ctx, eventlog.SequenceID(i), cell.Entry{Row: row, Column: col, Cell: c}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Empty() {
			delete(m, coord{row, col})
		} else {
			m[coord{row, col}] = c
		}
		if res.SnapshotRequested {
			r.wait(t)
		}
	}
	r.wait(t)
	done, pending := snapshots(t, r.log)
	if want := "[100 200 300 400 500 600 700 800 900]"; fmt.Sprint(done) != want || len(pending) != 0 {
		t.Fatalf("snapshots at %v (pending %v), want %s", done, pending, want)
	}
	third := r.fresh(t)
	v, err := third.Range(ctx, a1.Range{Row0: 0, Col0: 0, Row1: 200, Col1: 50})
	if err != nil {
		t.Fatal(err)
	}
	if third.Stats().SnapshotsLoaded != 1 || third.Stats().EntriesReplayed != 100 {
		t.Errorf("third engine loaded %d snapshots and replayed %d entries; want 1 and 100",
			third.Stats().SnapshotsLoaded, third.Stats().EntriesReplayed)
	}
	if len(v.Cells) != len(m) {
		t.Errorf("third engine sees %d cells, want %d", len(v.Cells), len(m))
	}
	for _, c := range v.Cells {
		if want := m[coord{c.Row, c.Col}]; !c.Cell.Equal(want) {
			t.Errorf("%s = %v, want %v", a1.Ref(c.Row, c.Col), c.Cell, want)
		}
	}
	if v.RowCount != 173 || v.ColCount != 37 {
		t.Errorf("counts %d x %d", v.RowCount, v.ColCount)
	}
}
