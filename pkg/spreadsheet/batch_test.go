package spreadsheet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// rowOf returns n entries writing value row*1000+col into row row,
// columns col0, col0+1, ...
func rowOf(row uint32, col0, n int) []cell.Entry {
	out := make([]cell.Entry, n)
	for i := range out {
		col := uint32(col0 + i)
		out[i] = cell.Entry{Row: row, Column: col, Cell: cell.Cell{Value: num(float64(row*1000 + col))}}
	}
	return out
}

func logEnd(t *testing.T, log eventlog.EventLog) eventlog.SequenceID {
	t.Helper()
	p, err := log.Query(context.Background(), eventlog.FromStart, eventlog.ToEnd, nil)
	if err != nil {
		t.Fatal(err)
	}
	for !p.Complete {
		if p, err = log.Query(context.Background(), eventlog.FromID(p.End), eventlog.ToEnd, nil); err != nil {
			t.Fatal(err)
		}
	}
	return p.End
}

func TestAppendBatch(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{})
	e := r.hostE
	res, err := e.AppendBatch(ctx, 0, rowOf(0, 0, 3), nil)
	if err != nil || res.SequenceID != 0 || res.End != 3 || res.SnapshotRequested {
		t.Fatalf("batch of 3: %+v, %v", res, err)
	}
	// One entry through Append is the batch of one.
	if res, err = e.Append(ctx, 3, rowOf(1, 0, 1)[0], nil); err != nil || res.SequenceID != 3 || res.End != 4 {
		t.Fatalf("append: %+v, %v", res, err)
	}
	if res, err = e.AppendBatch(ctx, 4, rowOf(2, 0, eventlog.MaxBatch), nil); err != nil || res.End != 4+eventlog.MaxBatch {
		t.Fatalf("batch of %d: %+v, %v", eventlog.MaxBatch, res, err)
	}
	// The host engine and a fresh one replaying the log agree, entry by
	// entry and in order.
	for _, eng := range []*Engine{e, r.fresh(t)} {
		for _, c := range [][2]uint32{{0, 0}, {0, 2}, {1, 0}, {2, 0}, {2, eventlog.MaxBatch - 1}} {
			got, err := eng.Cell(ctx, c[0], c[1])
			if err != nil || !got.Equal(cell.Cell{Value: num(float64(c[0]*1000 + c[1]))}) {
				t.Errorf("cell %v = %v, %v", c, got, err)
			}
		}
		if rows, cols, _ := eng.Counts(ctx); rows != 3 || cols != eventlog.MaxBatch {
			t.Errorf("counts %d x %d", rows, cols)
		}
	}
	if end := logEnd(t, r.log); end != 4+eventlog.MaxBatch {
		t.Fatalf("log end %d", end)
	}
}

// TestAppendBatchRefusesBadEntries: every entry is checked before
// anything is written, and the error names the bad one's index.
func TestAppendBatchRefusesBadEntries(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{})
	e := r.hostE
	bad := rowOf(0, 0, 60)
	bad[57].Row = cell.MaxCoord + 1
	_, err := e.AppendBatch(ctx, 0, bad, nil)
	if !isValidation(err) || !strings.Contains(err.Error(), "entry 57 ") {
		t.Fatalf("bad entry 57: %v", err)
	}
	for _, n := range []int{0, eventlog.MaxBatch + 1} {
		if _, err := e.AppendBatch(ctx, 0, rowOf(0, 0, n), nil); !isValidation(err) || !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Fatalf("batch of %d: %v", n, err)
		}
	}
	// One bad entry alone: the message is Append's, with no index.
	one := rowOf(0, 0, 1)
	one[0].Column = cell.MaxCoord + 1
	if _, err := e.Append(ctx, 0, one[0], nil); !isValidation(err) || strings.Contains(err.Error(), "entry 0") {
		t.Fatalf("one bad entry: %v", err)
	}
	if end := logEnd(t, r.log); end != 0 {
		t.Fatalf("refused batches wrote %d entries", end)
	}
	if got, _ := e.Cell(ctx, 0, 0); !got.Empty() {
		t.Fatalf("a refused batch was applied: %v", got)
	}
}

// TestAppendBatchConflictCatchesUp: a stale engine's batch fails with the
// log's next id, both when the engine knew it was behind and when only the
// log could tell, and applies nothing of its own; it has caught up, so its
// next batch lands.
func TestAppendBatchConflictCatchesUp(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{})
	a, b := r.hostE, r.fresh(t)
	if _, err := b.Next(ctx); err != nil { // b loads the empty log
		t.Fatal(err)
	}
	if _, err := a.AppendBatch(ctx, 0, rowOf(0, 0, 3), nil); err != nil {
		t.Fatal(err)
	}
	// b believes 0 is next: the log refuses the batch.
	_, err := b.AppendBatch(ctx, 0, rowOf(5, 0, 4), nil)
	var ce *errs.ConflictError
	if !errors.As(err, &ce) || ce.NextSequenceID != 3 {
		t.Fatalf("stale batch: %v, want a ConflictError with next 3", err)
	}
	if got, _ := b.Cell(ctx, 0, 2); !got.Equal(cell.Cell{Value: num(2)}) {
		t.Errorf("b did not catch up: %v", got)
	}
	if got, _ := b.Cell(ctx, 5, 0); !got.Empty() {
		t.Errorf("b applied its refused batch: %v", got)
	}
	// a is behind now too and learns it before writing; too high is a
	// conflict as well.
	if _, err := b.AppendBatch(ctx, 3, rowOf(6, 0, 2), nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []eventlog.SequenceID{3, 9} {
		if _, err := a.AppendBatch(ctx, id, rowOf(7, 0, 2), nil); !errors.As(err, &ce) || ce.NextSequenceID != 5 {
			t.Fatalf("batch at %d: %v, want a ConflictError with next 5", id, err)
		}
	}
	if res, err := a.AppendBatch(ctx, 5, rowOf(7, 0, 2), nil); err != nil || res.SequenceID != 5 || res.End != 7 {
		t.Fatalf("batch at next: %+v, %v", res, err)
	}
	if got, _ := a.Cell(ctx, 6, 1); !got.Equal(cell.Cell{Value: num(6001)}) {
		t.Errorf("a did not catch up: %v", got)
	}
}

