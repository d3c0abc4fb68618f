package spreadsheet

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"pgregory.net/rapid"
)

// faultyRemovals is a blob directory whose removals fail while armed, as
// a crash in the middle of a retention pass would leave things: the
// entry's field cleared, the directory still there.
type faultyRemovals struct {
	blobstore.BlobDir
	armed *atomic.Bool
}

var errInjected = errors.New("injected removal failure")

func (d faultyRemovals) RemoveBlob(ctx context.Context, name string) error {
	if d.armed.Load() {
		return errs.Storage(errInjected, "removing %s", name)
	}
	return d.BlobDir.RemoveBlob(ctx, name)
}

func (d faultyRemovals) RemoveAll(ctx context.Context) error {
	if d.armed.Load() {
		return errs.Storage(errInjected, "removing a directory")
	}
	return d.BlobDir.RemoveAll(ctx)
}

func (d faultyRemovals) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	sub, err := d.BlobDir.GetDir(ctx, name)
	if err != nil {
		return nil, err
	}
	return faultyRemovals{BlobDir: sub, armed: d.armed}, nil
}

func (d faultyRemovals) StatBlob(ctx context.Context, name string) (blobstore.BlobInfo, error) {
	return d.BlobDir.(blobstore.Stater).StatBlob(ctx, name)
}

// lifecycleRun is the state of one run of the lifecycle property test.
type lifecycleRun struct {
	*sheet
	t       *rapid.T
	entries []cell.Entry
	// workers are worker engines, warm and cold; retirers run passes
	// only; crashy retires over a root whose removals can be made to
	// fail.
	workers []*Engine
	retirer *Engine
	crashy  *Engine
	armed   *atomic.Bool
	// completedAt is when the test saw each snapshot complete.
	completedAt map[eventlog.SequenceID]time.Time
}

// modelAtID is the model as of the entries before id.
func (r *lifecycleRun) modelAtID(id eventlog.SequenceID) *model {
	m := &model{cells: map[coord]cell.Cell{}}
	for _, e := range r.entries[:id] {
		m.apply(e)
	}
	return m
}

func (r *lifecycleRun) edit() {
	e := cell.Entry{Row: rapid.Uint32Range(0, 7).Draw(r.t, "row"), Column: rapid.Uint32Range(0, 7).Draw(r.t, "col"), Cell: genCell(r.t)}
	r.sheet.edit(e.Row, e.Column, e.Cell)
	r.entries = append(r.entries, e)
}

func (r *lifecycleRun) runSnapshot() {
	_, pending := snapshots(r.t, r.log)
	if len(pending) == 0 {
		return
	}
	id := rapid.SampledFrom(pending).Draw(r.t, "snapshot")
	w := rapid.SampledFrom(r.workers).Draw(r.t, "worker")
	// The pass that follows the completion is checked too.
	r.checkedPass(func() {
		err := w.RunSnapshot(context.Background(), id)
		var te *TruncatedLogError
		var re *errs.RangeError
		switch {
		case err == nil:
			if _, seen := r.completedAt[id]; !seen {
				r.completedAt[id] = r.clock.Now()
			}
		case errors.As(err, &te), errors.As(err, &re):
			// A stale request the truncation overtook: it can never run.
		default:
			r.t.Fatalf("snapshot at %d: %v", id, err)
		}
	})
}

func (r *lifecycleRun) retire() {
	e := rapid.SampledFrom(append([]*Engine{r.retirer}, r.workers...)).Draw(r.t, "retirer")
	r.checkedPass(func() {
		if _, err := e.Retire(context.Background()); err != nil {
			r.t.Fatalf("Retire: %v", err)
		}
	})
}

// crashedRetire is a pass whose removals fail: it stops with an error,
// leaving an entry cleared and its directory behind.
func (r *lifecycleRun) crashedRetire() {
	r.clock.Advance(time.Duration(rapid.IntRange(0, 20).Draw(r.t, "minutesBeforeCrash")) * time.Minute)
	r.checkedPass(func() {
		r.armed.Store(true)
		_, err := r.crashy.Retire(context.Background())
		r.armed.Store(false)
		if err != nil && !errors.Is(err, errInjected) {
			r.t.Fatalf("Retire with failing removals: %v", err)
		}
	})
}

