package spreadsheet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sheetlog/sheetlog/internal/jsonscan"
	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
)

// tileKey is a tile's position in tile units (origin row / height,
// origin column / width).
type tileKey struct{ r, c uint32 }

// tile holds the non-empty cells of one tile in row-major order: its rows
// sorted by their offset inside the tile, each row's cells sorted by
// column. Sheets are mostly written row by row, so most writes append;
// a tile encodes in key order without sorting; and the slices' capacities
// say how much memory the tile holds.
type tile struct {
	rows []tileRow
	// clean is true while the tile's blob in the worker's base snapshot
	// holds exactly what encodeTile would write for it, so a snapshot
	// may copy that blob instead of encoding the tile. Every change
	// clears it; only the worker sets it.
	clean bool
}

type tileRow struct {
	r     uint32 // row offset inside the tile
	cells []slot
}

type slot struct {
	c uint32 // column offset inside the tile
	cell.Cell
}

// Heap cost of the grid's parts, for footprint: the sizes of the structs
// (checked in TestFootprintConstants), and a tile's share of the tiles
// map (a 16-byte slot at the load factors Go's maps run at).
const (
	slotBytes    = 64
	rowBytes     = 32
	tileBytes    = 32
	tileMapBytes = 32
)

// grid is the state of a sheet: every non-empty cell, grouped in tiles of
// a fixed size, plus the row and column counts. Only non-empty tiles are
// kept, so memory follows the number of cells, not the sheet's extent.
type grid struct {
	tw, th   uint32
	tiles    map[tileKey]*tile
	rowCount uint64
	colCount uint64
	// cells is the number of non-empty cells.
	cells int
	// bytes is the heap the grid holds, kept up to date by every change.
	bytes int64
}

func newGrid(tw, th uint32) *grid {
	return &grid{tw: tw, th: th, tiles: map[tileKey]*tile{}}
}

func (g *grid) locate(row, col uint32) (k tileKey, r, c uint32) {
	return tileKey{row / g.th, col / g.tw}, row % g.th, col % g.tw
}

// apply replays one SetCellValueAndFormat entry.
func (g *grid) apply(e cell.Entry) {
	g.rowCount = max(g.rowCount, uint64(e.Row)+1)
	g.colCount = max(g.colCount, uint64(e.Column)+1)
	g.set(e.Row, e.Column, e.Cell)
}

// set stores v (an empty v clears the cell) without touching the counts.
func (g *grid) set(row, col uint32, v cell.Cell) {
	k, r, c := g.locate(row, col)
	t := g.tiles[k]
	if t == nil {
		if v.Empty() {
			return
		}
		t = &tile{}
		g.tiles[k] = t
		g.bytes += tileBytes + tileMapBytes
	}
	added, bytes := t.set(r, c, v)
	g.cells += added
	g.bytes += bytes
	if len(t.rows) == 0 {
		g.bytes -= tileBytes + tileMapBytes + int64(cap(t.rows))*rowBytes
		delete(g.tiles, k)
	}
}

func (g *grid) get(row, col uint32) cell.Cell {
	k, r, c := g.locate(row, col)
	if t := g.tiles[k]; t != nil {
		if ri, ok := t.row(r); ok {
			if ci, ok := t.rows[ri].col(c); ok {
				return t.rows[ri].cells[ci].Cell
			}
		}
	}
	return cell.Cell{}
}

// row finds the row at offset r, or where it would be inserted. The
// last row is tried first: writes come row by row.
func (t *tile) row(r uint32) (int, bool) {
	if n := len(t.rows); n == 0 || t.rows[n-1].r < r {
		return n, false
	} else if t.rows[n-1].r == r {
		return n - 1, true
	}
	return slices.BinarySearchFunc(t.rows, r, func(x tileRow, r uint32) int { return cmpUint32(x.r, r) })
}

