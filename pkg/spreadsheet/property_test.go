package spreadsheet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/a1"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"pgregory.net/rapid"
)

type coord struct{ row, col uint32 }

// model is the plain map the engine must agree with.
type model struct {
	cells      map[coord]cell.Cell
	rows, cols uint64
}

func (m *model) apply(e cell.Entry) {
	m.rows = max(m.rows, uint64(e.Row)+1)
	m.cols = max(m.cols, uint64(e.Column)+1)
	if e.Cell.Empty() {
		delete(m.cells, coord{e.Row, e.Column})
	} else {
		m.cells[coord{e.Row, e.Column}] = e.Cell
	}
}

func (m *model) clone() *model {
	return &model{cells: maps.Clone(m.cells), rows: m.rows, cols: m.cols}
}

func genCoord(t *rapid.T, label string) uint32 {
	return rapid.OneOf(
		rapid.Uint32Range(0, 12),
		rapid.SampledFrom([]uint32{99, 100, 101, cell.MaxCoord - 1, cell.MaxCoord}),
	).Draw(t, label)
}

func genCell(t *rapid.T) cell.Cell {
	var c cell.Cell
	switch rapid.IntRange(0, 6).Draw(t, "kind") {
	case 0: // absent value
	case 1:
		c.Value = cell.NullValue()
	case 2:
		c.Value = cell.BoolValue(rapid.Bool().Draw(t, "b"))
	case 3:
		c.Value = num(rapid.Float64().Draw(t, "n"))
	case 4, 5:
		c.Value = cell.StringValue(rapid.StringN(0, 6, -1).Draw(t, "s"))
	case 6:
		v, _ := cell.ErrorValue(rapid.SampledFrom(cell.ErrorCodes).Draw(t, "code"))
		c.Value = v
	}
	if rapid.IntRange(0, 3).Draw(t, "fmt") == 0 {
		c = c.WithFormat(rapid.SampledFrom([]string{"", "0.00", "@", "yyyy-mm-dd"}).Draw(t, "format"))
	}
	return c
}

// checkGrid compares a whole grid with the model: the counts, the number
// of non-empty cells, and every cell both ways (a cell the model lacks is
// as wrong as one it has with another value). No tile is empty.
func checkGrid(t tb, what string, m *model, g *grid) {
	t.Helper()
	if g.rowCount != m.rows || g.colCount != m.cols {
		t.Fatalf("%s: counts %d x %d, model %d x %d", what, g.rowCount, g.colCount, m.rows, m.cols)
	}
	got := map[coord]cell.Cell{}
	g.each(a1.Range{Row0: 0, Col0: 0, Row1: math.MaxUint32, Col1: math.MaxUint32}, func(row, col uint32, c cell.Cell) {
		if _, dup := got[coord{row, col}]; dup {
			t.Fatalf("%s: %s listed twice", what, a1.Ref(row, col))
		}
		got[coord{row, col}] = c
	})
	for k, want := range m.cells {
		if c, ok := got[k]; !ok || !c.Equal(want) {
			t.Fatalf("%s: %s = %v, model %v", what, a1.Ref(k.row, k.col), c, want)
		}
	}
	for k, c := range got {
		if _, ok := m.cells[k]; !ok {
			t.Fatalf("%s: %s = %v, model has it empty", what, a1.Ref(k.row, k.col), c)
		}
	}
	if g.cells != len(m.cells) || len(got) != len(m.cells) {
		t.Fatalf("%s: %d cells counted, %d listed, model %d", what, g.cells, len(got), len(m.cells))
	}
	for k, tl := range g.tiles {
		if len(tl.rows) == 0 {
			t.Fatalf("%s: tile %v is empty", what, k)
		}
	}
}

