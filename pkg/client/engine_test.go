package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/internal/apitest"
	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// waitSnapshots polls the sheet's status until a snapshot exists and none
// is pending.
func waitSnapshots(t *testing.T, c *client.Client, sheet string) client.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.Status(t.Context(), sheet)
		if err != nil {
			t.Fatal(err)
		}
		if st.LastSnapshot != nil && len(st.Pending) == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshots of %s: %+v after 60 s", sheet, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestThinEngine: an engine over the client loads the snapshot the
// server's workers wrote, reads every cell, appends, and never sets
// pending, even with a snapshot interval of 1.
func TestThinEngine(t *testing.T) {
	s := apitest.New(t, apitest.Options{Interval: 25, Workers: true})
	c := s.Client(t)
	ctx := t.Context()
	const sheet = "thin"
	want := map[client.Pos]cell.Cell{}
	w := c.Writer(sheet, 0)
	for i := range 130 {
		row, col := uint32(i%17), uint32(i%7)
		v, _ := cell.NumberValue(float64(i) + 0.5)
		c := cell.Cell{Value: v}
		if i%5 == 0 {
			c = cell.Cell{Value: cell.StringValue(fmt.Sprintf("s%d ✓", i))}.WithFormat("@")
		}
		if _, err := w.Append(ctx, cell.Entry{Row: row, Column: col, Cell: c}); err != nil {
			t.Fatal(err)
		}
		want[client.Pos{Row: row, Col: col}] = c
	}
	st := waitSnapshots(t, c, sheet)

	newThin := func() *spreadsheet.Engine {
		e, err := spreadsheet.New(sheet, c.Log(sheet), c.Blobs(sheet), client.Host, spreadsheet.Options{SnapshotInterval: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		return e
	}
	check := func(e *spreadsheet.Engine, what string) {
		t.Helper()
		v, err := e.Range(ctx, a1.Range{Row0: 0, Col0: 0, Row1: 99, Col1: 99})
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Cells) != len(want) {
			t.Errorf("%s: %d cells, want %d", what, len(v.Cells), len(want))
		}
		for _, pc := range v.Cells {
			if w, ok := want[client.Pos{Row: pc.Row, Col: pc.Col}]; !ok || !w.Equal(pc.Cell) {
				t.Errorf("%s: %s is %v, want %v", what, a1.Ref(pc.Row, pc.Col), pc.Cell, w)
			}
		}
	}
	e := newThin()
	check(e, "thin engine after load")
	if got := e.Stats().SnapshotsLoaded; got != 1 {
		t.Errorf("the thin engine loaded %d snapshots, want the server's (at %d)", got, st.LastSnapshot.SequenceID)
	}
	if n := e.Stats().EntriesReplayed; n >= 130 {
		t.Errorf("the thin engine replayed %d entries: it did not start from the snapshot at %d", n, st.LastSnapshot.SequenceID)
	}

	// Its appends land, and none requests a snapshot (the client would
	// refuse an entry with pending).
	for i := range 30 {
		ent := cell.Entry{Row: uint32(40 + i), Column: 3, Cell: cell.Cell{Value: cell.BoolValue(i%2 == 0)}}
		next, err := e.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Append(ctx, next, ent, nil)
		if err != nil {
			t.Fatalf("thin append %d: %v", i, err)
		}
		if res.SnapshotRequested {
			t.Fatalf("the thin engine requested a snapshot at %d", res.SequenceID)
		}
		want[client.Pos{Row: ent.Row, Col: ent.Column}] = ent.Cell
	}
	check(e, "thin engine after its appends")
	check(newThin(), "a second thin engine")
}
