package spreadsheet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// workerState is the worker's copy of the sheet: the cells after the
// entries before at, built on the snapshot base. Its clean tiles are
// those whose blob in base can be copied as it is. After a snapshot at S
// completes, base and at are both S and every tile is clean.
type workerState struct {
	cells *grid
	at    eventlog.SequenceID
	base  *eventlog.SnapshotRef
	// encs are the encodings of the tiles the last snapshot encoded
	// (tileenc.go), and encBytes the heap they hold.
	encs     map[tileKey]*tileEncoding
	encBytes int64
}

func (w *workerState) footprint() int64 {
	if w.cells == nil {
		return w.encBytes
	}
	return w.cells.bytes + w.encBytes
}

// keepEncodings drops the encodings the next snapshot has no use for:
// those of tiles that are clean (this snapshot copied them, so their
// encoding is older than their blob) or gone, and those beyond
// maxKeptEncodingBytes.
func (w *workerState) keepEncodings() {
	w.encBytes = 0
	for k, enc := range w.encs {
		t := w.cells.tiles[k]
		if t == nil || t != enc.t || t.clean || w.encBytes+enc.bytes() > maxKeptEncodingBytes {
			delete(w.encs, k)
			dropTileEncoding(enc)
			continue
		}
		w.encBytes += enc.bytes()
	}
}

// WorkflowHandler returns a workers.Handler that runs each
// PendingWorkflowMessage on the engine of its sheet.
func WorkflowHandler(engineOf func(ctx context.Context, sheet string) (*Engine, error)) workers.Handler {
	return func(ctx context.Context, m workers.Message) error {
		p, ok := m.(workers.PendingWorkflowMessage)
		if !ok {
			return fmt.Errorf("spreadsheet: unsupported worker message %q", m.MessageType())
		}
		e, err := engineOf(ctx, p.Sheet)
		if err != nil {
			return err
		}
		return e.RunWorkflow(ctx, p.Workflow, p.SequenceID)
	}
}

// RunWorkflow runs the workflow requested at entry id. Only "snapshot"
// exists; any other name is an *UnknownWorkflowError.
func (e *Engine) RunWorkflow(ctx context.Context, workflow string, id eventlog.SequenceID) error {
	if workflow != eventlog.WorkflowSnapshot {
		return &UnknownWorkflowError{Sheet: e.sheet, Workflow: workflow, ID: id}
	}
	return e.RunSnapshot(ctx, id)
}

// RunSnapshot builds the snapshot requested at entry s, holding every
// entry before s, and completes it with one conditional metadata write.
// It is idempotent: once s is complete it does nothing, and two copies
// running at once write the same bytes and only one completion applies.
// After a completion it runs a retention pass (Retire), whose failure is
// logged and tried again later, never returned: the snapshot is done.
func (e *Engine) RunSnapshot(ctx context.Context, s eventlog.SequenceID) error {
	done, err := e.runSnapshot(ctx, s)
	if err != nil || !done {
		return err
	}
	e.retireAfterSnapshot(ctx, s)
	return nil
}

// runSnapshot is RunSnapshot under the worker lock; done reports that the
// snapshot was completed now (by this run or by a copy it raced).
func (e *Engine) runSnapshot(ctx context.Context, s eventlog.SequenceID) (done bool, err error) {
	outcome, started := outcomeNone, time.Time{}
	defer func() { countSnapshot(outcome, err, e.opts.Now().Sub(started)) }()
	if err := e.lockWorker(ctx); err != nil {
		return false, err
	}
	defer e.unlockWorker()
	started = e.opts.Now()

	if requested, err := e.requestedAt(ctx, s); err != nil || !requested {
		return false, err
	}
	if err := e.buildBaseLocked(ctx, s); err != nil {
		return false, err
	}
	encoded, copied, err := e.writeSnapshotLocked(ctx, s)
	if err != nil {
		return false, err
	}
	blobID := strconv.FormatUint(uint64(s), 10)
	applied, err := e.log.SetMetadata(ctx, s, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, blobID))
	if err != nil {
		return false, fmt.Errorf("completing snapshot at %d: %w", s, err)
	}
	// Applied or not (a copy that raced it completed it a moment ago),
	// the snapshot is complete no earlier than now.
	e.retire.noteCompleted(s, e.opts.Now())
	// The snapshot's blobs are written either way; on a lost race the
	// other copy wrote the same bytes. Either way they are the new base.
	w := &e.worker
	w.base = &eventlog.SnapshotRef{SequenceID: s, BlobID: blobID}
	for _, t := range w.cells.tiles {
		t.clean = true
	}
	outcome = outcomeBuilt
	if applied {
		outcome = outcomeWritten
		e.stats.snapshotsWritten.Add(1)
	} else {
		e.stats.completionsNoop.Add(1)
	}
	e.lg.Info("snapshot complete", "seq", uint64(s), "applied", applied,
		"tilesEncoded", encoded, "tilesCopied", copied, "cells", w.cells.cells,
		"ms", e.opts.Now().Sub(started).Milliseconds())
	return true, nil
}