// col finds the cell at column offset c, or where it would be inserted.
func (tr *tileRow) col(c uint32) (int, bool) {
	if n := len(tr.cells); n == 0 || tr.cells[n-1].c < c {
		return n, false
	} else if tr.cells[n-1].c == c {
		return n - 1, true
	}
	return slices.BinarySearchFunc(tr.cells, c, func(x slot, c uint32) int { return cmpUint32(x.c, c) })
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// set stores v at (r, c) inside the tile and returns the change in the
// number of non-empty cells and in the bytes held.
func (t *tile) set(r, c uint32, v cell.Cell) (added int, bytes int64) {
	t.clean = false
	ri, rowFound := t.row(r)
	if !rowFound {
		if v.Empty() {
			return 0, 0
		}
		// A new row is sized like its neighbour: blocks of cells are
		// written row by row, and rows of one block are alike, so most
		// rows are allocated once at their final size.
		hint := 1
		if ri > 0 {
			hint = max(hint, len(t.rows[ri-1].cells))
		}
		before := cap(t.rows)
		t.rows = slices.Insert(t.rows, ri, tileRow{r: r, cells: make([]slot, 0, hint)})
		bytes += int64(cap(t.rows)-before)*rowBytes + int64(hint)*slotBytes
	}
	tr := &t.rows[ri]
	ci, found := tr.col(c)
	switch {
	case found && v.Empty():
		bytes -= cellBytes(tr.cells[ci].Cell)
		tr.cells = slices.Delete(tr.cells, ci, ci+1)
		added = -1
		if len(tr.cells) == 0 {
			bytes -= int64(cap(tr.cells)) * slotBytes
			t.rows = slices.Delete(t.rows, ri, ri+1)
		}
	case found:
		bytes += cellBytes(v) - cellBytes(tr.cells[ci].Cell)
		tr.cells[ci].Cell = v
	case !v.Empty():
		before := cap(tr.cells)
		if ci == len(tr.cells) {
			tr.cells = append(tr.cells, slot{c, v})
		} else {
			tr.cells = slices.Insert(tr.cells, ci, slot{c, v})
		}
		bytes += int64(cap(tr.cells)-before)*slotBytes + cellBytes(v)
		added = 1
	}
	return added, bytes
}

// cellBytes is the heap a cell holds beyond its slot: its strings (a
// string value or an error code, and the format).
func cellBytes(c cell.Cell) int64 {
	return allocSize(len(c.Format)) + allocSize(len(c.Value.StringVal()))
}

// sizeClasses are the Go runtime's small allocation sizes: a string of n
// bytes occupies the smallest class that holds it.
var sizeClasses = [...]int{
	8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280,
	1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528,
	6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072,
	20480, 21760, 24576, 27264, 28672, 32768,
}

// allocSize is the heap an allocation of n bytes occupies: tiny ones
// share blocks, small ones round up to a size class, large ones to whole
// 8 KiB pages.
func allocSize(n int) int64 {
	switch {
	case n == 0:
		return 0
	case n < 16:
		return int64(n)
	case n > sizeClasses[len(sizeClasses)-1]:
		return int64((n + 8191) &^ 8191)
	}
	i, _ := slices.BinarySearch(sizeClasses[:], n)
	return int64(sizeClasses[i])
}

// each calls fn for every non-empty cell inside r, in no particular order.
func (g *grid) each(r a1.Range, fn func(row, col uint32, c cell.Cell)) {
	k0, _, _ := g.locate(r.Row0, r.Col0)
	k1, _, _ := g.locate(r.Row1, r.Col1)
	visit := func(k tileKey, t *tile) {
		for _, tr := range t.rows {
			row := k.r*g.th + tr.r
			if row < r.Row0 || row > r.Row1 {
				continue
			}
			for _, s := range tr.cells {
				if col := k.c*g.tw + s.c; col >= r.Col0 && col <= r.Col1 {
					fn(row, col, s.Cell)
				}
			}
		}
	}
	// Walk whichever is smaller: the tiles the range overlaps, or the
	// tiles that exist. The loops count in 64 bits: a tile key can be the
	// largest uint32.
	if span := (uint64(k1.r) - uint64(k0.r) + 1) * (uint64(k1.c) - uint64(k0.c) + 1); span <= uint64(len(g.tiles)) {
		for tr := uint64(k0.r); tr <= uint64(k1.r); tr++ {
			for tc := uint64(k0.c); tc <= uint64(k1.c); tc++ {
				k := tileKey{uint32(tr), uint32(tc)}
				if t := g.tiles[k]; t != nil {
					visit(k, t)
				}
			}
		}
		return
	}
	for k, t := range g.tiles {
		if k.r >= k0.r && k.r <= k1.r && k.c >= k0.c && k.c <= k1.c {
			visit(k, t)
		}
	}
}

// appendTileName appends the blob name of a tile: origin row, origin
// column, then HEIGHT, then WIDTH.
func (g *grid) appendTileName(b []byte, k tileKey) []byte {
	b = strconv.AppendUint(b, uint64(k.r)*uint64(g.th), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(k.c)*uint64(g.tw), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(g.th), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, uint64(g.tw), 10)
}

func (g *grid) tileName(k tileKey) string { return string(g.appendTileName(nil, k)) }

// encodedSizeHint guesses the size of the tile's blob, so that encoding
// it rarely grows the buffer: a key and a short value per cell, plus the
// strings.
func (t *tile) encodedSizeHint() int {
	n := 2
	for _, tr := range t.rows {
		for _, s := range tr.cells {
			n += 24 + len(s.Format) + len(s.Value.StringVal())
		}
	}
	return n
}

// encodeTile appends the tile blob: keys are A1 references relative to the
// tile origin, in row-major order.
func encodeTile(dst []byte, t *tile) []byte {
	dst = append(dst, '{')
	first := true
	for _, tr := range t.rows {
		for _, s := range tr.cells {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, '"')
			dst = a1.Append(dst, tr.r, s.c)
			dst = append(dst, '"', ':')
			dst = s.Cell.AppendJSON(dst)
		}
	}
	return append(dst, '}')
}