// checkedPass runs a pass and checks it removed no directory too early:
// neither one of the newest K, nor one whose newer snapshots are all
// inside their grace, and never the entry of one it left.
func (r *lifecycleRun) checkedPass(pass func()) {
	dirsBefore, doneBefore := r.snapshotDirs()
	pass()
	dirsAfter, doneAfter := r.snapshotDirs()
	now := r.clock.Now()
	// The snapshots complete during the pass: those before it, and one
	// the pass may have completed.
	done := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(doneBefore), doneAfter...))))
	newest := done[max(0, len(done)-r.opts.Retain):]
	for _, d := range dirsBefore {
		if slices.Contains(dirsAfter, d) {
			continue
		}
		if slices.Contains(newest, d) {
			r.t.Fatalf("a pass removed %d, one of the newest %d snapshots %v", d, r.opts.Retain, done)
		}
		ok := false
		for _, c := range done {
			ok = ok || (c > d && now.Sub(r.completedAt[c]) >= r.opts.RetireGrace)
		}
		if !ok {
			r.t.Fatalf("a pass removed %d at %v, though every newer snapshot of %v is inside its grace (%v)", d, now, done, r.completedAt)
		}
	}
}

// read loads a fresh reader; with interleave, the retention work of a
// step happens while it loads (when its loading reaches a drawn point).
func (r *lifecycleRun) read(interleave bool) {
	root := r.root
	var h *hook
	if interleave {
		h = &hook{
			op:   rapid.SampledFrom([]string{"read", "list", "stat"}).Draw(r.t, "at"),
			path: "",
			fn:   func() { r.midLoad() },
		}
		// The hook fires in whichever snapshot directory the reader
		// loads: match any path by setting it when GetDir is called.
		root = anyPathHook{hookedDir{BlobDir: r.root, h: h}}
	}
	e := r.engine(root)
	if err := e.Load(context.Background()); err != nil {
		r.t.Fatalf("reader: %v", err)
	}
	checkGrid(r.t, "reader as of "+strconv.Itoa(int(e.host.next)), r.modelAtID(e.host.next), e.host.cells)
	if err := e.Sync(context.Background()); err != nil {
		r.t.Fatalf("reader catching up: %v", err)
	}
	checkGrid(r.t, "reader caught up", r.modelAtID(eventlog.SequenceID(len(r.entries))), e.host.cells)
}

// midLoad is what happens while a reader loads: more snapshots, time,
// and passes.
func (r *lifecycleRun) midLoad() {
	for range rapid.IntRange(0, 12).Draw(r.t, "midEdits") {
		r.edit()
	}
	r.runSnapshot()
	r.clock.Advance(time.Duration(rapid.IntRange(0, 20).Draw(r.t, "midMinutes")) * time.Minute)
	r.retire()
}

// anyPathHook fires its hook in every snapshot directory and its tiles
// directory, whatever the path.
type anyPathHook struct{ hookedDir }

func (d anyPathHook) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	sub, err := d.BlobDir.GetDir(ctx, name)
	if err != nil {
		return nil, err
	}
	d.h.mu.Lock()
	d.h.path = name
	d.h.mu.Unlock()
	return anyPathHook{hookedDir{BlobDir: sub, path: name, h: d.h}}, nil
}

// checkInvariants: no entry names a missing snapshot, and every snapshot
// named holds the cells as of its entry.
func (r *lifecycleRun) checkInvariants() {
	done, _ := snapshots(r.t, r.log)
	for _, id := range done {
		checkSnapshotBlobs(r.t, context.Background(), r.retirer, id, r.modelAtID(id))
	}
}