// maxBaseReloads bounds how often a worker looks for its base again after
// the base it chose was retired under it.
const maxBaseReloads = 3

// buildBaseLocked makes the worker state hold the cells before s: the
// newest snapshot before s (loaded unless the worker holds it), then the
// entries up to s. A base retired while it was being read is looked for
// again (a stale request's base may be old enough to go).
func (e *Engine) buildBaseLocked(ctx context.Context, s eventlog.SequenceID) error {
	for attempt := 0; ; attempt++ {
		base, err := e.snapshotBefore(ctx, s)
		if err != nil {
			return err
		}
		err = e.prepareWorkerLocked(ctx, base, s)
		var gone *snapshotGoneError
		if errors.As(err, &gone) && attempt < maxBaseReloads {
			e.stats.snapshotReloads.Add(1)
			continue
		}
		if err != nil {
			return err
		}
		return e.replayWorkerLocked(ctx, s)
	}
}

// requestedAt reads entry s and reports whether a snapshot is still
// pending there.
func (e *Engine) requestedAt(ctx context.Context, s eventlog.SequenceID) (bool, error) {
	page, err := e.log.Query(ctx, eventlog.FromID(s), eventlog.ToID(s+1), nil)
	var re *errs.RangeError
	switch {
	case errors.As(err, &re):
		return false, fmt.Errorf("snapshot at %d: the entry is not in the log: %w", s, err)
	case err != nil:
		return false, err
	case len(page.Entries) == 0:
		return false, errs.Range("snapshot at %d: the entry is not in the log", s)
	}
	if page.Entries[0].Pending != eventlog.WorkflowSnapshot {
		e.stats.completionsNoop.Add(1)
		e.lg.Debug("snapshot already complete or not requested", "seq", uint64(s))
		return false, nil
	}
	return true, nil
}

// snapshotBefore finds the newest snapshot at an id below s (nil: none,
// and then the log must still start at 0).
func (e *Engine) snapshotBefore(ctx context.Context, s eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	// An empty page from the newest snapshot names it without copying a
	// page of entries: with s as the known snapshot, the log names any
	// other newest one in LastSnapshot.
	page, err := e.log.Query(ctx, eventlog.FromSnapshot, eventlog.ToID(0), &s)
	if err != nil {
		return nil, err
	}
	if ref := page.LastSnapshot; ref != nil && ref.SequenceID < s {
		r := *ref
		return &r, nil
	}
	if page.LastSnapshot == nil && page.Start < s {
		// No entry has a snapshot (the newest is not at s, so there is
		// none), so the walk would find none.
		return nil, e.wholeLog(page.Start, s)
	}
	// The newest snapshot is at or after s (s is a stale request that
	// was overtaken): walk the log for the newest one before s. Rare.
	var (
		found *eventlog.SnapshotRef
		start eventlog.SequenceID
		first = true
	)
	for page, err := range eventlog.Pages(ctx, e.log, eventlog.FromStart, eventlog.ToID(s), nil) {
		if err != nil {
			return nil, err
		}
		if first {
			start, first = page.Start, false
		}
		for id, ent := range page.All() {
			if ent.Snapshot != "" {
				found = &eventlog.SnapshotRef{SequenceID: id, BlobID: ent.Snapshot}
			}
		}
	}
	if found != nil {
		return found, nil
	}
	return nil, e.wholeLog(start, s)
}

// wholeLog refuses to build the snapshot at s without a base when the
// log no longer starts at 0: the cells of the truncated entries are gone.
func (e *Engine) wholeLog(start, s eventlog.SequenceID) error {
	if start == 0 {
		return nil
	}
	return &TruncatedLogError{Sheet: e.sheet, ID: s, Start: start}
}

// TruncatedLogError says that the snapshot requested at ID cannot be
// built: no snapshot precedes it and the log starts at Start, so the
// cells of the entries before Start are gone. Retrying cannot help.
type TruncatedLogError struct {
	Sheet     string
	ID, Start eventlog.SequenceID
}

func (e *TruncatedLogError) Error() string {
	return fmt.Sprintf("cannot build the snapshot at %s/%d: the log starts at %d and no snapshot precedes the request", e.Sheet, e.ID, e.Start)
}

// Permanent tells worker pools not to retry.
func (e *TruncatedLogError) Permanent() bool { return true }

