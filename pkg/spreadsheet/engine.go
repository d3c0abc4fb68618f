// Package spreadsheet is the engine: it applies cell edits to a sheet's
// event log, serves cell values, decides when a snapshot is due, and runs
// the snapshot workflow. It talks only to the three contracts: an
// eventlog.EventLog, a blobstore.BlobDir (the sheet's root) and a
// workers.WorkerHost, so the same engine runs over memory stores in a
// test, embedded stores on one machine, and DynamoDB and S3 on AWS.
//
// An Engine has two independent roles:
//
//   - host side (SetCell, Append, Cell, Range, Counts, Sync, Status): it
//     keeps the cells as of the log's end, appends entries with optimistic
//     concurrency, and sets pending = "snapshot" on an append when a
//     snapshot is due;
//   - worker side (RunWorkflow, WorkflowHandler): it builds the snapshot
//     requested at an entry S from the previous snapshot plus the entries
//     before S, and completes it with one conditional metadata write.
//
// Each role has its own copy of the cells; an Engine used for one role
// only pays for that one.
package spreadsheet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// Defaults of Options.
const (
	DefaultSnapshotInterval = 100
	DefaultTileSize         = 100
	DefaultResendAfter      = 30 * time.Second
	// MaxTileSize bounds the tile sizes this engine writes or reads: a
	// tile's cells are keyed by a 32-bit offset.
	MaxTileSize = 1 << 15
)

// Options configure an Engine. The zero value gives the defaults.
type Options struct {
	// SnapshotInterval is N: a snapshot is requested on the first append
	// at least N entries after the newest snapshot (or the start of the
	// log), unless one is still pending.
	SnapshotInterval int
	// TileWidth and TileHeight are the tile size of snapshots this
	// engine writes (readers follow each snapshot's own index).
	TileWidth, TileHeight int
	// ResendAfter is how long a requested workflow may stay pending
	// before the host posts it again (hosts with PostMessage only).
	ResendAfter time.Duration
	// WriteConcurrency bounds parallel blob writes of one snapshot.
	WriteConcurrency int
	Logger           *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = DefaultSnapshotInterval
	}
	if o.TileWidth == 0 {
		o.TileWidth = DefaultTileSize
	}
	if o.TileHeight == 0 {
		o.TileHeight = DefaultTileSize
	}
	if o.ResendAfter == 0 {
		o.ResendAfter = DefaultResendAfter
	}
	if o.WriteConcurrency == 0 {
		o.WriteConcurrency = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.SnapshotInterval < 1:
		return o, errs.Validation("snapshot interval must be at least 1, got %d", o.SnapshotInterval)
	case o.TileWidth < 1 || o.TileWidth > MaxTileSize || o.TileHeight < 1 || o.TileHeight > MaxTileSize:
		return o, errs.Validation("tile sizes must be in 1..%d, got %dx%d", MaxTileSize, o.TileWidth, o.TileHeight)
	case o.WriteConcurrency < 1:
		return o, errs.Validation("write concurrency must be at least 1")
	}
	return o, nil
}

// Engine is the engine of one sheet. It is safe for concurrent use.
type Engine struct {
	sheet string
	log   eventlog.EventLog
	root  blobstore.BlobDir
	host  workers.WorkerHost
	opts  Options
	lg    *slog.Logger

	// mu and wmu are one-slot semaphores guarding the host and worker
	// sides (see lock).
	mu  chan struct{}
	h   hostState
	wmu chan struct{}
	w   workerState

	hostBytes, workerBytes atomic.Int64

	stats Stats
}

// hostState is the host's view of the log, as of next.
type hostState struct {
	loaded bool
	cells  *grid
	next   eventlog.SequenceID
	// snap is the newest snapshot known (nil: none).
	snap *eventlog.SnapshotRef
	// pending is the outstanding snapshot request, if any.
	pending *request
	buf     []byte
}

type request struct {
	id         eventlog.SequenceID
	lastPosted time.Time
}

