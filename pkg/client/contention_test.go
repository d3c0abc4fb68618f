package client_test

import (
	"testing"

	"github.com/sheetlog/sheetlog/internal/apitest"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// TestContention: 8 writers × 40 appends on one sheet of a server over
// cmd/server's stores: every append lands once.
func TestContention(t *testing.T) {
	s := apitest.New(t, apitest.Options{Interval: 100, Workers: true})
	c := s.Client(t)
	r, err := c.RunContention(t.Context(), "hot", 8, 40)
	t.Log(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckContention(t.Context(), "hot", 8, 40); err != nil {
		t.Fatal(err)
	}
}

// TestWriterCatchUp: a writer with a view is handed what the others
// appended before it appends after it.
func TestWriterCatchUp(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	c := s.Client(t)
	ctx := t.Context()
	other := c.Writer("cu", 0)
	for i := range 3 {
		if _, err := other.Append(ctx, cell.Entry{Row: 0, Column: uint32(i), Cell: cell.Cell{Value: cell.StringValue("other")}}); err != nil {
			t.Fatal(err)
		}
	}
	w := c.Writer("cu", 1)
	var seen []eventlog.SequenceID
	w.CatchUp = func(p eventlog.Page) error {
		for id := range p.All() {
			seen = append(seen, id)
		}
		return nil
	}
	id, err := w.Append(ctx, cell.Entry{Row: 1, Column: 0, Cell: cell.Cell{Value: cell.BoolValue(true)}})
	if err != nil || id != 3 {
		t.Fatalf("append at %d, %v; want at 3", id, err)
	}
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 2 || w.Stats.Conflicts != 1 {
		t.Fatalf("caught up with %v after %d conflicts; want [1 2] after 1", seen, w.Stats.Conflicts)
	}
}
