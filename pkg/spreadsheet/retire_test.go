package spreadsheet

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// fakeClock is the clock of Options.Now and of the memory blob store's
// modification times.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sheet is one sheet on memory stores, on a fake clock, whose workflows
// the test runs itself: a host engine with no worker host (nothing is
// posted, no timer re-sends), a worker engine, and the model as of every
// snapshot request. Passes asked for later are only recorded.
type sheet struct {
	t       tb
	clock   *fakeClock
	log     eventlog.EventLog
	root    blobstore.BlobDir
	opts    Options
	host    *Engine
	worker  *Engine
	m       *model
	modelAt map[eventlog.SequenceID]*model

	mu   sync.Mutex
	dues []time.Time
}

func newSheet(t tb, opts Options, logPage, blobPage int) *sheet {
	t.Helper()
	s := &sheet{t: t, clock: newFakeClock(), m: &model{cells: map[coord]cell.Cell{}}, modelAt: map[eventlog.SequenceID]*model{}}
	s.log = logmem.New(logmem.Options{PageSize: logPage})
	root, err := blobmem.New(blobmem.Options{PageSize: blobPage, Now: s.clock.Now}).Sheet("s1")
	if err != nil {
		t.Fatal(err)
	}
	s.root = root
	opts.Now = s.clock.Now
	opts.RetireLater = func(_ context.Context, sheet string, due time.Time) {
		s.mu.Lock()
		s.dues = append(s.dues, due)
		s.mu.Unlock()
	}
	s.opts = opts
	s.host = s.engine(s.root)
	s.worker = s.engine(s.root)
	return s
}

// engine is another engine of the sheet, over root (the sheet's, or a
// wrapper of it).
func (s *sheet) engine(root blobstore.BlobDir) *Engine {
	s.t.Helper()
	e, err := New("s1", s.log, root, nil, s.opts)
	if err != nil {
		s.t.Fatal(err)
	}
	return e
}