// Stats counts the engine's work; tests and benchmarks read it.
type Stats struct {
	TilesEncoded      atomic.Int64
	TilesCopied       atomic.Int64
	SnapshotsWritten  atomic.Int64
	SnapshotsSkipped  atomic.Int64
	EntriesReplayed   atomic.Int64
	UnknownEntries    atomic.Int64
	SnapshotsLoaded   atomic.Int64
	CompletionsNoop   atomic.Int64
	WorkflowsReposted atomic.Int64
}

// New returns the engine of sheet over its log, its blob root and a worker
// host (nil for an engine that only runs workflows). Nothing is read until
// the first call that needs the state.
func New(sheet string, log eventlog.EventLog, root blobstore.BlobDir, host workers.WorkerHost, opts Options) (*Engine, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if host == nil {
		host = workers.ImplicitHost{}
	}
	return &Engine{
		sheet: sheet, log: log, root: root, host: host, opts: o,
		lg: o.Logger.With("sheet", sheet),
		mu: make(chan struct{}, 1), wmu: make(chan struct{}, 1),
	}, nil
}

// Sheet is the id of the engine's sheet.
func (e *Engine) Sheet() string { return e.sheet }

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

func (e *Engine) ensureLoaded(ctx context.Context) error {
	if e.h.loaded {
		return nil
	}
	return e.loadLocked(ctx)
}

// Load (re)reads the sheet: the newest snapshot, then the entries after it.
func (e *Engine) Load(ctx context.Context) error {
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.unlock()
	return e.loadLocked(ctx)
}

func (e *Engine) loadLocked(ctx context.Context) error {
	st, err := loadLatest(ctx, e, false)
	if err != nil {
		return err
	}
	e.h = hostState{loaded: true, cells: st.cells, next: st.next, snap: st.snap, buf: e.h.buf}
	e.h.pending = nil
	if st.pendingID != nil {
		e.h.pending = &request{id: *st.pendingID}
	}
	return nil
}

// Sync catches up with entries appended since the engine last looked,
// reading the log page by page.
func (e *Engine) Sync(ctx context.Context) error {
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.unlock()
	return e.syncLocked(ctx)
}

// syncLocked loads the sheet on first use, and catches up afterwards.
func (e *Engine) syncLocked(ctx context.Context) error {
	if !e.h.loaded {
		return e.loadLocked(ctx)
	}
	return e.catchUpLocked(ctx)
}

func (e *Engine) catchUpLocked(ctx context.Context) error {
	for {
		page, err := e.log.Query(ctx, eventlog.FromID(e.h.next), eventlog.ToEnd, e.knownLocked())
		var re *errs.RangeError
		if errors.As(err, &re) {
			// The log was truncated beyond what we hold: start afresh
			// from its newest snapshot.
			return e.loadLocked(ctx)
		}
		if err != nil {
			return err
		}
		e.noteSnapshotLocked(page.LastSnapshot)
		for i, ent := range page.Entries {
			e.applyLogEntryLocked(page.Start+eventlog.SequenceID(i), ent)
		}
		e.h.next = page.End
		if page.Complete {
			return nil
		}
	}
}

func (e *Engine) knownLocked() *eventlog.SequenceID {
	if e.h.snap == nil {
		return eventlog.Known(0)
	}
	return eventlog.Known(e.h.snap.SequenceID)
}

// noteSnapshotLocked records a newer snapshot and retires the request it
// answers.
func (e *Engine) noteSnapshotLocked(ref *eventlog.SnapshotRef) {
	if ref == nil {
		return
	}
	if e.h.snap == nil || ref.SequenceID >= e.h.snap.SequenceID {
		r := *ref
		e.h.snap = &r
	}
	if e.h.pending != nil && e.h.pending.id <= ref.SequenceID {
		e.h.pending = nil
	}
}

func (e *Engine) applyLogEntryLocked(id eventlog.SequenceID, ent eventlog.Entry) {
	if ent.Snapshot != "" {
		e.noteSnapshotLocked(&eventlog.SnapshotRef{SequenceID: id, BlobID: ent.Snapshot})
	}
	if ent.Pending == eventlog.WorkflowSnapshot && (e.h.pending == nil || e.h.pending.id < id) {
		e.h.pending = &request{id: id, lastPosted: e.opts.Now()}
	}
	applyBody(e, e.h.cells, id, ent.Body)
}

