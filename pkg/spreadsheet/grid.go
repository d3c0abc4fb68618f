package spreadsheet

import (
	"fmt"
	"math"
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
	// unchanged counts the leading rows no change has touched since the
	// tile was last encoded: a kept encoding of them (tileenc.go) is
	// still exact. Rows only shift at or after a change, so the lowest
	// row index changed is the bound.
	unchanged uint32
}

type tileRow struct {
	r     uint32 // row offset inside the tile
	cells []slot
}

// slot is one non-empty cell, packed into 32 bytes (a cell.Cell alone
// is 56): the string of a string value or the code of an error, the
// number (or 1 and 0 for true and false), the format as an index into the
// grid's table of formats (a sheet has few distinct formats, and a
// format string per cell would cost 16 bytes more), the column offset
// inside the tile (tiles are at most MaxTileSize wide) and the kind.
type slot struct {
	s    string
	n    float64
	f    uint32 // 0: no format; i: formats.list[i-1]
	c    uint16
	kind cell.Kind
}

// Heap cost of the grid's parts, for footprint: the sizes of the structs
// (checked in TestFootprintConstants), a tile's share of the tiles map (a
// 16-byte slot at the load factors Go's maps run at), and a format's
// entry in the table (its map slot and list element).
const (
	slotBytes      = 32
	rowBytes       = 32
	tileBytes      = 32
	tileMapBytes   = 32
	formatEntBytes = 48
)

// formats interns the format strings of a grid: slots hold an index.
// Formats are not removed one by one; the table is rebuilt from the cells
// once it holds many more formats than cells use (compactFormats).
type formats struct {
	index map[string]uint32
	list  []string
}

// grid is the state of a sheet: every non-empty cell, grouped in tiles of
// a fixed size, plus the row and column counts. Only non-empty tiles are
// kept, so memory follows the number of cells, not the sheet's extent.
type grid struct {
	tw, th  uint32
	tiles   map[tileKey]*tile
	formats formats
	// last is the tile of lastKey, the tile looked up last, whose origin
	// is (lastRow0, lastCol0): reads and writes come row by row, so most
	// find their tile without dividing or the map.
	last               *tile
	lastKey            tileKey
	lastRow0, lastCol0 uint32
	rowCount           uint64
	colCount           uint64
	// cells is the number of non-empty cells.
	cells int
	// bytes is the heap the grid holds, kept up to date by every change.
	bytes int64
}

func newGrid(tw, th uint32) *grid {
	return &grid{tw: tw, th: th, tiles: map[tileKey]*tile{}}
}

func (g *grid) locate(row, col uint32) (k tileKey, r, c uint32) {
	// Unsigned: a row or column before the last tile's origin wraps
	// around and fails the test.
	if g.last != nil && row-g.lastRow0 < g.th && col-g.lastCol0 < g.tw {
		return g.lastKey, row - g.lastRow0, col - g.lastCol0
	}
	return tileKey{row / g.th, col / g.tw}, row % g.th, col % g.tw
}

// remember makes t, the tile at k, the last one looked up.
func (g *grid) remember(t *tile, k tileKey) {
	g.last, g.lastKey, g.lastRow0, g.lastCol0 = t, k, k.r*g.th, k.c*g.tw
}

// apply replays one SetCellValueAndFormat entry.
func (g *grid) apply(e cell.Entry) {
	g.rowCount = max(g.rowCount, uint64(e.Row)+1)
	g.colCount = max(g.colCount, uint64(e.Column)+1)
	g.set(e.Row, e.Column, e.Cell)
	g.compactFormats()
}

// set stores v (an empty v clears the cell) without touching the counts.
func (g *grid) set(row, col uint32, v cell.Cell) {
	k, r, c := g.locate(row, col)
	t := g.tile(k)
	if t == nil {
		if v.Empty() {
			return
		}
		t = &tile{}
		g.tiles[k] = t
		g.remember(t, k)
		g.bytes += tileBytes + tileMapBytes
	}
	added, bytes := t.set(r, g.pack(c, v))
	g.cells += added
	g.bytes += bytes
	if len(t.rows) == 0 {
		g.bytes -= tileBytes + tileMapBytes + int64(cap(t.rows))*rowBytes
		delete(g.tiles, k)
		g.last = nil
	}
}

