package spreadsheet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

func TestSetAndReadCells(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{})
	e := r.hostE
	mustSet := func(row, col uint32, c cell.Cell) {
		t.Helper()
		if _, err := e.SetCell(ctx, row, col, c); err != nil {
			t.Fatal(err)
		}
	}
	mustSet(0, 0, cell.Cell{Value: num(1)})
	mustSet(4, 2, cell.Cell{Value: cell.NullValue()}.WithFormat("0.00"))
	mustSet(9, 9, cell.Cell{Value: cell.StringValue("x")})
	mustSet(9, 9, cell.Cell{}) // clears, but still counts
	mustSet(1, 1, cell.Cell{}.WithFormat("@"))

	for _, tc := range []struct {
		row, col uint32
		want     cell.Cell
	}{
		{0, 0, cell.Cell{Value: num(1)}},
		{4, 2, cell.Cell{Value: cell.NullValue()}.WithFormat("0.00")},
		{9, 9, cell.Cell{}},
		{1, 1, cell.Cell{}.WithFormat("@")},
		{3, 3, cell.Cell{}},
	} {
		got, err := e.Cell(ctx, tc.row, tc.col)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s = %v, %v; want %v", a1.Ref(tc.row, tc.col), got, err, tc.want)
		}
	}
	rows, cols, err := e.Counts(ctx)
	if err != nil || rows != 10 || cols != 10 {
		t.Errorf("counts = %d, %d, %v; want 10, 10", rows, cols, err)
	}
	v, err := e.Range(ctx, a1.Range{Row0: 0, Col0: 0, Row1: 4, Col1: 2})
	if err != nil || len(v.Cells) != 3 || v.Next != 5 {
		t.Errorf("range = %+v, %v", v, err)
	}
	// A fresh engine replaying the log agrees.
	f := r.fresh(t)
	got, _ := f.Cell(ctx, 4, 2)
	if !got.Equal(cell.Cell{Value: cell.NullValue()}.WithFormat("0.00")) {
		t.Errorf("fresh engine reads %v", got)
	}
	if _, err := e.SetCell(ctx, cell.MaxCoord+1, 0, cell.Cell{Value: num(1)}); !isValidation(err) {
		t.Errorf("row beyond range: %v", err)
	}
}

func isValidation(err error) bool {
	var ve *errs.ValidationError
	return errors.As(err, &ve)
}

func TestConflictCatchesUp(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{})
	a, b := r.hostE, r.fresh(t)
	if _, err := b.Next(ctx); err != nil { // b loads the empty log
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := a.SetCell(ctx, uint32(i), 0, cell.Cell{Value: num(float64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.Append(ctx, 0, cell.Entry{Row: 5, Column: 5, Cell: cell.Cell{Value: num(5)}}, nil)
	var ce *errs.ConflictError
	if !errors.As(err, &ce) || ce.NextSequenceID != 3 {
		t.Fatalf("stale append: %v, want a ConflictError with next 3", err)
	}
	got, _ := b.Cell(ctx, 2, 0)
	if !got.Equal(cell.Cell{Value: num(2)}) {
		t.Errorf("b did not catch up: %v", got)
	}
	// Too high is a conflict too, and writes nothing.
	if _, err := b.Append(ctx, 7, cell.Entry{Cell: cell.Cell{Value: num(1)}}, nil); !errors.As(err, &ce) || ce.NextSequenceID != 3 {
		t.Fatalf("append beyond next: %v", err)
	}
	if res, err := b.Append(ctx, 3, cell.Entry{Row: 5, Column: 5, Cell: cell.Cell{Value: num(5)}}, nil); err != nil || res.SequenceID != 3 {
		t.Fatalf("append at next: %+v, %v", res, err)
	}
}

func TestSnapshotEveryN(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 10})
	var requested []eventlog.SequenceID
	for i := range 55 {
		res, err := r.hostE.Append(ctx, eventlog.SequenceID(i), cell.Entry{Row: uint32(i), Column: 1, Cell: cell.Cell{Value: num(float64(i))}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.SnapshotRequested {
			requested = append(requested, res.SequenceID)
			r.wait(t) // workers keep up, so ids are multiples of N
		}
	}
	want := []eventlog.SequenceID{10, 20, 30, 40, 50}
	if fmt.Sprint(requested) != fmt.Sprint(want) {
		t.Fatalf("requested at %v, want %v", requested, want)
	}
	done, pending := snapshots(t, r.log)
	if fmt.Sprint(done) != fmt.Sprint(want) || len(pending) != 0 {
		t.Fatalf("done %v pending %v", done, pending)
	}
}

// blockingHost delivers nothing until released, like a worker pool that is
// busy or down.
type blockingHost struct {
	mu     sync.Mutex
	posted []workers.Message
}

func (h *blockingHost) Outstanding(string) bool { return true }
func (h *blockingHost) count() []workers.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]workers.Message(nil), h.posted...)
}
func (h *blockingHost) PostMessage(_ context.Context, m workers.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.posted = append(h.posted, m)
	return nil
}