// applyBody replays one entry body onto g. Entries this engine cannot
// read are skipped and counted: the log may hold entry types from newer
// writers, and one bad entry must not make a sheet unreadable.
func applyBody(e *Engine, g *grid, id eventlog.SequenceID, body []byte) {
	ce, err := cell.DecodeEntry(body, cell.Lenient)
	if err != nil {
		e.stats.UnknownEntries.Add(1)
		e.lg.Warn("skipping a log entry the engine cannot apply", "seq", uint64(id), "err", err)
		return
	}
	g.apply(ce)
	e.stats.EntriesReplayed.Add(1)
}

// AppendResult is the reply of a successful Append.
type AppendResult struct {
	SequenceID eventlog.SequenceID
	// LastSnapshot is the newest snapshot when it differs from the
	// caller's known one (as in eventlog.EventLog.AddEntry).
	LastSnapshot *eventlog.SnapshotRef
	// SnapshotRequested is true when this append set pending.
	SnapshotRequested bool
}

// SetCell appends an edit of one cell at the next id.
func (e *Engine) SetCell(ctx context.Context, row, col uint32, c cell.Cell) (eventlog.SequenceID, error) {
	if err := e.lock(ctx); err != nil {
		return 0, err
	}
	defer e.unlock()
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	r, err := e.appendLocked(ctx, e.h.next, cell.Entry{Row: row, Column: col, Cell: c}, nil)
	return r.SequenceID, err
}

// Append appends ent at id, which must be the log's next id, as a thin
// client does: on a conflict the engine catches up and returns the
// *errs.ConflictError with the log's next id. known is the caller's newest
// known snapshot, as in eventlog.EventLog.AddEntry.
func (e *Engine) Append(ctx context.Context, id eventlog.SequenceID, ent cell.Entry, known *eventlog.SequenceID) (AppendResult, error) {
	if err := e.lock(ctx); err != nil {
		return AppendResult{}, err
	}
	defer e.unlock()
	if err := e.ensureLoaded(ctx); err != nil {
		return AppendResult{}, err
	}
	return e.appendLocked(ctx, id, ent, known)
}

func (e *Engine) appendLocked(ctx context.Context, id eventlog.SequenceID, ent cell.Entry, known *eventlog.SequenceID) (AppendResult, error) {
	if err := ent.Validate(); err != nil {
		return AppendResult{}, err
	}
	if id != e.h.next {
		// Our view may be stale: another writer appended.
		if err := e.catchUpLocked(ctx); err != nil {
			return AppendResult{}, err
		}
		if id != e.h.next {
			return AppendResult{}, errs.Conflict(uint64(id), uint64(e.h.next))
		}
	}
	due := e.snapshotDueLocked(ctx, id)
	e.h.buf = ent.AppendJSON(e.h.buf[:0])
	entry := eventlog.Entry{Body: e.h.buf}
	if due {
		entry.Pending = eventlog.WorkflowSnapshot
	}
	last, err := e.log.AddEntry(ctx, id, entry, e.knownLocked())
	var ce *errs.ConflictError
	if errors.As(err, &ce) {
		if err := e.catchUpLocked(ctx); err != nil {
			return AppendResult{}, err
		}
		return AppendResult{}, errs.Conflict(uint64(id), uint64(max(e.h.next, eventlog.SequenceID(ce.NextSequenceID))))
	}
	if err != nil {
		return AppendResult{}, err
	}
	e.noteSnapshotLocked(last)
	e.h.cells.apply(ent)
	e.h.next = id + 1
	if due {
		e.h.pending = &request{id: id}
		e.postLocked(ctx)
	}
	res := AppendResult{SequenceID: id, SnapshotRequested: due}
	if known != nil && e.h.snap != nil && e.h.snap.SequenceID != *known {
		s := *e.h.snap
		res.LastSnapshot = &s
	}
	return res, nil
}

