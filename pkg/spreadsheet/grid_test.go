package spreadsheet

import (
	"strconv"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/cell"
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