func TestNoSecondRequestWhilePending(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 10})
	bh := &blockingHost{}
	const resendAfter = 50 * time.Millisecond
	e, err := New("s1", r.log, r.root, bh, Options{SnapshotInterval: 10, ResendAfter: resendAfter})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 35 {
		if _, err := e.SetCell(ctx, uint32(i), 0, cell.Cell{Value: num(1)}); err != nil {
			t.Fatal(err)
		}
	}
	// One request, at 10; the timer may have posted it again already on a
	// slow machine, but never another.
	_, pending := snapshots(t, r.log)
	if fmt.Sprint(pending) != "[10]" || len(bh.count()) == 0 {
		t.Fatalf("pending %v, posted %v", pending, bh.count())
	}
	// Left pending, the same request is posted again, not a new one.
	deadline := time.Now().Add(20 * time.Second)
	for len(bh.count()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the pending request was not re-sent")
		}
		time.Sleep(resendAfter / 5)
	}
	for _, m := range bh.count() {
		if m.(workers.PendingWorkflowMessage).SequenceID != 10 {
			t.Fatalf("posted %v", bh.count())
		}
	}
	// Once it completes, the engine learns of it from the log's reply to
	// its next append...
	if err := r.worker.RunSnapshot(ctx, 10); err != nil {
		t.Fatal(err)
	}
	res, err := e.Append(ctx, 35, cell.Entry{Row: 1, Column: 1, Cell: cell.Cell{Value: num(1)}}, eventlog.Known(0))
	if err != nil || res.LastSnapshot == nil || res.LastSnapshot.SequenceID != 10 || res.SnapshotRequested {
		t.Fatalf("after completion: %+v, %v", res, err)
	}
	// ...and, N entries past it already, requests the next on the one
	// after.
	res, err = e.Append(ctx, 36, cell.Entry{Row: 1, Column: 1, Cell: cell.Cell{Value: num(1)}}, eventlog.Known(10))
	if err != nil || res.LastSnapshot != nil || !res.SnapshotRequested {
		t.Fatalf("next request: %+v, %v", res, err)
	}
}

