package spreadsheet

import (
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// hostState is the host's view of the sheet, as of the log's entry next.
type hostState struct {
	loaded bool
	cells  *grid
	next   eventlog.SequenceID
	// newestSnapshot is the newest snapshot known (nil: none).
	newestSnapshot *eventlog.SnapshotRef
	// request is the outstanding snapshot request, if any.
	request *request
	// knownID is the id of newestSnapshot (0: none), passed to the log
	// as the caller's known snapshot.
	knownID eventlog.SequenceID
	// body is the buffer the next batch's entries are encoded into, ends
	// where each of them ends, and batch the entries handed to the log.
	body  []byte
	ends  []int
	batch []eventlog.Entry
	// resendGen names the current re-send timer; a timer that finds
	// another generation was replaced and does nothing.
	resendGen uint64
	// snapTiles is the number of non-empty tiles when the host last
	// requested a snapshot or loaded the sheet (cadence.go).
	snapTiles int
}

// request is a snapshot requested at entry id and not known complete.
type request struct {
	id         eventlog.SequenceID
	lastPosted time.Time
	// resends counts the re-sends of the host's own timer, which back
	// off.
	resends int
}

func (h *hostState) footprint() int64 {
	if h.cells == nil {
		return 0
	}
	return h.cells.bytes + int64(cap(h.body)) + int64(cap(h.ends))*8 + int64(cap(h.batch))*int64(unsafe.Sizeof(eventlog.Entry{}))
}

func (e *Engine) ensureLoaded(ctx context.Context) error {
	if e.host.loaded {
		return nil
	}
	return e.loadLocked(ctx)
}

// Load (re)reads the sheet: the newest snapshot, then the entries after it.
func (e *Engine) Load(ctx context.Context) error {
	if err := e.lockHost(ctx); err != nil {
		return err
	}
	defer e.unlockHost()
	return e.loadLocked(ctx)
}

func (e *Engine) loadLocked(ctx context.Context) error {
	st, err := e.loadLatest(ctx)
	if err != nil {
		return err
	}
	e.host = hostState{loaded: true, cells: st.cells, next: st.next,
		body: e.host.body, ends: e.host.ends, batch: e.host.batch, resendGen: e.host.resendGen,
		snapTiles: len(st.cells.tiles)}
	e.noteSnapshotLocked(st.snap)
	if st.pendingID != nil {
		// Whoever requested it may have lost the message: the timer
		// re-sends it if it stays pending.
		e.host.request = &request{id: *st.pendingID, lastPosted: e.opts.Now()}
		e.armResendLocked()
	}
	return nil
}

// Sync catches up with entries appended since the engine last looked,
// reading the log page by page.
func (e *Engine) Sync(ctx context.Context) error {
	if err := e.lockHost(ctx); err != nil {
		return err
	}
	defer e.unlockHost()
	return e.syncLocked(ctx)
}

// syncLocked loads the sheet on first use, and catches up afterwards.
func (e *Engine) syncLocked(ctx context.Context) error {
	if !e.host.loaded {
		return e.loadLocked(ctx)
	}
	return e.catchUpLocked(ctx)
}

func (e *Engine) catchUpLocked(ctx context.Context) error {
	for page, err := range eventlog.Pages(ctx, e.log, eventlog.FromID(e.host.next), eventlog.ToEnd, e.knownLocked()) {
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
		for id, ent := range page.All() {
			e.applyLogEntryLocked(id, ent)
		}
		e.host.next = page.End
	}
	return nil
}

// knownLocked is the newest snapshot's id as the log's known argument. It
// points into the engine, so passing it allocates nothing.
func (e *Engine) knownLocked() *eventlog.SequenceID {
	return &e.host.knownID
}

// noteSnapshotLocked records a newer snapshot and retires the request it
// answers.
func (e *Engine) noteSnapshotLocked(ref *eventlog.SnapshotRef) {
	if ref == nil {
		return
	}
	if s := e.host.newestSnapshot; s == nil || ref.SequenceID >= s.SequenceID {
		r := *ref
		e.host.newestSnapshot = &r
		e.host.knownID = r.SequenceID
	}
	if e.host.request != nil && e.host.request.id <= ref.SequenceID {
		e.host.request = nil
	}
}

func (e *Engine) applyLogEntryLocked(id eventlog.SequenceID, ent eventlog.Entry) {
	if ent.Snapshot != "" {
		e.noteSnapshotLocked(&eventlog.SnapshotRef{SequenceID: id, BlobID: ent.Snapshot})
	}
	if ent.Pending == eventlog.WorkflowSnapshot && (e.host.request == nil || e.host.request.id < id) {
		// Another writer requested it (and posted it, if it could).
		e.host.request = &request{id: id, lastPosted: e.opts.Now()}
		e.armResendLocked()
	}
	e.applyBody(e.host.cells, id, ent.Body)
}

// AppendResult is the reply of a successful Append or AppendBatch.
type AppendResult struct {
	// SequenceID is the id of the first entry appended; End is one past
	// the last.
	SequenceID, End eventlog.SequenceID
	// LastSnapshot is the newest snapshot when it differs from the
	// caller's known one (as in eventlog.EventLog.AddEntry).
	LastSnapshot *eventlog.SnapshotRef
	// SnapshotRequested is true when the append set pending, on the
	// entry RequestedAt.
	SnapshotRequested bool
	RequestedAt       eventlog.SequenceID
}

// SetCell appends an edit of one cell at the next id.
func (e *Engine) SetCell(ctx context.Context, row, col uint32, c cell.Cell) (eventlog.SequenceID, error) {
	if err := e.lockHost(ctx); err != nil {
		return 0, err
	}
	defer e.unlockHost()
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	r, err := e.appendLocked(ctx, e.host.next, []cell.Entry{{Row: row, Column: col, Cell: c}}, nil)
	return r.SequenceID, err
}

// Append appends ent at id, which must be the log's next id, as a thin
// client does: on a conflict the engine catches up and returns the
// *errs.ConflictError with the log's next id. known is the caller's newest
// known snapshot, as in eventlog.EventLog.AddEntry. It is AppendBatch of
// one entry.
//
// Strings that are not valid UTF-8 are stored as the log writes them
// (each invalid byte becomes U+FFFD), so the engine, the log and an
// engine that reloads the sheet all hold the same cell.
func (e *Engine) Append(ctx context.Context, id eventlog.SequenceID, ent cell.Entry, known *eventlog.SequenceID) (AppendResult, error) {
	return e.AppendBatch(ctx, id, []cell.Entry{ent}, known)
}

// AppendBatch appends 1 to eventlog.MaxBatch entries at id, id+1, ...
// in one atomic write of the log (eventlog.EventLog.AddEntries): all of
// them or none. Every entry is checked before anything is written; the
// *errs.ValidationError about a bad one names its index in the batch.
// Conflicts, known and invalid UTF-8 are as in Append.
//
// When a snapshot is due, pending is set on the first entry of the
// batch at which it is due (where a run of single appends would have
// set it), and on no other.
func (e *Engine) AppendBatch(ctx context.Context, id eventlog.SequenceID, entries []cell.Entry, known *eventlog.SequenceID) (AppendResult, error) {
	if err := e.lockHost(ctx); err != nil {
		return AppendResult{}, err
	}
	defer e.unlockHost()
	if err := e.ensureLoaded(ctx); err != nil {
		return AppendResult{}, err
	}
	return e.appendLocked(ctx, id, entries, known)
}

// appendLocked appends a batch in three steps: check the entries and the
// id against the log (catchUpToLocked), write them with pending set on
// the entry where a snapshot becomes due, then, once the log has
// acknowledged them, apply them to the host's cells (appliedLocked).
func (e *Engine) appendLocked(ctx context.Context, id eventlog.SequenceID, ents []cell.Entry, known *eventlog.SequenceID) (AppendResult, error) {
	n := len(ents)
	if n == 0 || n > eventlog.MaxBatch {
		return AppendResult{}, errs.Validation("a batch holds 1 to %d entries, not %d", eventlog.MaxBatch, n)
	}
	for i := range ents {
		if err := ents[i].Validate(); err != nil {
			return AppendResult{}, eventlog.BatchEntryError(n, i, err)
		}
	}
	if err := e.catchUpToLocked(ctx, id); err != nil {
		return AppendResult{}, err
	}
	at, due := e.firstDueLocked(id, n)
	batch := e.encodeLocked(ents)
	if due {
		batch[at-id].Pending = eventlog.WorkflowSnapshot
	}
	last, err := e.log.AddEntries(ctx, id, batch, e.knownLocked())
	if err != nil {
		return AppendResult{}, e.appendFailedLocked(ctx, id, err)
	}
	e.noteSnapshotLocked(last)
	for i := range ents {
		// As encoded: ValidUTF8 costs nothing for a cell without strings.
		ent := ents[i]
		ent.Cell = ent.Cell.ValidUTF8()
		e.host.cells.apply(ent)
	}
	end := id + eventlog.SequenceID(n)
	e.host.next = end
	return e.appliedLocked(ctx, id, end, at, due, known), nil
}

// encodeLocked encodes ents into the host's buffers: one body buffer
// sliced per entry, and the entries' slice, both reused by the next
// append.
func (e *Engine) encodeLocked(ents []cell.Entry) []eventlog.Entry {
	buf := e.host.body[:0]
	ends := e.host.ends[:0]
	for i := range ents {
		ent := ents[i]
		ent.Cell = ent.Cell.ValidUTF8()
		buf = ent.AppendJSON(buf)
		ends = append(ends, len(buf))
	}
	e.host.body, e.host.ends = buf, ends
	batch := e.host.batch[:0]
	start := 0
	for _, end := range ends {
		batch = append(batch, eventlog.Entry{Body: buf[start:end:end]})
		start = end
	}
	e.host.batch = batch
	return batch
}

// catchUpToLocked makes sure id is the next id as far as the log knows:
// a stale view catches up first.
func (e *Engine) catchUpToLocked(ctx context.Context, id eventlog.SequenceID) error {
	if id == e.host.next {
		return nil
	}
	if err := e.catchUpLocked(ctx); err != nil {
		return err
	}
	if id != e.host.next {
		appendConflicts.Inc()
		return errs.Conflict(uint64(id), uint64(e.host.next))
	}
	return nil
}

// appendFailedLocked turns a failed append into the caller's error: a
// conflict catches up first, so the error carries the log's next id.
func (e *Engine) appendFailedLocked(ctx context.Context, id eventlog.SequenceID, err error) error {
	var ce *errs.ConflictError
	if !errors.As(err, &ce) {
		return err
	}
	appendConflicts.Inc()
	if err := e.catchUpLocked(ctx); err != nil {
		return err
	}
	return errs.Conflict(uint64(id), uint64(max(e.host.next, eventlog.SequenceID(ce.NextSequenceID))))
}

// appliedLocked finishes an append of the entries [id, end): it posts
// the snapshot request the append carried at entry at, and builds the
// reply.
func (e *Engine) appliedLocked(ctx context.Context, id, end, at eventlog.SequenceID, requested bool, known *eventlog.SequenceID) AppendResult {
	appendedEntries.Add(uint64(end - id))
	res := AppendResult{SequenceID: id, End: end, SnapshotRequested: requested}
	if requested {
		res.RequestedAt = at
		e.host.request = &request{id: at}
		e.host.snapTiles = len(e.host.cells.tiles)
		e.postLocked(ctx)
	}
	if s := e.host.newestSnapshot; known != nil && s != nil && s.SequenceID != *known {
		r := *s
		res.LastSnapshot = &r
	}
	return res
}

// firstDueLocked finds the first of the n entries from id on at which a
// snapshot is due (snapshotDueLocked), if any.
func (e *Engine) firstDueLocked(id eventlog.SequenceID, n int) (eventlog.SequenceID, bool) {
	for k := range eventlog.SequenceID(n) {
		if e.snapshotDueLocked(id + k) {
			return id + k, true
		}
	}
	return 0, false
}

// snapshotDueLocked decides whether the append at id requests a snapshot:
// at least N entries since the newest snapshot (or the log's start), and
// no earlier request outstanding. An outstanding request is not asked
// again: the log's reply to every append says when it completes, and the
// re-send timer posts it again if it stays pending (armResendLocked). A
// thin client's engine (workers.NoWorkflowsHost) never requests one.
func (e *Engine) snapshotDueLocked(id eventlog.SequenceID) bool {
	return !e.thin && e.host.request == nil && e.intervalReachedLocked(id)
}

// intervalReachedLocked: at least the snapshot interval (cadence.go)
// between the newest snapshot (or the log's start) and id.
func (e *Engine) intervalReachedLocked(id eventlog.SequenceID) bool {
	var base eventlog.SequenceID
	if s := e.host.newestSnapshot; s != nil {
		base = s.SequenceID
	}
	return id >= base && uint64(id-base) >= uint64(e.snapshotIntervalLocked())
}

// refreshRequestLocked re-reads the entry of the outstanding request and
// reports whether it could.
func (e *Engine) refreshRequestLocked(ctx context.Context) bool {
	p := e.host.request
	page, err := e.log.Query(ctx, eventlog.FromID(p.id), eventlog.ToID(p.id+1), nil)
	if err != nil || len(page.Entries) != 1 {
		return false
	}
	ent := page.Entries[0]
	if ent.Snapshot != "" {
		e.noteSnapshotLocked(&eventlog.SnapshotRef{SequenceID: p.id, BlobID: ent.Snapshot})
	}
	if ent.Pending == "" {
		e.host.request = nil
	}
	return true
}

// postLocked tells the worker host about the outstanding request and
// arms the timer that re-sends it if it stays pending.
func (e *Engine) postLocked(ctx context.Context) {
	poster, ok := e.workerHost.(workers.PostMessageWorkerHost)
	if !ok || e.host.request == nil {
		return
	}
	e.host.request.lastPosted = e.opts.Now()
	msg := workers.PendingWorkflowMessage{Sheet: e.sheet, Workflow: eventlog.WorkflowSnapshot, SequenceID: e.host.request.id}
	if err := poster.PostMessage(ctx, msg); err != nil {
		// The log holds the request; a host re-scan or a re-send
		// delivers it.
		e.lg.Warn("could not post a workflow; it stays pending in the log", "seq", uint64(e.host.request.id), "err", err)
	}
	e.armResendLocked()
}

// maxResendBackoff caps the doubling of the re-send delay: at most
// 2^maxResendBackoff times ResendAfter between re-sends.
const maxResendBackoff = 5

// armResendLocked (re)starts the timer that re-sends the outstanding
// request if it is still pending after ResendAfter (doubling with each
// re-send), so that a lost message of a sheet nobody writes to any more
// is delivered all the same. Hosts that cannot be posted to (a stream
// forwards the log by itself) need none.
func (e *Engine) armResendLocked() {
	if _, ok := e.workerHost.(workers.PostMessageWorkerHost); !ok || e.host.request == nil {
		return
	}
	e.host.resendGen++
	e.scheduleResend(e.host.resendGen, e.opts.ResendAfter<<min(e.host.request.resends, maxResendBackoff))
}

// scheduleResend starts the re-send timer of generation gen. It needs
// no host lock, so a timer that finds the host busy can try again.
func (e *Engine) scheduleResend(gen uint64, delay time.Duration) {
	e.resendMu.Lock()
	defer e.resendMu.Unlock()
	if e.closed || gen < e.resendArmed {
		return // a newer generation's timer is running
	}
	if e.resend != nil {
		e.resend.Stop()
	}
	e.resendArmed = gen
	e.resend = time.AfterFunc(delay, func() { e.resendIfPending(gen) })
}

// resendIfPending is the re-send timer: unless the request was posted
// again since (another generation), it reads the request's entry and
// posts it again if it is still pending.
func (e *Engine) resendIfPending(gen uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.ResendAfter)
	defer cancel()
	if err := e.lockHost(ctx); err != nil {
		e.scheduleResend(gen, e.opts.ResendAfter) // busy all along: try again
		return
	}
	defer e.unlockHost()
	if e.host.resendGen != gen || e.host.request == nil {
		return
	}
	if !e.refreshRequestLocked(ctx) {
		// The log could not be read (it may be closed for good): try
		// again later, backing off.
		e.host.request.resends++
		e.armResendLocked()
		return
	}
	if e.host.request == nil {
		return
	}
	e.host.request.resends++
	e.stats.workflowsReposted.Add(1)
	e.lg.Info("re-sending a snapshot request that is still pending", "seq", uint64(e.host.request.id), "resends", e.host.request.resends)
	e.postLocked(ctx)
}