// TestAppendBatchPendingPlacement: with N = 10, pending goes on the first
// entry of a batch at which a snapshot is due, on one entry only, and not
// at all while a request is outstanding.
func TestAppendBatchPendingPlacement(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 10})
	bh := &blockingHost{}
	e, err := New("s1", r.log, r.root, bh, Options{SnapshotInterval: 10, ResendAfter: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	step := func(id eventlog.SequenceID, n int, wantAt eventlog.SequenceID, wantDue bool) {
		t.Helper()
		res, err := e.AppendBatch(ctx, id, rowOf(uint32(id), 0, n), nil)
		if err != nil || res.SnapshotRequested != wantDue || res.RequestedAt != wantAt {
			t.Fatalf("batch [%d, %d): %+v, %v; want requested %v at %d", id, int(id)+n, res, err, wantDue, wantAt)
		}
	}
	step(0, 7, 0, false)   // [0, 7): not yet
	step(7, 8, 10, true)   // [7, 15): due at 10
	step(15, 30, 0, false) // [15, 45): 10 is outstanding
	_, pending := snapshots(t, r.log)
	if fmt.Sprint(pending) != "[10]" || len(bh.count()) != 1 {
		t.Fatalf("pending %v, posted %v", pending, bh.count())
	}
	if err := r.worker.RunSnapshot(ctx, 10); err != nil {
		t.Fatal(err)
	}
	// The reply of the next append says 10 is complete; 20 entries past
	// it already, the first entry of this batch requests the next.
	res, err := e.AppendBatch(ctx, 45, rowOf(45, 0, 3), eventlog.Known(0))
	if err != nil || res.LastSnapshot == nil || res.LastSnapshot.SequenceID != 10 || res.SnapshotRequested {
		t.Fatalf("after completion: %+v, %v", res, err)
	}
	step(48, 5, 48, true)
	if err := r.worker.RunSnapshot(ctx, 48); err != nil {
		t.Fatal(err)
	}
	step(53, 4, 0, false) // [53, 57): learns of 48
	step(57, 5, 58, true) // [57, 62): due at 48+10
	done, pending := snapshots(t, r.log)
	if fmt.Sprint(done) != "[10 48]" || fmt.Sprint(pending) != "[58]" {
		t.Fatalf("done %v, pending %v", done, pending)
	}
}

// flakyLog refuses the first fail appends with a storage error.
type flakyLog struct {
	eventlog.EventLog
	fail int
}

func (l *flakyLog) AddEntries(ctx context.Context, id eventlog.SequenceID, es []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	if l.fail > 0 {
		l.fail--
		return nil, errs.Storage(errors.New("disk on fire"), "appending")
	}
	return l.EventLog.AddEntries(ctx, id, es, known)
}

// TestAppendBatchAppliesOnlyWhatTheLogAcknowledged: a batch the log
// refuses leaves the engine's cells, next id and requests as they were.
func TestAppendBatchAppliesOnlyWhatTheLogAcknowledged(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, Options{SnapshotInterval: 2})
	bh := &blockingHost{}
	e, err := New("s1", &flakyLog{EventLog: r.log, fail: 1}, r.root, bh, Options{SnapshotInterval: 2, ResendAfter: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var se *errs.StorageError
	if _, err := e.AppendBatch(ctx, 0, rowOf(0, 0, 5), nil); !errors.As(err, &se) {
		t.Fatalf("append to a failing log: %v", err)
	}
	if got, _ := e.Cell(ctx, 0, 0); !got.Empty() {
		t.Fatalf("unacknowledged entry applied: %v", got)
	}
	if next, _ := e.Next(ctx); next != 0 || len(bh.count()) != 0 {
		t.Fatalf("next %d, posted %v after a failed append", next, bh.count())
	}
	// The failed batch requested nothing: the next one does, once.
	res, err := e.AppendBatch(ctx, 0, rowOf(1, 0, 3), nil)
	if err != nil || !res.SnapshotRequested || res.RequestedAt != 2 || len(bh.count()) != 1 {
		t.Fatalf("good append: %+v, %v, posted %v", res, err, bh.count())
	}
	if got, _ := e.Cell(ctx, 1, 2); !got.Equal(cell.Cell{Value: num(1002)}) {
		t.Fatalf("acknowledged entry not applied: %v", got)
	}
}