func TestFarCellCostsOneTile(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 1})
	const far = cell.MaxCoord - 1
	if _, err := r.hostE.SetCell(ctx, far, far, cell.Cell{Value: cell.StringValue("far")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.hostE.SetCell(ctx, 0, 0, cell.Cell{Value: num(1)}); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	got := walk(t, r.root, "")
	want := []string{"1/index", "1/tiles/2147483600-2147483600-100-100"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("blobs %v, want %v", got, want)
	}
	idx, _ := readPath(ctx, r.root, "1/index")
	jsonEqual(t, "index", idx, []byte(`{"rowCount":2147483647,"colCount":2147483647,"tileFormat":{"type":"grid","tileWidth":100,"tileHeight":100}}`))
	tileBlob, _ := readPath(ctx, r.root, "1/tiles/2147483600-2147483600-100-100")
	jsonEqual(t, "tile", tileBlob, []byte(`{"AU47":{"value":"far"}}`))
	f := r.fresh(t)
	c, err := f.Cell(ctx, far, far)
	if err != nil || !c.Equal(cell.Cell{Value: cell.StringValue("far")}) || f.Stats().SnapshotsLoaded != 1 {
		t.Fatalf("fresh engine: %v, %v, loaded %d", c, err, f.Stats().SnapshotsLoaded)
	}
}

func TestIncrementalSnapshotCopiesUntouchedTiles(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 10})
	// Ten entries, one per tile, then the 11th requests snapshot 10.
	set := func(row, col uint32, v float64) eventlog.SequenceID {
		t.Helper()
		id, err := r.hostE.SetCell(ctx, row, col, cell.Cell{Value: num(v)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i := range 10 {
		set(uint32(i)*100, 5, float64(i))
	}
	set(5000, 0, 0) // entry 10, requests the first snapshot
	r.wait(t)
	st := r.worker.Stats()
	if st.TilesEncoded != 10 || st.TilesCopied != 0 {
		t.Fatalf("first snapshot encoded %d copied %d", st.TilesEncoded, st.TilesCopied)
	}
	// Entries 11..31 touch only tile 0-0 (and entry 10 added tile 5000-0).
	// With 11 non-empty tiles the interval is 22 (cadence.go).
	for i := range 21 {
		set(1, uint32(i), 1)
	}
	set(7, 7, 7) // entry 32 requests snapshot 32
	r.wait(t)
	st = r.worker.Stats()
	if e, c := st.TilesEncoded-10, st.TilesCopied; e != 2 || c != 9 {
		t.Fatalf("second snapshot encoded %d tiles and copied %d; want 2 and 9", e, c)
	}
	for i := 1; i < 10; i++ {
		name := fmt.Sprintf("tiles/%d-0-100-100", i*100)
		a, _ := readPath(ctx, r.root, "10/"+name)
		b, _ := readPath(ctx, r.root, "32/"+name)
		if a == nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between snapshots: %s vs %s", name, a, b)
		}
	}
}

func TestWorkflowIdempotent(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 1000})
	for i := range 20 {
		if _, err := r.hostE.SetCell(ctx, uint32(i%3), uint32(i%5), cell.Cell{Value: num(float64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	req := eventlog.Entry{Body: []byte(`{"type":"SetCellValueAndFormat","row":0,"column":0}`)}
	req.Pending = eventlog.WorkflowSnapshot
	if _, err := r.log.AddEntry(ctx, 20, req, nil); err != nil {
		t.Fatal(err)
	}
	// Two workers at once, then a duplicate delivery.
	other := r.fresh(t)
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for _, e := range []*Engine{r.worker, other} {
		wg.Go(func() { errc <- e.RunSnapshot(ctx, 20) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	before := walk(t, r.root, "")
	tile1, _ := readPath(ctx, r.root, "20/tiles/0-0-100-100")
	if err := r.worker.RunSnapshot(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if n := r.worker.Stats().SnapshotsWritten + other.Stats().SnapshotsWritten; n != 1 {
		t.Errorf("%d completions applied, want 1", n)
	}
	after := walk(t, r.root, "")
	tile2, _ := readPath(ctx, r.root, "20/tiles/0-0-100-100")
	if fmt.Sprint(before) != fmt.Sprint(after) || !bytes.Equal(tile1, tile2) {
		t.Errorf("duplicate run changed blobs")
	}
	done, pending := snapshots(t, r.log)
	if fmt.Sprint(done) != "[20]" || len(pending) != 0 {
		t.Errorf("done %v pending %v", done, pending)
	}
}

func TestUnknownWorkflow(t *testing.T) {
	r := newRig(t, Options{})
	err := r.worker.RunWorkflow(context.Background(), "history", 3)
	var uw *UnknownWorkflowError
	if !errors.As(err, &uw) || uw.Workflow != "history" || uw.ID != 3 {
		t.Fatalf("got %v", err)
	}
}

func TestReadsTypeScriptSnapshots(t *testing.T) {
	// The TypeScript engine writes every tile of the grid, and {} for a
	// cleared cell. Both read as empty cells.
	ctx := context.Background()
	r := newRig(t, Options{})
	dir, _ := r.root.GetDir(ctx, "3")
	tiles, _ := dir.GetDir(ctx, "tiles")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(dir.WriteBlob(ctx, "index", []byte(`{"rowCount":150,"colCount":3,"tileFormat":{"type":"grid","tileWidth":100,"tileHeight":100}}`)))
	must(tiles.WriteBlob(ctx, "0-0-100-100", []byte(`{"A1":{"value":"a"},"B1":{},"C1":{"format":"0%"}}`)))
	must(tiles.WriteBlob(ctx, "100-0-100-100", []byte(`{}`)))
	for i := range 4 {
		ent := eventlog.Entry{Body: []byte(`{"type":"SetCellValueAndFormat","row":0,"column":0,"value":"old"}`)}
		if i == 3 {
			ent.Body = []byte(`{"type":"SetCellValueAndFormat","row":149,"column":0,"value":"tail","future":true}`)
			ent.Snapshot = "3"
		}
		if _, err := r.log.AddEntry(ctx, eventlog.SequenceID(i), ent, nil); err != nil {
			t.Fatal(err)
		}
	}
	e := r.fresh(t)
	v, err := e.Range(ctx, a1.Range{Row0: 0, Col0: 0, Row1: 200, Col1: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range v.Cells {
		got[a1.Ref(c.Row, c.Col)] = c.Cell.String()
	}
	want := map[string]string{"A1": `{"value":"a"}`, "C1": `{"format":"0%"}`, "A150": `{"value":"tail"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) || v.RowCount != 150 || v.ColCount != 3 {
		t.Fatalf("got %v rows %d cols %d", got, v.RowCount, v.ColCount)
	}
}

// TestInvalidUTF8IsStoredAsTheLogHoldsIt: the host's view, the log and a
// reloaded engine agree on a string that is not valid UTF-8.
func TestInvalidUTF8IsStoredAsTheLogHoldsIt(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{})
	bad := cell.Cell{Value: cell.StringValue("a\xffb\xfe\xfd")}.WithFormat("0\xc3")
	want := cell.Cell{Value: cell.StringValue("a\uFFFDb\uFFFD\uFFFD")}.WithFormat("0\uFFFD")
	if _, err := r.hostE.SetCell(ctx, 0, 0, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := r.hostE.Append(ctx, 1, cell.Entry{Row: 1, Column: 0, Cell: bad}, nil); err != nil {
		t.Fatal(err)
	}
	f := r.fresh(t)
	for row := range uint32(2) {
		host, _ := r.hostE.Cell(ctx, row, 0)
		reloaded, err := f.Cell(ctx, row, 0)
		if err != nil || !host.Equal(want) || !reloaded.Equal(want) {
			t.Errorf("row %d: host %q, reloaded %q (%v); want both %q", row, host, reloaded, err, want)
		}
	}
}

// TestRangeAtTheLastTile: with 1x1 tiles the last row and column are tile
// keys at the uint32 maximum; walking them must end.
func TestRangeAtTheLastTile(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{TileWidth: 1, TileHeight: 1})
	if _, err := r.hostE.SetCell(ctx, cell.MaxCoord, cell.MaxCoord, cell.Cell{Value: num(1)}); err != nil {
		t.Fatal(err)
	}
	const last = math.MaxUint32
	for _, rg := range []a1.Range{
		{Row0: cell.MaxCoord, Col0: cell.MaxCoord, Row1: last, Col1: last},
		{Row0: last, Col0: 0, Row1: last, Col1: 0},
		{Row0: 0, Col0: last, Row1: 0, Col1: last},
		{Row0: last, Col0: last, Row1: last, Col1: last},
	} {
		done := make(chan View, 1)
		go func() {
			v, err := r.hostE.Range(ctx, rg)
			if err != nil {
				t.Error(err)
			}
			done <- v
		}()
		select {
		case v := <-done:
			if want := rg.Row0 <= cell.MaxCoord && rg.Col0 <= cell.MaxCoord; (len(v.Cells) == 1) != want {
				t.Errorf("Range(%v) found %d cells", rg, len(v.Cells))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Range(%v) does not return", rg)
		}
	}
}

// TestMinusZeroIsWrittenAsZero, as the TypeScript engine writes it, in
// the log entry and in the snapshot.
func TestMinusZeroIsWrittenAsZero(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 1})
	negZero := math.Copysign(0, -1)
	if _, err := r.hostE.SetCell(ctx, 0, 0, cell.Cell{Value: num(negZero)}); err != nil {
		t.Fatal(err)
	}
	// An entry written by someone else with -0 reads as 0 as well.
	if _, err := r.log.AddEntry(ctx, 1, eventlog.Entry{Body: []byte(`{"type":"SetCellValueAndFormat","row":0,"column":1,"value":-0}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.hostE.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.hostE.SetCell(ctx, 5, 5, cell.Cell{}); err != nil { // requests a snapshot of both
		t.Fatal(err)
	}
	r.wait(t)
	page, err := r.log.Query(ctx, eventlog.FromID(0), eventlog.ToID(1), nil)
	if err != nil || string(page.Entries[0].Body) != `{"type":"SetCellValueAndFormat","row":0,"column":0,"value":0}` {
		t.Fatalf("log entry %s, %v", page.Entries[0].Body, err)
	}
	tile, err := readPath(ctx, r.root, "2/tiles/0-0-100-100")
	if err != nil || string(tile) != `{"A1":{"value":0},"B1":{"value":0}}` {
		t.Fatalf("tile %s, %v", tile, err)
	}
	c, _ := r.hostE.Cell(ctx, 0, 1)
	if math.Signbit(c.Value.NumberVal()) {
		t.Errorf("the host holds -0")
	}
}

// losingHost is a PostMessageWorkerHost whose worker drops the first
// messages it is given, as a crashed worker would.
type losingHost struct {
	mu     sync.Mutex
	lose   int
	posted int
	run    func(workers.PendingWorkflowMessage)
}

func (h *losingHost) Outstanding(string) bool { return false }
func (h *losingHost) PostMessage(_ context.Context, m workers.Message) error {
	h.mu.Lock()
	h.posted++
	lost := h.posted <= h.lose
	h.mu.Unlock()
	if !lost {
		go h.run(m.(workers.PendingWorkflowMessage))
	}
	return nil
}

// TestIdleSheetsLostRequestIsResent: a request whose message is lost is
// posted again by the host after ResendAfter even if nobody appends again,
// with this engine's hosts and with the reference host.
func TestIdleSheetsLostRequestIsResent(t *testing.T) {
	ctx := context.Background()
	const resendAfter = 20 * time.Millisecond
	waitDone := func(t *testing.T, r *rig) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			done, pending := snapshots(t, r.log)
			if fmt.Sprint(done) == "[3]" && len(pending) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lost request was not re-sent: done %v pending %v", done, pending)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// writeFour appends four cells through a host engine on host: the
	// fourth requests a snapshot.
	writeFour := func(t *testing.T, r *rig, host workers.WorkerHost) *Engine {
		e, err := New("s1", r.log, r.root, host, r.opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		for i := range 4 {
			if _, err := e.SetCell(ctx, uint32(i), 0, cell.Cell{Value: num(1)}); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	t.Run("PostMessageWorkerHost", func(t *testing.T) {
		r := newRig(t, Options{SnapshotInterval: 3, ResendAfter: resendAfter})
		h := &losingHost{lose: 2, run: func(m workers.PendingWorkflowMessage) {
			if err := r.worker.RunSnapshot(ctx, m.SequenceID); err != nil {
				t.Error(err)
			}
		}}
		e := writeFour(t, r, h)
		waitDone(t, r)
		if st := e.Stats(); st.WorkflowsReposted < 2 {
			t.Errorf("re-posted %d times, want at least 2", st.WorkflowsReposted)
		}
	})
	t.Run("SimpleWorkerHost", func(t *testing.T) {
		// The reference host drops a message whose handler fails.
		r := newRig(t, Options{SnapshotInterval: 3, ResendAfter: resendAfter})
		host, w := workers.NewSimple()
		defer host.Close()
		var failed atomic.Bool
		w.SetHandler(func(ctx context.Context, m workers.Message) error {
			if failed.CompareAndSwap(false, true) {
				return errors.New("the worker crashed")
			}
			return WorkflowHandler(func(context.Context, string) (*Engine, error) { return r.worker, nil })(ctx, m)
		})
		writeFour(t, r, host)
		waitDone(t, r)
		if len(host.Errors()) != 1 {
			t.Errorf("handler errors %v", host.Errors())
		}
	})
	t.Run("FoundAtLoad", func(t *testing.T) {
		// A request left pending by a process that died is re-sent by the
		// next host engine that loads the sheet.
		r := newRig(t, Options{SnapshotInterval: 3, ResendAfter: resendAfter})
		for i := range 4 {
			body := fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":0,"value":1}`, i)
			ent := eventlog.Entry{Body: body}
			if i == 3 {
				ent.Pending = eventlog.WorkflowSnapshot
			}
			if _, err := r.log.AddEntry(ctx, eventlog.SequenceID(i), ent, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.hostE.Load(ctx); err != nil {
			t.Fatal(err)
		}
		waitDone(t, r)
	})
}