// tileFormat is the "tileFormat" member of a snapshot index.
type tileFormat struct {
	Type       string `json:"type"`
	TileWidth  uint32 `json:"tileWidth"`
	TileHeight uint32 `json:"tileHeight"`
}

// snapshotIndex is the index blob of a snapshot.
type snapshotIndex struct {
	RowCount   uint64     `json:"rowCount"`
	ColCount   uint64     `json:"colCount"`
	TileFormat tileFormat `json:"tileFormat"`
}

func (g *grid) encodeIndex() []byte {
	return fmt.Appendf(nil, `{"rowCount":%d,"colCount":%d,"tileFormat":{"type":"grid","tileWidth":%d,"tileHeight":%d}}`,
		g.rowCount, g.colCount, g.tw, g.th)
}

// parseTileName reads "r-c-H-W".
func parseTileName(name string) (row, col, h, w uint32, err error) {
	parts := strings.Split(name, "-")
	if len(parts) != 4 {
		return 0, 0, 0, 0, fmt.Errorf("tile name %q is not r-c-H-W", name)
	}
	var v [4]uint32
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("tile name %q: %v", name, err)
		}
		v[i] = uint32(n)
	}
	if v[2] == 0 || v[3] == 0 {
		return 0, 0, 0, 0, fmt.Errorf("tile name %q has an empty size", name)
	}
	return v[0], v[1], v[2], v[3], nil
}

// decodeTile adds the cells of a tile blob whose origin is (row0, col0).
// Cells beyond the tile's bounds or the valid coordinates are an error;
// {} entries (cleared cells written by the TypeScript engine) are empty.
func (g *grid) decodeTile(data []byte, row0, col0, h, w uint32) error {
	s := jsonscan.New(data)
	err := s.Object(func(key string) error {
		r, c, err := a1.Parse(key)
		if err != nil {
			return err
		}
		if r >= h || c >= w {
			return fmt.Errorf("cell %s lies outside its %dx%d tile", key, h, w)
		}
		row, col := uint64(row0)+uint64(r), uint64(col0)+uint64(c)
		if row > cell.MaxCoord || col > cell.MaxCoord {
			return fmt.Errorf("cell %s of the tile at %d,%d is beyond the sheet", key, row0, col0)
		}
		v, err := cell.DecodeCell(s)
		if err != nil {
			return fmt.Errorf("cell %s: %w", key, err)
		}
		if !v.Empty() {
			g.set(uint32(row), uint32(col), v)
		}
		return nil
	})
	if err == nil {
		err = s.End()
	}
	return err
}
