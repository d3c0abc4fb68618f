package spreadsheet

import (
	"context"
	"errors"
	"fmt"
	"testing"

	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/workers/pool"
)

// writer appends cells through the rig's host engine and keeps the model
// as of every snapshot request.
type writer struct {
	t       *testing.T
	r       *rig
	m       *model
	modelAt map[eventlog.SequenceID]*model
}

func newWriter(t *testing.T, r *rig) *writer {
	return &writer{t: t, r: r, m: &model{cells: map[coord]cell.Cell{}}, modelAt: map[eventlog.SequenceID]*model{}}
}

func (w *writer) set(row, col uint32, c cell.Cell) {
	w.t.Helper()
	next, err := w.r.hostE.Next(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	e := cell.Entry{Row: row, Column: col, Cell: c}
	before := w.m.clone()
	res, err := w.r.hostE.Append(context.Background(), next, e, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.m.apply(e)
	if res.SnapshotRequested {
		w.modelAt[res.SequenceID] = before
		w.r.wait(w.t)
	}
}

// check compares every completed snapshot and a fresh engine with the
// model.
func (w *writer) check() {
	w.t.Helper()
	ctx := context.Background()
	done, pending := snapshots(w.t, w.r.log)
	if len(pending) != 0 {
		w.t.Fatalf("still pending: %v", pending)
	}
	for _, id := range done {
		checkSnapshotBlobs(w.t, ctx, w.r.worker, id, w.modelAt[id])
	}
	f := w.r.fresh(w.t)
	if err := f.Sync(ctx); err != nil {
		w.t.Fatal(err)
	}
	checkGrid(w.t, "fresh engine", w.m, f.host.cells)
}

func TestClearingACellBetweenSnapshots(t *testing.T) {
	r := newRig(t, Options{SnapshotInterval: 10})
	w := newWriter(t, r)
	for c := range 9 {
		w.set(0, uint32(c), cell.Cell{Value: num(float64(c))})
	}
	w.set(500, 0, cell.Cell{Value: num(1)})
	w.set(500, 1, cell.Cell{Value: num(1)}) // entry 10 requests snapshot 10
	// Clear B1 and touch only another tile afterwards: tile 0-0 changed
	// by the clear alone.
	w.set(0, 1, cell.Cell{})
	for i := range 9 {
		w.set(500, uint32(i), cell.Cell{Value: num(2)}) // entry 20 requests snapshot 20
	}
	if _, ok := w.modelAt[20]; !ok {
		t.Fatalf("no snapshot requested at 20: %v", w.modelAt)
	}
	w.check()
	tile, err := readPath(context.Background(), r.root, "20/tiles/0-0-100-100")
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "tile 0-0 of snapshot 20", tile,
		[]byte(`{"A1":{"value":0},"C1":{"value":2},"D1":{"value":3},"E1":{"value":4},"F1":{"value":5},"G1":{"value":6},"H1":{"value":7},"I1":{"value":8}}`))
}

func TestATileThatBecomesEmpty(t *testing.T) {
	r := newRig(t, Options{SnapshotInterval: 10})
	w := newWriter(t, r)
	w.set(0, 0, cell.Cell{Value: cell.StringValue("alone")})
	for i := range 10 {
		w.set(500, uint32(i), cell.Cell{Value: num(1)}) // entry 10 requests snapshot 10
	}
	w.set(0, 0, cell.Cell{}) // tile 0-0 is empty now
	for i := range 9 {
		w.set(600, uint32(i), cell.Cell{Value: num(3)}) // entry 20 requests snapshot 20
	}
	w.check()
	got := walk(t, r.root, "")
	want := []string{"10/index", "10/tiles/0-0-100-100", "10/tiles/500-0-100-100",
		"20/index", "20/tiles/500-0-100-100", "20/tiles/600-0-100-100"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("blobs %v, want %v", got, want)
	}
}

// TestTypeScriptTilesAreCheckedBeforeCopying: a snapshot written by the
// TypeScript engine has {} entries for cleared cells and a tile with no
// cell at all. The next snapshot built on it must hold exactly the
// non-empty cells, so those tiles are encoded afresh; a tile that is
// byte for byte what this engine writes is copied.
func TestTypeScriptTilesAreCheckedBeforeCopying(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 1000})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	dir, _ := r.root.GetDir(ctx, "3")
	tiles, _ := dir.GetDir(ctx, "tiles")
	must(dir.WriteBlob(ctx, "index", []byte(`{"rowCount":301,"colCount":3,"tileFormat":{"type":"grid","tileWidth":100,"tileHeight":100}}`)))
	must(tiles.WriteBlob(ctx, "0-0-100-100", []byte(`{"A1":{"value":"a"},"B1":{}}`)))
	must(tiles.WriteBlob(ctx, "100-0-100-100", []byte(`{"A1":{}}`)))
	must(tiles.WriteBlob(ctx, "200-0-100-100", []byte(`{"B1":{"value":1},"A1":{"value":2}}`)))
	canonical := `{"A1":{"value":"x"},"C1":{"format":"0%"}}`
	must(tiles.WriteBlob(ctx, "300-0-100-100", []byte(canonical)))
	for i := range 6 {
		ent := eventlog.Entry{Body: fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":900,"column":%d,"value":%d}`, i, i)}
		switch i {
		case 3:
			ent.Snapshot = "3"
		case 5:
			ent.Pending = eventlog.WorkflowSnapshot
		}
		if _, err := r.log.AddEntry(ctx, eventlog.SequenceID(i), ent, nil); err != nil {
			t.Fatal(err)
		}
	}
	must(r.worker.RunSnapshot(ctx, 5))
	for name, want := range map[string]string{
		"0-0-100-100":   `{"A1":{"value":"a"}}`,
		"200-0-100-100": `{"A1":{"value":2},"B1":{"value":1}}`,
		"300-0-100-100": canonical,
		"900-0-100-100": `{"D1":{"value":3},"E1":{"value":4}}`,
	} {
		got, err := readPath(ctx, r.root, "5/tiles/"+name)
		if err != nil || string(got) != want {
			t.Errorf("5/tiles/%s = %s, %v; want exactly %s", name, got, err, want)
		}
	}
	if _, err := readPath(ctx, r.root, "5/tiles/100-0-100-100"); err == nil {
		t.Errorf("the tile with no cell was carried over")
	}
	if st := r.worker.Stats(); st.TilesCopied != 1 || st.TilesEncoded != 3 {
		t.Errorf("copied %d tiles and encoded %d, want 1 and 3", st.TilesCopied, st.TilesEncoded)
	}
}