// snapshotDueLocked decides whether the append at id requests a snapshot:
// at least N entries since the newest snapshot (or the log's start), and
// no earlier request outstanding. A request that has waited too long is
// posted again instead.
func (e *Engine) snapshotDueLocked(ctx context.Context, id eventlog.SequenceID) bool {
	interval := func() bool {
		var base eventlog.SequenceID
		if e.h.snap != nil {
			base = e.h.snap.SequenceID
		}
		return id >= base && uint64(id-base) >= uint64(e.opts.SnapshotInterval)
	}
	if !interval() {
		return false
	}
	if e.h.pending == nil {
		return true
	}
	poster, explicit := e.host.(workers.PostMessageWorkerHost)
	if explicit && !poster.Outstanding(e.sheet) {
		// The host has nothing in flight for this sheet, so the request
		// either finished (and the log says so) or its message was lost.
		// A finished one moves the base, so the interval is checked again.
		if e.refreshPendingLocked(ctx) && e.h.pending == nil {
			return interval()
		}
	}
	if explicit && e.h.pending != nil && e.opts.Now().Sub(e.h.pending.lastPosted) >= e.opts.ResendAfter {
		e.stats.WorkflowsReposted.Add(1)
		e.postLocked(ctx)
	}
	return false
}

// refreshPendingLocked re-reads the entry of the outstanding request and
// reports whether it could.
func (e *Engine) refreshPendingLocked(ctx context.Context) bool {
	p := e.h.pending
	page, err := e.log.Query(ctx, eventlog.FromID(p.id), eventlog.ToID(p.id+1), nil)
	if err != nil || len(page.Entries) != 1 {
		return false
	}
	ent := page.Entries[0]
	if ent.Snapshot != "" {
		e.noteSnapshotLocked(&eventlog.SnapshotRef{SequenceID: p.id, BlobID: ent.Snapshot})
	}
	if ent.Pending == "" {
		e.h.pending = nil
	}
	return true
}

func (e *Engine) postLocked(ctx context.Context) {
	poster, ok := e.host.(workers.PostMessageWorkerHost)
	if !ok || e.h.pending == nil {
		return
	}
	e.h.pending.lastPosted = e.opts.Now()
	msg := workers.PendingWorkflowMessage{Sheet: e.sheet, Workflow: eventlog.WorkflowSnapshot, SequenceID: e.h.pending.id}
	if err := poster.PostMessage(ctx, msg); err != nil {
		// The log holds the request; a host re-scan or a later re-send
		// delivers it.
		e.lg.Warn("could not post a workflow; it stays pending in the log", "seq", uint64(e.h.pending.id), "err", err)
	}
}

// Cell returns the cell at (row, col) as of the engine's view. Call Sync
// first to see other writers' entries.
func (e *Engine) Cell(ctx context.Context, row, col uint32) (cell.Cell, error) {
	if err := e.lock(ctx); err != nil {
		return cell.Cell{}, err
	}
	defer e.unlock()
	if err := e.ensureLoaded(ctx); err != nil {
		return cell.Cell{}, err
	}
	return e.h.cells.get(row, col), nil
}

// Counts returns the row and column counts: one more than the largest row
// and column named by any entry, clearing ones included.
func (e *Engine) Counts(ctx context.Context) (rows, cols uint64, err error) {
	if err := e.lock(ctx); err != nil {
		return 0, 0, err
	}
	defer e.unlock()
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, 0, err
	}
	return e.h.cells.rowCount, e.h.cells.colCount, nil
}

// View is a consistent read of a range of cells.
type View struct {
	// Next is the sequence id the view is as of (the log's end when read).
	Next               eventlog.SequenceID
	RowCount, ColCount uint64
	// Cells holds the non-empty cells of the range.
	Cells []PositionedCell
}

// PositionedCell is a cell with its coordinates.
type PositionedCell struct {
	Row, Col uint32
	cell.Cell
}

// Range reads the non-empty cells of r, after catching up with the log.
func (e *Engine) Range(ctx context.Context, r a1.Range) (View, error) {
	if err := e.lock(ctx); err != nil {
		return View{}, err
	}
	defer e.unlock()
	if err := e.syncLocked(ctx); err != nil {
		return View{}, err
	}
	v := View{Next: e.h.next, RowCount: e.h.cells.rowCount, ColCount: e.h.cells.colCount}
	e.h.cells.each(r, func(row, col uint32, c cell.Cell) {
		v.Cells = append(v.Cells, PositionedCell{row, col, c})
	})
	return v, nil
}