// edit appends one cell through the host and keeps the model.
func (s *sheet) edit(row, col uint32, c cell.Cell) {
	s.t.Helper()
	ctx := context.Background()
	next, err := s.host.Next(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	e := cell.Entry{Row: row, Column: col, Cell: c}
	before := s.m.clone()
	res, err := s.host.Append(ctx, next, e, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	s.m.apply(e)
	if res.SnapshotRequested {
		s.modelAt[res.SequenceID] = before
	}
}

// runPending runs every requested snapshot on the worker.
func (s *sheet) runPending() {
	s.t.Helper()
	_, pending := snapshots(s.t, s.log)
	for _, id := range pending {
		if err := s.worker.RunSnapshot(context.Background(), id); err != nil {
			s.t.Fatalf("snapshot at %d: %v", id, err)
		}
	}
}

// dirs lists the names of the directories of the sheet's root, sorted.
func (s *sheet) dirs() []string {
	s.t.Helper()
	var out []string
	token := ""
	for {
		page, err := s.root.Query(context.Background(), token)
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, page.Dirs...)
		if page.Continuation == "" {
			break
		}
		token = page.Continuation
	}
	slices.SortFunc(out, func(a, b string) int {
		x, errA := strconv.Atoi(a)
		y, errB := strconv.Atoi(b)
		if errA != nil || errB != nil {
			return strings.Compare(a, b)
		}
		return x - y
	})
	return out
}

// checkNamed: every entry that names a snapshot names a whole one that
// holds the model as of its entry.
func (s *sheet) checkNamed() {
	s.t.Helper()
	done, _ := snapshots(s.t, s.log)
	for _, id := range done {
		checkSnapshotBlobs(s.t, context.Background(), s.worker, id, s.modelAt[id])
	}
}

// checkReader: a fresh engine loads the sheet and holds the model.
func (s *sheet) checkReader(root blobstore.BlobDir) *Engine {
	s.t.Helper()
	e := s.engine(root)
	if err := e.Load(context.Background()); err != nil {
		s.t.Fatalf("a reader could not load the sheet: %v", err)
	}
	checkGrid(s.t, "reader", s.m, e.host.cells)
	return e
}

func (s *sheet) retire(e *Engine) RetireResult {
	s.t.Helper()
	res, err := e.Retire(context.Background())
	if err != nil {
		s.t.Fatalf("Retire: %v", err)
	}
	return res
}

func ids(xs ...eventlog.SequenceID) string { return fmt.Sprint(xs) }

// fiveSnapshots makes snapshots at 5, 10, 15, 20 and 25 (interval 5, one
// tile), one a minute.
func fiveSnapshots(s *sheet) {
	for i := range 26 {
		s.edit(uint32(i%7), uint32(i%3), cell.Cell{Value: num(float64(i))})
		if i%5 == 0 && i > 0 {
			s.runPending()
			s.clock.Advance(time.Minute)
		}
	}
}

// TestRetirementKeepsTheNewestK: five snapshots a minute apart with K = 2
// and G = 10 minutes. The passes after each completion retire nothing
// (every newer snapshot is inside its grace) and ask for the next pass
// when the first grace ends; each later pass retires what its grace
// allows, clearing the entry before the directory goes; in the end the
// newest two remain, and readers never miss a cell.
func TestRetirementKeepsTheNewestK(t *testing.T) {
	s := newSheet(t, Options{SnapshotInterval: 5, Retain: 2, RetireGrace: 10 * time.Minute}, 0, 0)
	start := s.clock.Now()
	fiveSnapshots(s)
	if got := fmt.Sprint(s.dirs()); got != "[5 10 15 20 25]" {
		t.Fatalf("directories %s before any grace ended", got)
	}
	// Snapshot 10 completed at start+1m: 5 may go from start+11m.
	if len(s.dues) == 0 || !s.dues[0].Equal(start.Add(11*time.Minute)) {
		t.Fatalf("passes asked for at %v, want the first at %v", s.dues, start.Add(11*time.Minute))
	}
	s.clock.Advance(start.Add(11 * time.Minute).Sub(s.clock.Now()))
	res := s.retire(s.worker)
	if ids(res.Retired...) != "[5]" || ids(res.Kept...) != "[10 15 20 25]" || !res.Due.Equal(start.Add(12*time.Minute)) {
		t.Fatalf("at +11m: %+v", res)
	}
	s.checkNamed()
	s.checkReader(s.root)

	// A fresh engine (another process, or after a restart) learns the
	// completion times from the index blobs, a second later to be safe.
	fresh := s.engine(s.root)
	s.clock.Advance(time.Minute)
	if res := s.retire(fresh); len(res.Retired) != 0 {
		t.Fatalf("a fresh engine retired %v at +12m, inside the second of slack", res.Retired)
	}
	s.clock.Advance(time.Second)
	if res := s.retire(fresh); ids(res.Retired...) != "[10]" {
		t.Fatalf("a fresh engine at +12m1s: %+v", res)
	}
	s.clock.Advance(time.Hour)
	res = s.retire(fresh)
	if ids(res.Retired...) != "[15]" || ids(res.Kept...) != "[20 25]" || !res.Due.IsZero() {
		t.Fatalf("an hour later: %+v", res)
	}
	if got := fmt.Sprint(s.dirs()); got != "[20 25]" {
		t.Fatalf("directories %s, want the newest two", got)
	}
	if done, _ := snapshots(t, s.log); ids(done...) != "[20 25]" {
		t.Fatalf("entries name snapshots %v", done)
	}
	s.checkNamed()
	s.checkReader(s.root)
	// Idempotent.
	if res := s.retire(s.worker); len(res.Retired)+len(res.Orphans) != 0 {
		t.Fatalf("a pass with nothing to do: %+v", res)
	}
	if st := s.worker.Stats().SnapshotsRetired + fresh.Stats().SnapshotsRetired; st != 3 {
		t.Errorf("%d retirements counted, want 3", st)
	}
}

// TestRetirementAfterEachSnapshot: snapshots two minutes apart with K = 1
// and G = 1 minute. The pass that follows each completion retires the
// snapshot before the previous one (its successor completed two minutes
// ago); the previous one stays, since the snapshot that replaces it has
// only just completed.
func TestRetirementAfterEachSnapshot(t *testing.T) {
	s := newSheet(t, Options{SnapshotInterval: 5, Retain: 1, RetireGrace: time.Minute}, 3, 2)
	for i := range 60 {
		s.edit(uint32(i%9), uint32(i%4), cell.Cell{Value: cell.StringValue(strconv.Itoa(i))})
		if i%5 == 0 && i > 0 {
			s.runPending()
			s.clock.Advance(2 * time.Minute)
			if i >= 10 {
				if got := fmt.Sprint(s.dirs()); got != fmt.Sprintf("[%d %d]", i-5, i) {
					t.Fatalf("after the snapshot at %d: directories %s", i, got)
				}
			}
			s.checkNamed()
		}
	}
	s.checkReader(s.root)
	if res := s.retire(s.worker); ids(res.Retired...) != "[50]" || ids(res.Kept...) != "[55]" {
		t.Fatalf("the pass a grace after the last snapshot: %+v", res)
	}
}

// TestRetirementRemovesOrphans: a pass crashed between the clear and the
// removal (dir 5), and a directory whose entry was truncated away (3),
// go once a newer snapshot is old enough; a snapshot being built
// (pending at 27), and directories that are not entry ids, stay.
func TestRetirementRemovesOrphans(t *testing.T) {
	ctx := context.Background()
	s := newSheet(t, Options{SnapshotInterval: 5, Retain: 2, RetireGrace: 10 * time.Minute, TruncateLog: true}, 4, 3)
	fiveSnapshots(s)
	for i := range 2 {
		s.edit(uint32(i), 9, cell.Cell{Value: cell.BoolValue(true)})
	}
	if _, err := s.log.SetMetadata(ctx, 5, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()}); err != nil {
		t.Fatal(err)
	}
	requestAt(t, s.log, 27)
	for _, path := range []string{"27/tiles/0-0-100-100", "007/index", "notes/x", "3/tiles/0-0-100-100"} {
		if err := writePath(ctx, s.root, path, "{}"); err != nil {
			t.Fatal(err)
		}
	}
	// An engine that did not see 5 complete (another process): to it, 5
	// is named by no entry.
	other := s.engine(s.root)
	// Inside every grace nothing goes, but the log is truncated to the
	// oldest snapshot kept.
	if res := s.retire(other); len(res.Retired)+len(res.Orphans) != 0 || res.TruncatedTo == nil || *res.TruncatedTo != 10 {
		t.Fatalf("inside every grace: %+v", res)
	}
	s.clock.Advance(time.Hour)
	res := s.retire(other)
	if ids(res.Orphans...) != "[3 5]" || ids(res.Retired...) != "[10 15]" || res.TruncatedTo == nil || *res.TruncatedTo != 20 {
		t.Fatalf("an hour later: %+v", res)
	}
	if got := fmt.Sprint(s.dirs()); got != "[007 20 25 27 notes]" {
		t.Fatalf("directories %s", got)
	}
	first, err := s.log.Query(ctx, eventlog.FromStart, eventlog.ToID(0), nil)
	if err != nil || first.Start != 20 {
		t.Fatalf("the log starts at %d (%v), want the oldest snapshot kept, 20", first.Start, err)
	}
	// The host catches up across the truncation; a reader loads.
	s.edit(50, 50, cell.Cell{Value: num(1)})
	s.checkReader(s.root)
	s.checkNamed()

	// A directory below the log's start (a stale worker wrote it after
	// the truncation) is an orphan too.
	if err := writePath(ctx, s.root, "12/tiles/0-0-100-100", "{}"); err != nil {
		t.Fatal(err)
	}
	if res := s.retire(s.worker); ids(res.Orphans...) != "[12]" {
		t.Fatalf("an orphan below the log's start: %+v", res)
	}
}

