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

// tile holds the non-empty cells of one tile, keyed by their row-major
// offset inside it, so that sorting keys gives the tile's cells in row
// order and encoding is deterministic.
type tile struct {
	cells map[uint32]cell.Cell
}

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
	// dirty records tiles changed since the last snapshot written from
	// this grid; nil when nobody tracks changes (a host-only grid).
	dirty map[tileKey]struct{}
}

func newGrid(tw, th uint32, trackDirty bool) *grid {
	g := &grid{tw: tw, th: th, tiles: map[tileKey]*tile{}}
	if trackDirty {
		g.dirty = map[tileKey]struct{}{}
	}
	return g
}

func (g *grid) locate(row, col uint32) (tileKey, uint32) {
	return tileKey{row / g.th, col / g.tw}, (row%g.th)*g.tw + col%g.tw
}

// apply replays one SetCellValueAndFormat entry.
func (g *grid) apply(e cell.Entry) {
	g.rowCount = max(g.rowCount, uint64(e.Row)+1)
	g.colCount = max(g.colCount, uint64(e.Column)+1)
	g.set(e.Row, e.Column, e.Cell)
}

// set stores c (an empty c clears the cell) without touching the counts.
func (g *grid) set(row, col uint32, c cell.Cell) {
	k, off := g.locate(row, col)
	t := g.tiles[k]
	if c.Empty() {
		if t == nil {
			return
		}
		if _, ok := t.cells[off]; ok {
			g.cells--
			delete(t.cells, off)
		}
		if len(t.cells) == 0 {
			delete(g.tiles, k)
		}
	} else {
		if t == nil {
			t = &tile{cells: map[uint32]cell.Cell{}}
			g.tiles[k] = t
		}
		if _, ok := t.cells[off]; !ok {
			g.cells++
		}
		t.cells[off] = c
	}
	if g.dirty != nil {
		g.dirty[k] = struct{}{}
	}
}

func (g *grid) get(row, col uint32) cell.Cell {
	k, off := g.locate(row, col)
	if t := g.tiles[k]; t != nil {
		return t.cells[off]
	}
	return cell.Cell{}
}

// footprint estimates the memory the grid holds.
func (g *grid) footprint() int64 {
	if g == nil {
		return 0
	}
	return int64(g.cells)*bytesPerCell + int64(len(g.tiles))*bytesPerTile
}

// each calls fn for every non-empty cell inside r, in no particular order.
func (g *grid) each(r a1.Range, fn func(row, col uint32, c cell.Cell)) {
	k0, _ := g.locate(r.Row0, r.Col0)
	k1, _ := g.locate(r.Row1, r.Col1)
	visit := func(k tileKey, t *tile) {
		for off, c := range t.cells {
			row, col := k.r*g.th+off/g.tw, k.c*g.tw+off%g.tw
			if row >= r.Row0 && row <= r.Row1 && col >= r.Col0 && col <= r.Col1 {
				fn(row, col, c)
			}
		}
	}
	// Walk whichever is smaller: the tiles the range overlaps, or the
	// tiles that exist.
	if span := uint64(k1.r-k0.r+1) * uint64(k1.c-k0.c+1); span <= uint64(len(g.tiles)) {
		for tr := k0.r; tr <= k1.r; tr++ {
			for tc := k0.c; tc <= k1.c; tc++ {
				if t := g.tiles[tileKey{tr, tc}]; t != nil {
					visit(tileKey{tr, tc}, t)
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

// tileName is the blob name of a tile: origin row, origin column, then
// HEIGHT, then WIDTH.
func (g *grid) tileName(k tileKey) string {
	var b []byte
	b = strconv.AppendUint(b, uint64(k.r)*uint64(g.th), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(k.c)*uint64(g.tw), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(g.th), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(g.tw), 10)
	return string(b)
}

// encodeTile appends the tile blob: keys are A1 references relative to the
// tile origin, in row-major order.
func (g *grid) encodeTile(dst []byte, t *tile) []byte {
	offs := make([]uint32, 0, len(t.cells))
	for off := range t.cells {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	dst = append(dst, '{')
	for i, off := range offs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = a1.Append(dst, off/g.tw, off%g.tw)
		dst = append(dst, '"', ':')
		dst = t.cells[off].AppendJSON(dst)
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