// tile is the tile at k, or nil.
func (g *grid) tile(k tileKey) *tile {
	if g.last != nil && g.lastKey == k {
		return g.last
	}
	t := g.tiles[k]
	if t != nil {
		g.remember(t, k)
	}
	return t
}

func (g *grid) get(row, col uint32) cell.Cell {
	k, r, c := g.locate(row, col)
	if t := g.tile(k); t != nil {
		if ri, ok := t.row(r); ok {
			if ci, ok := t.rows[ri].col(uint16(c)); ok {
				return g.unpack(&t.rows[ri].cells[ci])
			}
		}
	}
	return cell.Cell{}
}

// pack makes the slot of v at column offset c, interning its format.
func (g *grid) pack(c uint32, v cell.Cell) slot {
	s := slot{c: uint16(c), kind: v.Value.Kind()}
	switch s.kind {
	case cell.Bool:
		if v.Value.BoolVal() {
			s.n = 1
		}
	case cell.Number:
		s.n = v.Value.NumberVal()
	case cell.String, cell.Error:
		s.s = v.Value.StringVal()
	}
	if v.HasFormat {
		s.f = g.formatIndex(v.Format)
	}
	return s
}

// unpack is the cell of a slot.
func (g *grid) unpack(s *slot) cell.Cell {
	var c cell.Cell
	switch s.kind {
	case cell.Null:
		c.Value = cell.NullValue()
	case cell.Bool:
		c.Value = cell.BoolValue(s.n != 0)
	case cell.Number:
		c.Value, _ = cell.NumberValue(s.n) // stored numbers are finite
	case cell.String:
		c.Value = cell.StringValue(s.s)
	case cell.Error:
		c.Value, _ = cell.ErrorValue(s.s) // stored codes are valid
	}
	if s.f != 0 {
		c = c.WithFormat(g.formats.list[s.f-1])
	}
	return c
}

// formatIndex interns f.
func (g *grid) formatIndex(f string) uint32 {
	if i, ok := g.formats.index[f]; ok {
		return i
	}
	if g.formats.index == nil {
		g.formats.index = map[string]uint32{}
	}
	g.formats.list = append(g.formats.list, f)
	i := uint32(len(g.formats.list))
	g.formats.index[f] = i
	g.bytes += formatEntBytes + allocSize(len(f))
	return i
}

// adopt moves the cells of p (a grid of the same tile size, decoded from
// one tile blob) into g. Tiles g does not have yet are taken as they are
// (the common case: a snapshot in the grid's own tile format, one blob
// per tile); a tile both hold (blobs of another tile format) is merged
// cell by cell. p is not used afterwards.
func (g *grid) adopt(p *grid) {
	for k := range p.tiles {
		if g.tiles[k] != nil {
			p.each(a1.Range{Row1: math.MaxUint32, Col1: math.MaxUint32}, func(row, col uint32, c cell.Cell) {
				g.set(row, col, c)
			})
			return
		}
	}
	var formatBytes int64
	for _, f := range p.formats.list {
		formatBytes += formatEntBytes + allocSize(len(f))
	}
	for k, t := range p.tiles {
		if len(p.formats.list) > 0 {
			for ri := range t.rows {
				for ci := range t.rows[ri].cells {
					if s := &t.rows[ri].cells[ci]; s.f != 0 {
						s.f = g.formatIndex(p.formats.list[s.f-1])
					}
				}
			}
		}
		g.tiles[k] = t
	}
	g.cells += p.cells
	g.bytes += p.bytes - formatBytes
}

// compactFormats rebuilds the format table from the formats the cells
// use, once it holds more than twice as many as there are cells (and a
// few): a sheet whose cells each got a format of their own, over and
// over, would otherwise keep every format ever set.
func (g *grid) compactFormats() {
	if len(g.formats.list) <= 64 || len(g.formats.list) <= 2*g.cells {
		return
	}
	old := g.formats.list
	for _, f := range old {
		g.bytes -= formatEntBytes + allocSize(len(f))
	}
	g.formats = formats{}
	for _, t := range g.tiles {
		for ri := range t.rows {
			for ci := range t.rows[ri].cells {
				if s := &t.rows[ri].cells[ci]; s.f != 0 {
					s.f = g.formatIndex(old[s.f-1])
				}
			}
		}
	}
}