// snapshotDirs returns the numeric directories of the root, and the
// completed snapshots, oldest first.
func (r *lifecycleRun) snapshotDirs() (dirs, done []eventlog.SequenceID) {
	for _, name := range r.dirs() {
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			r.t.Fatalf("directory %q is not a snapshot", name)
		}
		dirs = append(dirs, eventlog.SequenceID(n))
	}
	done, _ = snapshots(r.t, r.log)
	return dirs, done
}

// TestLifecycleProperty: random edits, snapshots (on warm and cold
// workers), passage of time, retention passes (some failing half-way, as
// a crash would leave them) and log truncation, interleaved with readers
// that load the newest snapshot, some of them while the other work goes
// on under them. Every reader ends with the model's cells; no entry ever
// names a missing snapshot, and each named one holds the cells as of its
// entry; after the run only the newest K directories remain, beyond those
// inside their grace, and once the graces end, exactly K.
func TestLifecycleProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts := Options{
			SnapshotInterval: rapid.IntRange(1, 6).Draw(t, "interval"),
			TileWidth:        rapid.SampledFrom([]int{3, 8}).Draw(t, "tw"),
			TileHeight:       rapid.SampledFrom([]int{2, 8}).Draw(t, "th"),
			Retain:           rapid.IntRange(1, 3).Draw(t, "retain"),
			RetireGrace:      10 * time.Minute,
			TruncateLog:      rapid.Bool().Draw(t, "truncate"),
		}
		s := newSheet(t, opts, rapid.IntRange(1, 20).Draw(t, "logPage"), rapid.IntRange(1, 4).Draw(t, "blobPage"))
		r := &lifecycleRun{sheet: s, t: t, armed: &atomic.Bool{}, completedAt: map[eventlog.SequenceID]time.Time{}}
		r.workers = []*Engine{s.worker, s.engine(s.root)}
		r.retirer = s.engine(s.root)
		r.crashy = s.engine(faultyRemovals{BlobDir: s.root, armed: r.armed})

		steps := rapid.IntRange(1, 80).Draw(t, "steps")
		for range steps {
			switch rapid.IntRange(0, 9).Draw(t, "action") {
			case 0, 1, 2:
				r.edit()
			case 3, 4:
				r.runSnapshot()
			case 5:
				r.clock.Advance(time.Duration(rapid.IntRange(0, 15).Draw(t, "minutes")) * time.Minute)
			case 6:
				r.retire()
			case 7:
				r.crashedRetire()
			case 8:
				r.read(false)
			case 9:
				r.read(true)
			}
			r.checkInvariants()
		}

		// The end of the run: every requested snapshot completes, and the
		// pass that follows leaves only what the rule allows.
		for {
			_, pending := snapshots(t, r.log)
			if len(pending) == 0 {
				break
			}
			r.runSnapshot()
		}
		r.retire()
		r.checkInvariants()
		r.read(false)
		now := r.clock.Now()
		dirs, done := r.snapshotDirs()
		if len(done) == 0 {
			return
		}
		newest := done[max(0, len(done)-opts.Retain):]
		for _, d := range dirs {
			if slices.Contains(newest, d) {
				continue
			}
			// It may stay only while every newer snapshot is inside its
			// grace (the test's completion times are no later than the
			// engine's, so this is the stricter side).
			for _, c := range done {
				if c > d && now.Sub(r.completedAt[c]) >= opts.RetireGrace+statSlack {
					t.Fatalf("directory %d is still there at %v, though snapshot %d completed at %v (directories %v, snapshots %v)",
						d, now, c, r.completedAt[c], dirs, done)
				}
			}
		}
		// Once every grace is over, exactly the newest K remain.
		r.clock.Advance(opts.RetireGrace + statSlack)
		r.retire()
		dirs, done = r.snapshotDirs()
		if !slices.Equal(dirs, done) || len(done) > opts.Retain {
			t.Fatalf("after every grace: directories %v, snapshots %v, K = %d", dirs, done, opts.Retain)
		}
		r.checkInvariants()
		r.read(false)
	})
}
