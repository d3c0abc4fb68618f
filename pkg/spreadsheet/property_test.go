package spreadsheet

import (
	"context"
	"maps"
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

// checkAgainst compares every cell of the model, and every cell of a
// small window around the origin, with a read function.
func checkAgainst(t *rapid.T, what string, m *model, rows, cols uint64, get func(row, col uint32) cell.Cell) {
	if rows != m.rows || cols != m.cols {
		t.Fatalf("%s: counts %d x %d, model %d x %d", what, rows, cols, m.rows, m.cols)
	}
	for k, want := range m.cells {
		if got := get(k.row, k.col); !got.Equal(want) {
			t.Fatalf("%s: %s = %v, model %v", what, a1.Ref(k.row, k.col), got, want)
		}
	}
	for r := uint32(0); r < 14; r++ {
		for c := uint32(0); c < 14; c++ {
			if _, ok := m.cells[coord{r, c}]; !ok && !get(r, c).Empty() {
				t.Fatalf("%s: %s = %v, model has it empty", what, a1.Ref(r, c), get(r, c))
			}
		}
	}
}

// TestSnapshotsCompleteProperty: random edit sequences across several
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
		defer r.host.Close()
		m := &model{cells: map[coord]cell.Cell{}}
		modelAt := map[eventlog.SequenceID]*model{}
		n := rapid.IntRange(0, 120).Draw(t, "edits")
		for i := 0; i < n; i++ {
			e := cell.Entry{Row: genCoord(t, "row"), Column: genCoord(t, "col"), Cell: genCell(t)}
			before := m.clone()
			res, err := r.hostE.Append(ctx, eventlog.SequenceID(i), e, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.apply(e)
			if res.SnapshotRequested {
				modelAt[res.SequenceID] = before
				if rapid.Bool().Draw(t, "waitForWorker") {
					r.wait(t)
				}
			}
		}
		r.wait(t)

		f := r.fresh(t)
		rows, cols, err := f.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, "fresh engine", m, rows, cols, func(row, col uint32) cell.Cell {
			c, err := f.Cell(ctx, row, col)
			if err != nil {
				t.Fatal(err)
			}
			return c
		})
		checkAgainst(t, "host engine", m, rows, cols, func(row, col uint32) cell.Cell {
			c, _ := r.hostE.Cell(ctx, row, col)
			return c
		})

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
		if f.Stats().SnapshotsLoaded.Load() != 1 {
			t.Fatalf("fresh engine did not load the snapshot")
		}
		newest := done[len(done)-1]
		want := modelAt[newest]
		if want == nil {
			t.Fatalf("snapshot at %d was never requested", newest)
		}
		g := newGrid(uint32(opts.TileWidth), uint32(opts.TileHeight), false)
		if _, err := readSnapshot(ctx, f, g, eventlog.SnapshotRef{SequenceID: newest, BlobID: snapName(newest)}); err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, "newest snapshot alone", want, g.rowCount, g.colCount, g.get)
	})
}

func snapName(id eventlog.SequenceID) string { return strconv.FormatUint(uint64(id), 10) }