// TestRetirementTwiceAtOnce: passes of several engines at once do the
// work once between them and leave the same sheet.
func TestRetirementTwiceAtOnce(t *testing.T) {
	s := newSheet(t, Options{SnapshotInterval: 5, Retain: 2, RetireGrace: time.Minute, TruncateLog: true}, 0, 2)
	fiveSnapshots(s)
	s.clock.Advance(time.Hour)
	engines := []*Engine{s.engine(s.root), s.engine(s.root), s.engine(s.root), s.worker}
	var wg sync.WaitGroup
	errc := make(chan error, len(engines)*3)
	for _, e := range engines {
		for range 3 {
			wg.Go(func() {
				if _, err := e.Retire(context.Background()); err != nil {
					errc <- err
				}
			})
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("Retire: %v", err)
	}
	if got := fmt.Sprint(s.dirs()); got != "[20 25]" {
		t.Fatalf("directories %s", got)
	}
	s.checkNamed()
	s.checkReader(s.root)
}

// TestTheEnginesOwnTimerRetires: with no RetireLater, the engine's own
// timer runs the pass due once the grace ends, on the real clock.
func TestTheEnginesOwnTimerRetires(t *testing.T) {
	log := logmem.New(logmem.Options{})
	root, _ := blobmem.New(blobmem.Options{}).Sheet("s1")
	r := newRigOn(t, log, root, Options{SnapshotInterval: 2, Retain: 1, RetireGrace: 50 * time.Millisecond})
	defer r.close()
	ctx := context.Background()
	for i := range 9 {
		if _, err := r.hostE.SetCell(ctx, 0, uint32(i), cell.Cell{Value: num(1)}); err != nil {
			t.Fatal(err)
		}
		r.wait(t)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		done, _ := snapshots(t, log)
		page, err := root.Query(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Dirs) == 1 && len(done) == 1 && page.Dirs[0] == strconv.FormatUint(uint64(done[0]), 10) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("directories %v, snapshots %v: the timer did not retire", page.Dirs, done)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRetainAllKeepsEverything: retention off.
func TestRetainAllKeepsEverything(t *testing.T) {
	s := newSheet(t, Options{SnapshotInterval: 5, Retain: RetainAll}, 0, 0)
	fiveSnapshots(s)
	s.clock.Advance(24 * time.Hour)
	s.retire(s.worker)
	if got := fmt.Sprint(s.dirs()); got != "[5 10 15 20 25]" {
		t.Fatalf("directories %s", got)
	}
}

// hookedDir is a blob directory that calls hook before the operation
// named op on a blob or listing (with the directory's path), once.
type hookedDir struct {
	blobstore.BlobDir
	path string
	h    *hook
}

type hook struct {
	mu   sync.Mutex
	op   string // "read", "list" or "stat"
	path string // the directory's path, "/"-joined
	name string // the blob, for reads
	fn   func()
	done bool
}

func (h *hook) fire(op, path, name string) {
	h.mu.Lock()
	if h.done || op != h.op || path != h.path || (h.name != "" && name != h.name) {
		h.mu.Unlock()
		return
	}
	h.done = true
	h.mu.Unlock()
	h.fn()
}

func (d hookedDir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	d.h.fire("read", d.path, name)
	return d.BlobDir.ReadBlob(ctx, name)
}

func (d hookedDir) StatBlob(ctx context.Context, name string) (blobstore.BlobInfo, error) {
	d.h.fire("stat", d.path, name)
	return d.BlobDir.(blobstore.Stater).StatBlob(ctx, name)
}

func (d hookedDir) Query(ctx context.Context, token string) (blobstore.Page, error) {
	d.h.fire("list", d.path, "")
	return d.BlobDir.Query(ctx, token)
}

func (d hookedDir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	sub, err := d.BlobDir.GetDir(ctx, name)
	if err != nil {
		return nil, err
	}
	p := name
	if d.path != "" {
		p = d.path + "/" + name
	}
	return hookedDir{BlobDir: sub, path: p, h: d.h}, nil
}

// TestRetirementUnderALoadingReader: a reader starts loading the newest
// snapshot, 10; before it is done a newer one completes, its grace ends
// and a pass retires 10 (its index first, then its tiles). Whether the
// reader is then about to read the index, list the tiles, read a tile or
// check the index again, it must notice and load the newest snapshot,
// never a part of 10.
func TestRetirementUnderALoadingReader(t *testing.T) {
	for _, at := range []struct{ op, path, name string }{
		{"read", "10", "index"},
		{"list", "10/tiles", ""},
		{"read", "10/tiles", "0-0-3-3"},
		{"read", "10/tiles", "3-0-3-3"},
		{"stat", "10", "index"},
	} {
		t.Run(at.op+" "+at.path+"/"+at.name, func(t *testing.T) {
			s := newSheet(t, Options{SnapshotInterval: 10, Retain: 1, RetireGrace: time.Minute, TileWidth: 3, TileHeight: 3}, 0, 0)
			edits := func(n int) {
				for i := range n {
					s.edit(uint32(i%6), uint32(i%5), cell.Cell{Value: num(float64(i + len(s.modelAt)*100))})
				}
			}
			edits(11)
			s.runPending() // snapshot 10, the newest
			h := &hook{op: at.op, path: at.path, name: at.name, fn: func() {
				edits(10)
				s.runPending() // snapshot 20 (or 21: the interval counts tiles)
				s.clock.Advance(2 * time.Minute)
				res := s.retire(s.engine(s.root))
				if ids(res.Retired...) != "[10]" {
					t.Errorf("the pass under the reader retired %v", res.Retired)
				}
			}}
			reader := s.checkReader(hookedDir{BlobDir: s.root, h: h})
			if !h.done {
				t.Fatal("the reader never reached the hook")
			}
			if got := reader.Stats().SnapshotReloads; got != 1 {
				t.Errorf("the reader started again %d times, want once", got)
			}
		})
	}
}

// writePath writes a blob at a "/"-separated path under root.
func writePath(ctx context.Context, root blobstore.BlobDir, path, data string) error {
	dir := root
	parts := strings.Split(path, "/")
	for _, p := range parts[:len(parts)-1] {
		var err error
		if dir, err = dir.GetDir(ctx, p); err != nil {
			return err
		}
	}
	return dir.WriteBlob(ctx, parts[len(parts)-1], []byte(data))
}