// Cell returns the cell at (row, col) as of the engine's view. Call Sync
// first to see other writers' entries.
func (e *Engine) Cell(ctx context.Context, row, col uint32) (cell.Cell, error) {
	if err := e.lockHost(ctx); err != nil {
		return cell.Cell{}, err
	}
	defer e.unlockHost()
	if err := e.ensureLoaded(ctx); err != nil {
		return cell.Cell{}, err
	}
	return e.host.cells.get(row, col), nil
}

// Counts returns the row and column counts: one more than the largest row
// and column named by any entry, clearing ones included.
func (e *Engine) Counts(ctx context.Context) (rows, cols uint64, err error) {
	if err := e.lockHost(ctx); err != nil {
		return 0, 0, err
	}
	defer e.unlockHost()
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, 0, err
	}
	return e.host.cells.rowCount, e.host.cells.colCount, nil
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
	if err := e.lockHost(ctx); err != nil {
		return View{}, err
	}
	defer e.unlockHost()
	if err := e.syncLocked(ctx); err != nil {
		return View{}, err
	}
	v := View{Next: e.host.next, RowCount: e.host.cells.rowCount, ColCount: e.host.cells.colCount}
	v.Cells = make([]PositionedCell, 0, min(r.Cells(), uint64(e.host.cells.cells)))
	e.host.cells.each(r, func(row, col uint32, c cell.Cell) {
		v.Cells = append(v.Cells, PositionedCell{row, col, c})
	})
	return v, nil
}