// requestAt sets pending on the existing entry id, as a host that
// requested it would have.
func requestAt(t *testing.T, l eventlog.EventLog, id eventlog.SequenceID) {
	t.Helper()
	if _, err := l.SetMetadata(context.Background(), id, eventlog.MetadataUpdate{Pending: eventlog.Set(eventlog.WorkflowSnapshot)}); err != nil {
		t.Fatal(err)
	}
}

// stale builds a sheet of n entries on a log with the given page size, one
// cell each, and returns the rig and the model as of every entry.
func staleRig(t *testing.T, pageSize, n int) (*rig, []*model) {
	t.Helper()
	log := logmem.New(logmem.Options{PageSize: pageSize})
	root, err := blobmem.New(blobmem.Options{PageSize: 3}).Sheet("s1")
	if err != nil {
		t.Fatal(err)
	}
	r := newRigOn(t, log, root, Options{SnapshotInterval: 1000, TileWidth: 4, TileHeight: 4})
	t.Cleanup(r.close)
	m := &model{cells: map[coord]cell.Cell{}}
	models := []*model{m.clone()}
	for i := range n {
		e := cell.Entry{Row: uint32(i % 7), Column: uint32(i % 5), Cell: cell.Cell{Value: num(float64(i))}}
		if i%6 == 5 {
			e.Cell = cell.Cell{}
		}
		if _, err := r.hostE.Append(context.Background(), eventlog.SequenceID(i), e, nil); err != nil {
			t.Fatal(err)
		}
		m.apply(e)
		models = append(models, m.clone())
	}
	return r, models
}

// TestStaleRequestOnAPagedLog: with pages of 10 entries, snapshots
// requested at 12 and 25 and run in the order 25, 12, the stale one finds
// no snapshot before it, and the log starts at 0: it is built from the
// whole log.
func TestStaleRequestOnAPagedLog(t *testing.T) {
	ctx := context.Background()
	r, models := staleRig(t, 10, 30)
	requestAt(t, r.log, 12)
	requestAt(t, r.log, 25)
	for _, s := range []eventlog.SequenceID{25, 12} {
		if err := r.fresh(t).RunSnapshot(ctx, s); err != nil {
			t.Fatalf("snapshot at %d: %v", s, err)
		}
	}
	for _, s := range []eventlog.SequenceID{12, 25} {
		checkSnapshotBlobs(t, ctx, r.worker, s, models[s])
	}
}

// TestStaleRequestOnATruncatedLog: snapshots at 10 and 30, the log
// truncated to 5, then a request at 20 builds on the snapshot at 10.
func TestStaleRequestOnATruncatedLog(t *testing.T) {
	ctx := context.Background()
	r, models := staleRig(t, 10, 40)
	for _, s := range []eventlog.SequenceID{10, 30} {
		requestAt(t, r.log, s)
		if err := r.worker.RunSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.log.Truncate(ctx, 5); err != nil {
		t.Fatal(err)
	}
	requestAt(t, r.log, 20)
	w := r.fresh(t)
	if err := w.RunSnapshot(ctx, 20); err != nil {
		t.Fatalf("snapshot at 20: %v", err)
	}
	if w.Stats().SnapshotsLoaded != 1 {
		t.Errorf("the stale snapshot did not build on the one at 10")
	}
	checkSnapshotBlobs(t, ctx, r.worker, 20, models[20])

	// With nothing before the request and the log cut, the snapshot can
	// never be built; the pool must not retry it forever.
	if err := r.log.Truncate(ctx, 12); err != nil {
		t.Fatal(err)
	}
	requestAt(t, r.log, 15)
	err := r.fresh(t).RunSnapshot(ctx, 15)
	var te *TruncatedLogError
	if !errors.As(err, &te) || te.Start != 12 || !pool.IsPermanent(err) {
		t.Fatalf("a snapshot with no base on a cut log: %v, want a permanent TruncatedLogError", err)
	}
}