// checkSnapshotBlobs checks the snapshot at id holds exactly the
// non-empty cells of the model, in tiles that each hold at least one,
// with no entry for an empty cell, and that each tile blob is byte for
// byte the encoding of the model's cells (however the worker got it:
// encoded whole, from a kept encoding, or copied).
func checkSnapshotBlobs(t tb, ctx context.Context, e *Engine, id eventlog.SequenceID, m *model) {
	t.Helper()
	g := newGrid(uint32(e.opts.TileWidth), uint32(e.opts.TileHeight))
	if err := e.readSnapshot(ctx, g, eventlog.SnapshotRef{SequenceID: id, BlobID: snapName(id)}, false); err != nil {
		t.Fatal(err)
	}
	checkGrid(t, fmt.Sprintf("snapshot %d alone", id), m, g)
	tiles, err := readDir(ctx, e.root, snapName(id)+"/tiles")
	if err != nil {
		t.Fatal(err)
	}
	if len(tiles) != len(g.tiles) {
		t.Fatalf("snapshot %d has %d tile blobs for %d non-empty tiles", id, len(tiles), len(g.tiles))
	}
	want := newGrid(g.tw, g.th)
	for at, c := range m.cells {
		want.set(at.row, at.col, c)
	}
	for k, wt := range want.tiles {
		if blob, enc := tiles[want.tileName(k)], want.encodeTile(nil, wt); !bytes.Equal(blob, enc) {
			t.Fatalf("snapshot %d, tile %s:\n%s\nwant\n%s", id, want.tileName(k), blob, enc)
		}
	}
	for name, blob := range tiles {
		var cells map[string]map[string]json.RawMessage
		if err := json.Unmarshal(blob, &cells); err != nil {
			t.Fatalf("snapshot %d, tile %s: %v", id, name, err)
		}
		if len(cells) == 0 {
			t.Fatalf("snapshot %d wrote the empty tile %s", id, name)
		}
		for ref, c := range cells {
			if len(c) == 0 {
				t.Fatalf("snapshot %d, tile %s: %s is an empty cell entry", id, name, ref)
			}
		}
	}
}

// TestSnapshotsCompleteProperty: random edit sequences, appended singly
// and in batches, across several
// snapshot intervals and tile sizes; a fresh engine that loads only the
// newest snapshot plus the tail agrees with a plain map on every cell and
// the counts, and the newest snapshot alone agrees with the model as of
// its entry.
func TestSnapshotsCompleteProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		opts := Options{
			SnapshotInterval: rapid.IntRange(1, 12).Draw(t, "interval"),
			TileWidth:        rapid.SampledFrom([]int{3, 4, 100}).Draw(t, "tw"),
			TileHeight:       rapid.SampledFrom([]int{2, 5, 100}).Draw(t, "th"),
		}
		log := logmem.New(logmem.Options{PageSize: rapid.IntRange(1, 50).Draw(t, "pageSize")})
		root, _ := blobmem.New(blobmem.Options{PageSize: rapid.IntRange(1, 5).Draw(t, "blobPage")}).Sheet("s1")
		r := newRigOn(t, log, root, opts)
		defer r.close()
		m := &model{cells: map[coord]cell.Cell{}}
		modelAt := map[eventlog.SequenceID]*model{}
		n := rapid.IntRange(0, 120).Draw(t, "edits")
		for i := 0; i < n; {
			// Single appends mostly, batches sometimes: a snapshot
			// requested inside a batch covers the entries before its
			// own, not the whole batch.
			size := min(n-i, rapid.OneOf(rapid.Just(1), rapid.IntRange(2, 25)).Draw(t, "batch"))
			batch := make([]cell.Entry, size)
			for k := range batch {
				batch[k] = cell.Entry{Row: genCoord(t, "row"), Column: genCoord(t, "col"), Cell: genCell(t)}
			}
			res, err := r.hostE.AppendBatch(ctx, eventlog.SequenceID(i), batch, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, e := range batch {
				if res.SnapshotRequested && res.RequestedAt == eventlog.SequenceID(i+k) {
					modelAt[res.RequestedAt] = m.clone()
				}
				m.apply(e)
			}
			i += size
			if res.SnapshotRequested && rapid.Bool().Draw(t, "waitForWorker") {
				r.wait(t)
			}
		}
		r.wait(t)

		f := r.fresh(t)
		if err := f.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		checkGrid(t, "fresh engine", m, f.host.cells)
		if err := r.hostE.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		checkGrid(t, "host engine", m, r.hostE.host.cells)
		v, err := f.Range(ctx, a1.Range{Row0: 0, Col0: 0, Row1: math.MaxUint32, Col1: math.MaxUint32})
		if err != nil || len(v.Cells) != len(m.cells) {
			t.Fatalf("fresh engine's Range lists %d cells, model %d (%v)", len(v.Cells), len(m.cells), err)
		}

		done, pending := snapshots(t, log)
		if len(pending) != 0 {
			t.Fatalf("still pending: %v", pending)
		}
		if len(done) == 0 {
			if len(modelAt) != 0 {
				t.Fatalf("snapshots requested at %v but none completed", modelAt)
			}
			return
		}
		if f.Stats().SnapshotsLoaded != 1 {
			t.Fatalf("fresh engine did not load the snapshot")
		}
		// Every snapshot, not only the newest: an incremental snapshot
		// that copied a stale tile is wrong even if a later one is not.
		for _, id := range done {
			want := modelAt[id]
			if want == nil {
				t.Fatalf("snapshot at %d was never requested", id)
			}
			checkSnapshotBlobs(t, ctx, f, id, want)
		}
	})
}

func snapName(id eventlog.SequenceID) string { return strconv.FormatUint(uint64(id), 10) }
