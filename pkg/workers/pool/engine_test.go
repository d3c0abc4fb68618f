package pool_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/workers"
	"github.com/sheetlog/sheetlog/pkg/workers/pool"
)

// The memory store is one of the listers the server uses.
var _ pool.PendingLister = (*logmem.Store)(nil)

const sheet = "s1"

// stores are the shared state that survives a "crash": the log and the
// blobs. Everything else (engines, pools) belongs to one process.
type stores struct {
	logs  *logmem.Store
	blobs *blobmem.Store
}

func newStores() stores {
	return stores{logs: logmem.NewStore(logmem.Options{PageSize: 7}), blobs: blobmem.New(blobmem.Options{PageSize: 5})}
}

func (s stores) log(t testing.TB) eventlog.EventLog {
	t.Helper()
	l, err := s.logs.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (s stores) root(t testing.TB) blobstore.BlobDir {
	t.Helper()
	r, err := s.blobs.Sheet(sheet)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var engineOpts = spreadsheet.Options{SnapshotInterval: 10, TileWidth: 4, TileHeight: 4, WriteConcurrency: 2}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// process is one "server process": a pool whose handler runs workflows on
// a worker engine over root.
func process(t testing.TB, s stores, root blobstore.BlobDir, opts pool.Options) (*pool.Pool, *spreadsheet.Engine) {
	t.Helper()
	opts.Lister = s.logs
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	p, err := pool.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := spreadsheet.New(sheet, s.log(t), root, nil, engineOpts)
	if err != nil {
		t.Fatal(err)
	}
	p.SetHandler(spreadsheet.WorkflowHandler(func(_ context.Context, sh string) (*spreadsheet.Engine, error) {
		if sh != sheet {
			return nil, pool.Permanent(fmt.Errorf("no such sheet %q", sh))
		}
		return w, nil
	}))
	return p, w
}

func fast() pool.Options {
	return pool.Options{Workers: 2, BackoffBase: time.Millisecond, BackoffCap: 5 * time.Millisecond, Seed: 7, RescanInterval: -1}
}

// fill appends n edits through a host engine posting to host, and returns
// the expected cells.
func fill(t testing.TB, s stores, host workers.WorkerHost, n int) map[[2]uint32]cell.Cell {
	t.Helper()
	e, err := spreadsheet.New(sheet, s.log(t), s.root(t), host, engineOpts)
	if err != nil {
		t.Fatal(err)
	}
	model := map[[2]uint32]cell.Cell{}
	for i := range n {
		v, err := cell.NumberValue(float64(i))
		if err != nil {
			t.Fatal(err)
		}
		row, col := uint32(i*5%13), uint32(i*3%7)
		c := cell.Cell{Value: v}
		if _, err := e.SetCell(context.Background(), row, col, c); err != nil {
			t.Fatal(err)
		}
		model[[2]uint32{row, col}] = c
	}
	return model
}

// logState returns the ids with snapshot set and with pending set.
func logState(t testing.TB, l eventlog.EventLog) (snaps map[eventlog.SequenceID]string, pending []eventlog.SequenceID) {
	t.Helper()
	snaps = map[eventlog.SequenceID]string{}
	for page, err := range eventlog.Pages(context.Background(), l, eventlog.FromStart, eventlog.ToEnd, nil) {
		if err != nil {
			t.Fatal(err)
		}
		for id, e := range page.All() {
			if e.Snapshot != "" {
				snaps[id] = e.Snapshot
			}
			if e.Pending != "" {
				pending = append(pending, id)
			}
		}
	}
	return snaps, pending
}

// checkCells loads the sheet in a fresh engine, from the newest snapshot
// plus the tail, and compares every cell with model.
func checkCells(t testing.TB, s stores, model map[[2]uint32]cell.Cell, wantSnapshots int64) {
	t.Helper()
	e, err := spreadsheet.New(sheet, s.log(t), s.root(t), nil, engineOpts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.Range(context.Background(), a1.Range{Row0: 0, Col0: 0, Row1: 100, Col1: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Stats().SnapshotsLoaded; got != wantSnapshots {
		t.Errorf("a fresh engine loaded %d snapshots, want %d", got, wantSnapshots)
	}
	if len(v.Cells) != len(model) {
		t.Errorf("%d cells, want %d", len(v.Cells), len(model))
	}
	for _, c := range v.Cells {
		if want := model[[2]uint32{c.Row, c.Col}]; !c.Cell.Equal(want) {
			t.Errorf("%s = %v, want %v", a1.Ref(c.Row, c.Col), c.Cell, want)
		}
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A server killed mid-snapshot and restarted completes the snapshot.
// Process A's snapshot blocks at the index write (its tiles are already
// written); A is then abandoned as a crash would leave it: no graceful
// completion, nothing more from it. Process B starts on the same stores,
// its start-up scan finds the pending entry, and it completes the
// snapshot.
func TestKilledMidSnapshotRestartCompletes(t *testing.T) {
	s := newStores()
	crash := make(chan struct{})
	reached := make(chan struct{})
	var once sync.Once
	rootA := &hookDir{BlobDir: s.root(t), write: func(ctx context.Context, name string) error {
		if name != "index" {
			return nil
		}
		once.Do(func() { close(reached) })
		<-crash // a dead process never writes; ignore ctx like a hung disk
		return errors.New("the process is dead")
	}}
	poolA, _ := process(t, s, rootA, fast())
	if err := poolA.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only now let the dead process's goroutine go, after the test
		// has checked everything; its pool is closed at once, so the
		// failure it reports is not retried.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		go func() { _ = poolA.Close(ctx) }()
		close(crash)
	})

	model := fill(t, s, poolA, 15) // requests a snapshot at 10
	<-reached
	if _, pending := logState(t, s.log(t)); fmt.Sprint(pending) != "[10]" {
		t.Fatalf("pending %v before the crash, want [10]", pending)
	}
	tiles, err := mustDir(t, s.root(t), "10", "tiles").Query(context.Background(), "")
	if err != nil || len(tiles.Blobs) == 0 {
		t.Fatalf("process A wrote no tiles before blocking: %v %v", tiles, err)
	}

	// Process B: same stores, a new pool and engine.
	poolB, workerB := process(t, s, s.root(t), fast())
	if err := poolB.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = poolB.Close(context.Background()) })
	eventually(t, "process B completes the snapshot", func() bool {
		_, pending := logState(t, s.log(t))
		return len(pending) == 0
	})
	snaps, _ := logState(t, s.log(t))
	if len(snaps) != 1 || snaps[10] != "10" {
		t.Fatalf("snapshots %v, want {10: 10}", snaps)
	}
	eventually(t, "B's pool is idle", func() bool { return !poolB.Outstanding(sheet) })
	if m := poolB.Metrics(); m.Resent != 1 || m.Completions != 1 || workerB.Stats().SnapshotsWritten != 1 {
		t.Errorf("pool B %+v, snapshots written %d", m, workerB.Stats().SnapshotsWritten)
	}
	// The blobs are valid: a fresh engine loads the snapshot and replays
	// the tail to the same cells.
	checkCells(t, s, model, 1)
}

// Transient storage failures keep the workflow retrying until it
// completes, through the real engine.
func TestTransientStorageFailuresAreRetried(t *testing.T) {
	s := newStores()
	var failures atomic.Int64
	root := &hookDir{BlobDir: s.root(t), write: func(context.Context, string) error {
		if failures.Add(1) <= 5 {
			return errs.Storage(nil, "throttled")
		}
		return nil
	}}
	p, _ := process(t, s, root, fast())
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	model := fill(t, s, p, 25) // snapshot at 10, then 20 once 10 is done
	eventually(t, "no snapshot pending", func() bool {
		_, pending := logState(t, s.log(t))
		return len(pending) == 0 && !p.Outstanding(sheet)
	})
	if m := p.Metrics(); m.Failures < 1 || m.Retries != m.Failures || m.Dropped != 0 {
		t.Errorf("metrics %+v; want retried failures and no drop", m)
	}
	checkCells(t, s, model, 1)
}

// An unknown workflow, through the real engine, is dropped after one run.
func TestUnknownWorkflowIsDroppedThroughTheEngine(t *testing.T) {
	s := newStores()
	p, _ := process(t, s, s.root(t), fast())
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	fill(t, s, nil, 3)
	m := workers.PendingWorkflowMessage{Sheet: sheet, Workflow: "frobnicate", SequenceID: 1}
	if err := p.PostMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the drop", func() bool { return p.Metrics().Dropped == 1 && !p.Outstanding(sheet) })
	time.Sleep(20 * time.Millisecond) // several backoff caps
	if got := p.Metrics(); got.Runs != 1 || got.Retries != 0 {
		t.Errorf("metrics %+v; want one run and no retry", got)
	}
}

func mustDir(t testing.TB, d blobstore.BlobDir, names ...string) blobstore.BlobDir {
	t.Helper()
	for _, n := range names {
		var err error
		if d, err = d.GetDir(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// hookDir wraps a blob directory (and the directories under it) and calls
// write before every blob write; an error from it fails the write.
type hookDir struct {
	blobstore.BlobDir
	write func(ctx context.Context, name string) error
}

func (d *hookDir) WriteBlob(ctx context.Context, name string, data []byte) error {
	if err := d.write(ctx, name); err != nil {
		return err
	}
	return d.BlobDir.WriteBlob(ctx, name, data)
}

func (d *hookDir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	sub, err := d.BlobDir.GetDir(ctx, name)
	if err != nil {
		return nil, err
	}
	return &hookDir{BlobDir: sub, write: d.write}, nil
}

// Close lets a running snapshot finish when its context allows, and
// otherwise cancels it: the entry stays pending for the next process.
func TestCloseWithARunningSnapshot(t *testing.T) {
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprint("finish=", finish), func(t *testing.T) {
			s := newStores()
			reached := make(chan struct{})
			var once sync.Once
			delay := time.Hour // only Close's cancellation ends it
			if finish {
				delay = 30 * time.Millisecond
			}
			root := &hookDir{BlobDir: s.root(t), write: func(ctx context.Context, name string) error {
				if name != "index" {
					return nil
				}
				once.Do(func() { close(reached) })
				select {
				case <-time.After(delay):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}
			p, _ := process(t, s, root, fast())
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			model := fill(t, s, p, 12)
			<-reached
			ctx := context.Background()
			var cancel context.CancelFunc
			if finish {
				ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
			} else {
				ctx, cancel = context.WithTimeout(ctx, time.Millisecond)
			}
			defer cancel()
			err := p.Close(ctx)
			_, pending := logState(t, s.log(t))
			if finish {
				if err != nil || len(pending) != 0 {
					t.Fatalf("Close: %v; pending %v", err, pending)
				}
				checkCells(t, s, model, 1)
				return
			}
			if err == nil || fmt.Sprint(pending) != "[10]" {
				t.Fatalf("Close: %v; pending %v, want an error and [10]", err, pending)
			}
			// The next process completes it.
			next, _ := process(t, s, s.root(t), fast())
			if err := next.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = next.Close(context.Background()) })
			eventually(t, "the next process completes it", func() bool {
				_, pending := logState(t, s.log(t))
				return len(pending) == 0
			})
			checkCells(t, s, model, 1)
		})
	}
}

// TestEngineErrorsThatRetryingCannotFix: the pool knows the engine's
// permanent errors by their Permanent method alone.
func TestEngineErrorsThatRetryingCannotFix(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("wrapped: %w", &spreadsheet.UnknownWorkflowError{Sheet: "s1", Workflow: "frobnicate", ID: 9}),
		fmt.Errorf("wrapped: %w", &spreadsheet.TruncatedLogError{Sheet: "s1", ID: 20, Start: 5}),
	} {
		if !pool.IsPermanent(err) {
			t.Errorf("%v is not permanent", err)
		}
	}
}