// prepareWorkerLocked makes the worker state a descendant of base that is
// not past s, loading base from blobs when the state cannot be reused.
func (e *Engine) prepareWorkerLocked(ctx context.Context, base *eventlog.SnapshotRef, s eventlog.SequenceID) error {
	w := &e.worker
	sameBase := (w.base == nil && base == nil) || (w.base != nil && base != nil && *w.base == *base)
	if w.cells != nil && sameBase && w.at <= s {
		return nil
	}
	*w = workerState{} // drop the old cells before loading the new ones
	g := newGrid(uint32(e.opts.TileWidth), uint32(e.opts.TileHeight))
	at := eventlog.SequenceID(0)
	if base != nil {
		if err := e.readSnapshot(ctx, g, *base, true); err != nil {
			return err
		}
		at = base.SequenceID
	}
	*w = workerState{cells: g, at: at, base: base}
	return nil
}

// replayWorkerLocked applies the entries [w.at, s) to the worker state.
// On failure the state is dropped, to be reloaded from the base next time.
func (e *Engine) replayWorkerLocked(ctx context.Context, s eventlog.SequenceID) error {
	w := &e.worker
	if w.at >= s {
		return nil
	}
	for page, err := range eventlog.Pages(ctx, e.log, eventlog.FromID(w.at), eventlog.ToID(s), nil) {
		if err != nil {
			w.cells = nil
			return err
		}
		for id, ent := range page.All() {
			e.applyBody(w.cells, id, ent.Body)
		}
		w.at = page.End
	}
	if w.at < s {
		w.cells = nil
		return errs.Range("the log ends at %d, before the snapshot at %d", w.at, s)
	}
	return nil
}

// writeSnapshotLocked writes the snapshot directory s: every non-empty
// tile (encoding those changed since the base, copying the others byte for
// byte), then the index.
func (e *Engine) writeSnapshotLocked(ctx context.Context, s eventlog.SequenceID) (encoded, copied int, err error) {
	w := &e.worker
	dir, err := e.root.GetDir(ctx, strconv.FormatUint(uint64(s), 10))
	if err != nil {
		return 0, 0, err
	}
	tiles, err := dir.GetDir(ctx, tilesDir)
	if err != nil {
		return 0, 0, err
	}
	var baseTiles blobstore.BlobDir
	if w.base != nil {
		bd, err := e.root.GetDir(ctx, w.base.BlobID)
		if err != nil {
			return 0, 0, err
		}
		if baseTiles, err = bd.GetDir(ctx, tilesDir); err != nil {
			return 0, 0, err
		}
	}
	type job struct {
		key tileKey
		t   *tile
		enc *tileEncoding // nil: copy the base's blob instead of encoding
	}
	if w.encs == nil {
		w.encs = map[tileKey]*tileEncoding{}
	}
	defer w.keepEncodings()
	jobs := make([]job, 0, len(w.cells.tiles))
	for k, t := range w.cells.tiles {
		j := job{key: k, t: t}
		if t.clean && baseTiles != nil {
			copied++
		} else {
			encoded++
			// Made here, not in the goroutines: they only read the map.
			if j.enc = w.encs[k]; j.enc == nil {
				j.enc = newTileEncoding()
				w.encs[k] = j.enc
			}
		}
		jobs = append(jobs, j)
	}
	err = forEach(ctx, e.opts.WriteConcurrency, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		name := w.cells.tileName(j.key)
		// The snapshot's directory holds only what this writer puts
		// there, so the writes skip the checks of the blob kinds
		// (blobstore.FreshWriter): one request per tile on S3.
		if j.enc == nil {
			e.stats.tilesCopied.Add(1)
			tilesCopied.Inc()
			return blobstore.CopyFresh(ctx, tiles, name, baseTiles, name)
		}
		e.stats.tilesEncoded.Add(1)
		tilesEncoded.Inc()
		// A blob store keeps its own copy of what it is given.
		return blobstore.WriteFresh(ctx, tiles, name, w.cells.encodeKept(j.enc, j.t))
	})
	if err != nil {
		return 0, 0, fmt.Errorf("writing snapshot %d: %w", s, err)
	}
	if err := blobstore.WriteFresh(ctx, dir, indexBlob, w.cells.encodeIndex()); err != nil {
		return 0, 0, fmt.Errorf("writing snapshot %d: %w", s, err)
	}
	return encoded, copied, nil
}

// forEach runs fn for 0..n-1 on up to limit goroutines and returns the
// first error; the others see a cancelled context. The calling goroutine
// is one of them, and each takes the next index from a counter: a
// snapshot of a sheet being filled is a few cheap jobs, for which
// handing indices over a channel to fresh goroutines cost more than the
// jobs.
func forEach(ctx context.Context, limit, n int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	if limit <= 1 || n == 1 {
		for i := 0; i < n; i++ {
			if err := fn(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		once sync.Once
		next atomic.Int64
		ferr error
	)
	work := func() {
		for ctx.Err() == nil {
			i := int(next.Add(1)) - 1
			if i >= n {
				return
			}
			if err := fn(ctx, i); err != nil {
				once.Do(func() { ferr = err; cancel(err) })
			}
		}
	}
	for range min(limit, n) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return ferr
}
