package spreadsheet

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/cell"
	"pgregory.net/rapid"
)

// TestKeptEncodingProperty: over random edit sequences (rows filled in
// order, overwrites, clears of cells and of whole tiles, format changes
// and enough distinct formats to compact the table), a tile encoded from
// its kept encoding is byte for byte the tile encoded whole, whether the
// encoding was kept across a few edits or many, or dropped as the worker
// drops it.
func TestKeptEncodingProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tw := rapid.SampledFrom([]uint32{1, 3, 8}).Draw(t, "tw")
		th := rapid.SampledFrom([]uint32{1, 4, 10}).Draw(t, "th")
		g := newGrid(tw, th)
		encs := map[tileKey]*tileEncoding{}
		// next is where the row-major fill goes on.
		var next uint32
		coord := func(label string, bound uint32) uint32 {
			return rapid.Uint32Range(0, bound).Draw(t, label)
		}
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			for range rapid.IntRange(0, 12).Draw(t, "edits") {
				switch rapid.IntRange(0, 5).Draw(t, "edit") {
				case 0, 1: // the fill goes on
					g.apply(cell.Entry{Row: next / 5, Column: next % 5, Cell: genCell(t)})
					next++
				case 2: // anywhere, clears included
					g.apply(cell.Entry{Row: coord("row", 3*th), Column: coord("col", 2*tw), Cell: genCell(t)})
				case 3: // clear a cell already written
					g.apply(cell.Entry{Row: coord("row", next/5), Column: coord("col", 4)})
				case 4: // a format of its own, to fill the format table
					c := cell.Cell{Value: num(1)}.WithFormat("f" + strconv.Itoa(int(next)) + "-" + strconv.Itoa(rapid.IntRange(0, 200).Draw(t, "f")))
					g.apply(cell.Entry{Row: coord("row", next/5), Column: coord("col", 4), Cell: c})
				case 5: // empty a whole tile, to be made again
					for k := range g.tiles {
						for row := k.r * th; row < (k.r+1)*th; row++ {
							for col := k.c * tw; col < (k.c+1)*tw; col++ {
								g.apply(cell.Entry{Row: row, Column: col})
							}
						}
						break
					}
				}
			}
			// A snapshot: every tile encoded, from its kept encoding
			// when there is one; then some are dropped.
			for k, tl := range g.tiles {
				enc := encs[k]
				if enc == nil {
					enc = newTileEncoding()
					encs[k] = enc
				}
				got, want := g.encodeKept(enc, tl), g.encodeTile(nil, tl)
				if !bytes.Equal(got, want) {
					t.Fatalf("tile %s from its kept encoding:\n%s\nwhole:\n%s", g.tileName(k), got, want)
				}
			}
			for k, enc := range encs {
				if g.tiles[k] == nil || rapid.IntRange(0, 4).Draw(t, "drop") == 0 {
					delete(encs, k)
					dropTileEncoding(enc)
				}
			}
		}
	})
}