// row finds the row at offset r, or where it would be inserted. The
// last row is tried first: writes come row by row.
func (t *tile) row(r uint32) (int, bool) {
	if n := len(t.rows); n == 0 || t.rows[n-1].r < r {
		return n, false
	} else if t.rows[n-1].r == r {
		return n - 1, true
	} else if r < uint32(n) && t.rows[r].r == r {
		return int(r), true // a tile whose rows are all there
	}
	return slices.BinarySearchFunc(t.rows, r, func(x tileRow, r uint32) int { return cmpUint32(x.r, r) })
}

// col finds the cell at column offset c, or where it would be inserted.
func (tr *tileRow) col(c uint16) (int, bool) {
	if n := len(tr.cells); n == 0 || tr.cells[n-1].c < c {
		return n, false
	} else if tr.cells[n-1].c == c {
		return n - 1, true
	} else if int(c) < n && tr.cells[c].c == c {
		return int(c), true // a row whose cells are all there
	}
	return slices.BinarySearchFunc(tr.cells, c, func(x slot, c uint16) int { return cmpUint32(uint32(x.c), uint32(c)) })
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

// set stores v at row offset r (its column offset is v.c) inside the
// tile, or clears the cell when v is empty (no kind, no format), and
// returns the change in the number of non-empty cells and in the bytes
// held.
func (t *tile) set(r uint32, v slot) (added int, bytes int64) {
	t.clean = false
	empty := v.kind == cell.Absent && v.f == 0
	ri, rowFound := t.row(r)
	t.unchanged = min(t.unchanged, uint32(ri))
	if !rowFound {
		if empty {
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
	ci, found := tr.col(v.c)
	switch {
	case found && empty:
		bytes -= slotStringBytes(&tr.cells[ci])
		tr.cells = slices.Delete(tr.cells, ci, ci+1)
		added = -1
		if len(tr.cells) == 0 {
			bytes -= int64(cap(tr.cells)) * slotBytes
			t.rows = slices.Delete(t.rows, ri, ri+1)
		}
	case found:
		bytes += slotStringBytes(&v) - slotStringBytes(&tr.cells[ci])
		tr.cells[ci] = v
	case !empty:
		before := cap(tr.cells)
		if ci == len(tr.cells) {
			tr.cells = append(tr.cells, v)
		} else {
			tr.cells = slices.Insert(tr.cells, ci, v)
		}
		bytes += int64(cap(tr.cells)-before)*slotBytes + slotStringBytes(&v)
		added = 1
	}
	return added, bytes
}

// slotStringBytes is the heap a slot holds beyond itself: its string (a
// string value or an error code; formats are the table's).
func slotStringBytes(s *slot) int64 {
	return allocSize(len(s.s))
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
			for i := range tr.cells {
				s := &tr.cells[i]
				if col := k.c*g.tw + uint32(s.c); col >= r.Col0 && col <= r.Col1 {
					fn(row, col, g.unpack(s))
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
func (g *grid) encodedSizeHint(t *tile) int {
	n := 2
	for _, tr := range t.rows {
		for i := range tr.cells {
			s := &tr.cells[i]
			n += 24 + len(s.s)
			if s.f != 0 {
				n += 12 + len(g.formats.list[s.f-1])
			}
		}
	}
	return n
}

// encodeTile appends the blob of tile t: keys are A1 references relative
// to the tile origin, in row-major order.
func (g *grid) encodeTile(dst []byte, t *tile) []byte {
	dst = append(dst, '{')
	start := len(dst)
	for ri := range t.rows {
		dst = g.appendRowMembers(dst, &t.rows[ri], len(dst) > start)
	}
	return append(dst, '}')
}

// appendRowMembers appends the members of one row of a tile blob, after
// a comma when sep says members precede them. encodeTile and the kept
// encodings of tileenc.go both go through it, so they write the same
// bytes.
func (g *grid) appendRowMembers(dst []byte, tr *tileRow, sep bool) []byte {
	for i := range tr.cells {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, '"')
		dst = a1.Append(dst, tr.r, uint32(tr.cells[i].c))
		dst = append(dst, '"', ':')
		c := g.unpack(&tr.cells[i])
		dst = c.AppendJSON(dst)
	}
	return dst
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
	// A tile holds up to thousands of distinct keys, each parsed and
	// dropped: read as bytes, they are never copied.
	err := s.ObjectKeys(func(key []byte) error {
		r, c, err := a1.ParseBytes(key)
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