// Next returns the next sequence id as the engine knows it.
func (e *Engine) Next(ctx context.Context) (eventlog.SequenceID, error) {
	if err := e.lockHost(ctx); err != nil {
		return 0, err
	}
	defer e.unlockHost()
	if err := e.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	return e.host.next, nil
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
	if err := e.lockHost(ctx); err != nil {
		return Status{}, err
	}
	defer e.unlockHost()
	if err := e.syncLocked(ctx); err != nil {
		return Status{}, err
	}
	st := Status{End: e.host.next, RowCount: e.host.cells.rowCount, ColCount: e.host.cells.colCount}
	// An empty page at the start tells where the log starts.
	first, err := e.log.Query(ctx, eventlog.FromStart, eventlog.ToID(0), nil)
	if err != nil {
		return Status{}, err
	}
	st.Start = first.Start
	// Metadata changes after an append, so pending is read fresh from the
	// newest snapshot on (no workflow is requested before it).
	for page, err := range eventlog.Pages(ctx, e.log, eventlog.FromSnapshot, eventlog.ToID(e.host.next), nil) {
		if err != nil {
			return Status{}, err
		}
		for id, ent := range page.All() {
			if ent.Snapshot != "" {
				e.noteSnapshotLocked(&eventlog.SnapshotRef{SequenceID: id, BlobID: ent.Snapshot})
			}
			if ent.Pending != "" {
				st.Pending = append(st.Pending, PendingWorkflow{id, ent.Pending})
			}
		}
	}
	if s := e.host.newestSnapshot; s != nil {
		r := *s
		st.LastSnapshot = &r
	}
	return st, nil
}
