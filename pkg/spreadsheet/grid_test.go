package spreadsheet

import (
	"context"
	"strconv"
	"testing"

	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"pgregory.net/rapid"
)

// TestFormatsAreCompacted: cells keep an index into the grid's table of
// formats; a cell whose format changes again and again does not make the
// table (and the grid's footprint) grow without bound, and every cell
// keeps its own format through the compactions.
func TestFormatsAreCompacted(t *testing.T) {
	g := newGrid(100, 100)
	for i := range 50 {
		g.apply(cell.Entry{Row: uint32(i), Column: 0, Cell: cell.Cell{Value: num(float64(i))}.WithFormat("kept " + strconv.Itoa(i))})
	}
	for i := range 10_000 {
		g.apply(cell.Entry{Row: 1000, Column: 1, Cell: cell.Cell{Value: cell.BoolValue(i%2 == 0)}.WithFormat("churn " + strconv.Itoa(i))})
	}
	if n := len(g.formats.list); n > 2*g.cells+64 {
		t.Fatalf("%d formats kept for %d cells", n, g.cells)
	}
	if g.bytes > 64<<10 {
		t.Fatalf("the grid holds %d bytes for %d cells", g.bytes, g.cells)
	}
	for i := range 50 {
		if c := g.get(uint32(i), 0); !c.Equal(cell.Cell{Value: num(float64(i))}.WithFormat("kept " + strconv.Itoa(i))) {
			t.Fatalf("cell %d = %v", i, c)
		}
	}
	if c := g.get(1000, 1); !c.Equal(cell.Cell{Value: cell.BoolValue(false)}.WithFormat("churn 9999")) {
		t.Fatalf("the churned cell = %v", c)
	}
	// A format with no value, and the empty format, are cells too.
	g.apply(cell.Entry{Row: 5, Column: 5, Cell: cell.Cell{}.WithFormat("")})
	if c := g.get(5, 5); !c.HasFormat || c.Format != "" || c.Empty() {
		t.Fatalf("a cell with the empty format = %v", c)
	}
}

// TestReadsOtherTileFormats: a snapshot written with one tile size reads
// right into an engine of another, where a blob's cells spread over
// several of the reader's tiles and several blobs fall into one of them.
func TestReadsOtherTileFormats(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		writer := Options{SnapshotInterval: 1000,
			TileWidth: rapid.SampledFrom([]int{1, 3, 100}).Draw(t, "writerW"), TileHeight: rapid.SampledFrom([]int{2, 5, 100}).Draw(t, "writerH")}
		log := logmem.New(logmem.Options{})
		root, _ := blobmem.New(blobmem.Options{}).Sheet("s1")
		r := newRigOn(t, log, root, writer)
		defer r.close()
		m := &model{cells: map[coord]cell.Cell{}}
		n := rapid.IntRange(1, 60).Draw(t, "edits")
		for i := range n {
			e := cell.Entry{Row: rapid.Uint32Range(0, 20).Draw(t, "row"), Column: rapid.Uint32Range(0, 20).Draw(t, "col"), Cell: genCell(t)}
			if _, err := r.hostE.Append(ctx, eventlog.SequenceID(i), e, nil); err != nil {
				t.Fatal(err)
			}
			m.apply(e)
		}
		if _, err := log.SetMetadata(ctx, eventlog.SequenceID(n-1), eventlog.MetadataUpdate{Pending: eventlog.Set(eventlog.WorkflowSnapshot)}); err != nil {
			t.Fatal(err)
		}
		if err := r.worker.RunSnapshot(ctx, eventlog.SequenceID(n-1)); err != nil {
			t.Fatal(err)
		}
		reader := Options{TileWidth: rapid.SampledFrom([]int{2, 7, 100}).Draw(t, "readerW"), TileHeight: rapid.SampledFrom([]int{1, 4, 100}).Draw(t, "readerH")}
		e, err := New("s1", log, root, nil, reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if e.Stats().SnapshotsLoaded != 1 {
			t.Fatal("the reader did not load the snapshot")
		}
		checkGrid(t, "reader of another tile format", m, e.host.cells)
	})
}