// Next returns the next sequence id as the engine knows it.
func (e *Engine) Next(ctx context.Context) (eventlog.SequenceID, error) {
	if err := e.lock(ctx); err != nil {
		return 0, err
	}
	defer e.unlock()
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	return e.h.next, nil
}

// Status describes a sheet.
type Status struct {
	Start, End         eventlog.SequenceID
	LastSnapshot       *eventlog.SnapshotRef
	Pending            []PendingWorkflow
	RowCount, ColCount uint64
}

// PendingWorkflow is a workflow requested and not finished.
type PendingWorkflow struct {
	SequenceID eventlog.SequenceID
	Workflow   string
}

// Status reads the sheet's status from the log: its id range, newest
// snapshot, the workflows still pending after it, and the counts.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	if err := e.lock(ctx); err != nil {
		return Status{}, err
	}
	defer e.unlock()
	if err := e.syncLocked(ctx); err != nil {
		return Status{}, err
	}
	st := Status{End: e.h.next, RowCount: e.h.cells.rowCount, ColCount: e.h.cells.colCount}
	// An empty page at the start tells where the log starts.
	first, err := e.log.Query(ctx, eventlog.FromStart, eventlog.ToID(0), nil)
	if err != nil {
		return Status{}, err
	}
	st.Start = first.Start
	// Metadata changes after an append, so pending is read fresh from the
	// newest snapshot on (no workflow is requested before it).
	from := eventlog.FromSnapshot
	for {
		page, err := e.log.Query(ctx, from, eventlog.ToID(e.h.next), nil)
		if err != nil {
			return Status{}, err
		}
		for i, ent := range page.Entries {
			id := page.Start + eventlog.SequenceID(i)
			if ent.Snapshot != "" {
				e.noteSnapshotLocked(&eventlog.SnapshotRef{SequenceID: id, BlobID: ent.Snapshot})
			}
			if ent.Pending != "" {
				st.Pending = append(st.Pending, PendingWorkflow{id, ent.Pending})
			}
		}
		if page.Complete {
			break
		}
		from = eventlog.FromID(page.End)
	}
	if e.h.snap != nil {
		s := *e.h.snap
		st.LastSnapshot = &s
	}
	return st, nil
}

// UnknownWorkflowError is returned for a workflow name the engine does not
// know. Retrying cannot help; deployments send it to a dead-letter queue.
type UnknownWorkflowError struct {
	Sheet    string
	Workflow string
	ID       eventlog.SequenceID
}

func (e *UnknownWorkflowError) Error() string {
	return fmt.Sprintf("unknown workflow %q at %s/%d", e.Workflow, e.Sheet, e.ID)
}

// Approximate memory per stored cell and per tile, for Footprint.
const (
	bytesPerCell = 96
	bytesPerTile = 160
)

// Footprint estimates the memory the engine holds for its cells (both
// roles), so caches of engines can bound memory as well as count. It never
// waits for a running operation.
func (e *Engine) Footprint() int {
	return int(e.hostBytes.Load() + e.workerBytes.Load())
}

// lock and wlock take the host and worker sides. They give up when ctx
// ends, so a call stuck in a storage operation cannot pile up waiters
// that ignore their deadlines.
func (e *Engine) lock(ctx context.Context) error {
	select {
	case e.mu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errs.Storage(context.Cause(ctx), "sheet %s is busy", e.sheet)
	}
}

func (e *Engine) unlock() {
	e.hostBytes.Store(e.h.cells.footprint())
	<-e.mu
}

func (e *Engine) wlock(ctx context.Context) error {
	select {
	case e.wmu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errs.Storage(context.Cause(ctx), "sheet %s is busy with a workflow", e.sheet)
	}
}

func (e *Engine) wunlock() {
	e.workerBytes.Store(e.w.cells.footprint())
	<-e.wmu
}
