package spreadsheet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// Blob names of the snapshot layout.
const (
	indexBlob = "index"
	tilesDir  = "tiles"
)

// loaded is a sheet state read from the log: the newest snapshot plus the
// entries after it, up to upTo (or the end).
type loaded struct {
	cells     *grid
	next      eventlog.SequenceID
	snap      *eventlog.SnapshotRef
	pendingID *eventlog.SequenceID
}

// loadLatest reads the newest snapshot and replays the log after it.
func loadLatest(ctx context.Context, e *Engine, trackDirty bool) (loaded, error) {
	page, err := e.log.Query(ctx, eventlog.FromSnapshot, eventlog.ToEnd, nil)
	if err != nil {
		return loaded{}, err
	}
	st := loaded{cells: newGrid(uint32(e.opts.TileWidth), uint32(e.opts.TileHeight), trackDirty)}
	if len(page.Entries) > 0 && page.Entries[0].Snapshot != "" {
		ref := eventlog.SnapshotRef{SequenceID: page.Start, BlobID: page.Entries[0].Snapshot}
		if _, err := readSnapshot(ctx, e, st.cells, ref); err != nil {
			return loaded{}, err
		}
		st.snap = &ref
	} else if page.Start > 0 {
		e.lg.Warn("the log starts after 0 and has no snapshot: entries before it are lost", "start", uint64(page.Start))
	}
	for {
		for i, ent := range page.Entries {
			id := page.Start + eventlog.SequenceID(i)
			if ent.Pending == eventlog.WorkflowSnapshot {
				st.pendingID = &id
			}
			if ent.Snapshot != "" && id != page.Start {
				// A snapshot newer than the one loaded cannot exist
				// (FromSnapshot starts at the newest), but a concurrent
				// completion may have landed between pages.
				st.snap = &eventlog.SnapshotRef{SequenceID: id, BlobID: ent.Snapshot}
				if st.pendingID != nil && *st.pendingID <= id {
					st.pendingID = nil
				}
			}
			applyBody(e, st.cells, id, ent.Body)
		}
		st.next = page.End
		if page.Complete {
			break
		}
		if page, err = e.log.Query(ctx, eventlog.FromID(page.End), eventlog.ToEnd, nil); err != nil {
			return loaded{}, err
		}
	}
	if trackDirty {
		clear(st.cells.dirty)
	}
	return st, nil
}

// readSnapshot loads the snapshot ref into g and returns the names of the
// tile blobs it holds (nil when its tile format differs from g's, since
// those tiles cannot be carried over).
func readSnapshot(ctx context.Context, e *Engine, g *grid, ref eventlog.SnapshotRef) (map[tileKey]string, error) {
	if err := blobstore.ValidateName(ref.BlobID); err != nil {
		return nil, errs.Storage(err, "snapshot at %d names a bad blob id", ref.SequenceID)
	}
	dir, err := e.root.GetDir(ctx, ref.BlobID)
	if err != nil {
		return nil, err
	}
	raw, err := dir.ReadBlob(ctx, indexBlob)
	if err != nil {
		return nil, fmt.Errorf("reading the index of snapshot %s: %w", ref.BlobID, err)
	}
	var idx snapshotIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, errs.Storage(err, "snapshot %s has a corrupt index", ref.BlobID)
	}
	if idx.TileFormat.Type != "grid" || idx.TileFormat.TileWidth == 0 || idx.TileFormat.TileHeight == 0 ||
		idx.TileFormat.TileWidth > MaxTileSize || idx.TileFormat.TileHeight > MaxTileSize {
		return nil, errs.Storage(nil, "snapshot %s has an unsupported tile format %+v", ref.BlobID, idx.TileFormat)
	}
	g.rowCount, g.colCount = idx.RowCount, idx.ColCount
	same := idx.TileFormat.TileWidth == g.tw && idx.TileFormat.TileHeight == g.th
	var present map[tileKey]string
	if same {
		present = map[tileKey]string{}
	}
	tiles, err := dir.GetDir(ctx, tilesDir)
	if err != nil {
		return nil, err
	}
	names, err := listBlobs(ctx, tiles)
	if err != nil {
		return nil, err
	}
	type read struct {
		name string
		data []byte
	}
	results := make([]read, len(names))
	err = forEach(ctx, e.opts.WriteConcurrency, len(names), func(ctx context.Context, i int) error {
		b, err := tiles.ReadBlob(ctx, names[i])
		results[i] = read{names[i], b}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the tiles of snapshot %s: %w", ref.BlobID, err)
	}
	for _, r := range results {
		row0, col0, h, w, err := parseTileName(r.name)
		if err != nil {
			return nil, errs.Storage(err, "snapshot %s", ref.BlobID)
		}
		if err := g.decodeTile(r.data, row0, col0, h, w); err != nil {
			return nil, errs.Storage(err, "snapshot %s, tile %s", ref.BlobID, r.name)
		}
		if same && h == g.th && w == g.tw && row0%h == 0 && col0%w == 0 {
			present[tileKey{row0 / h, col0 / w}] = r.name
		}
	}
	e.stats.SnapshotsLoaded.Add(1)
	return present, nil
}

func listBlobs(ctx context.Context, dir blobstore.BlobDir) ([]string, error) {
	var names []string
	token := ""
	for {
		page, err := dir.Query(ctx, token)
		if err != nil {
			return nil, err
		}
		names = append(names, page.Blobs...)
		if page.Continuation == "" {
			return names, nil
		}
		token = page.Continuation
	}
}

// workerState is the worker's copy of the sheet: the cells as of at,
// built on the snapshot base, with the tiles changed since base marked
// dirty. After a snapshot at S completes, base and at are both S.
type workerState struct {
	cells *grid
	at    eventlog.SequenceID
	base  *eventlog.SnapshotRef
	// baseTiles are the tile blobs of base that can be copied as they
	// are; nil forces every tile to be encoded.
	baseTiles map[tileKey]string
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
func (e *Engine) RunSnapshot(ctx context.Context, s eventlog.SequenceID) error {
	if err := e.wlock(ctx); err != nil {
		return err
	}
	defer e.wunlock()
	started := e.opts.Now()

	page, err := e.log.Query(ctx, eventlog.FromID(s), eventlog.ToID(s+1), nil)
	var re *errs.RangeError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("snapshot at %d: the entry is not in the log: %w", s, err)
	case err != nil:
		return err
	case len(page.Entries) == 0:
		return errs.Range("snapshot at %d: the entry is not in the log", s)
	}
	if page.Entries[0].Pending != eventlog.WorkflowSnapshot {
		e.stats.CompletionsNoop.Add(1)
		e.lg.Debug("snapshot already complete or not requested", "seq", uint64(s))
		return nil
	}

	base, err := e.snapshotBefore(ctx, s)
	if err != nil {
		return err
	}
	if err := e.prepareWorkerLocked(ctx, base, s); err != nil {
		return err
	}
	if err := e.replayWorkerLocked(ctx, s); err != nil {
		return err
	}
	encoded, copied, err := e.writeSnapshotLocked(ctx, s)
	if err != nil {
		return err
	}
	blobID := strconv.FormatUint(uint64(s), 10)
	applied, err := e.log.SetMetadata(ctx, s, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, blobID))
	if err != nil {
		return fmt.Errorf("completing snapshot at %d: %w", s, err)
	}
	// The snapshot's blobs are written either way; on a lost race the
	// other copy wrote the same bytes.
	w := &e.w
	w.base = &eventlog.SnapshotRef{SequenceID: s, BlobID: blobID}
	w.baseTiles = make(map[tileKey]string, len(w.cells.tiles))
	for k := range w.cells.tiles {
		w.baseTiles[k] = w.cells.tileName(k)
	}
	clear(w.cells.dirty)
	if applied {
		e.stats.SnapshotsWritten.Add(1)
	} else {
		e.stats.CompletionsNoop.Add(1)
	}
	e.lg.Info("snapshot complete", "seq", uint64(s), "applied", applied,
		"tilesEncoded", encoded, "tilesCopied", copied, "cells", w.cells.cells,
		"ms", e.opts.Now().Sub(started).Milliseconds())
	return nil
}

// snapshotBefore finds the newest snapshot at an id below s (nil: none).
func (e *Engine) snapshotBefore(ctx context.Context, s eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	page, err := e.log.Query(ctx, eventlog.FromSnapshot, eventlog.ToID(s), nil)
	if err != nil {
		return nil, err
	}
	if page.Start < s {
		if len(page.Entries) > 0 && page.Entries[0].Snapshot != "" {
			return &eventlog.SnapshotRef{SequenceID: page.Start, BlobID: page.Entries[0].Snapshot}, nil
		}
		return nil, e.checkWholeLog(ctx, page.Start)
	}
	// The newest snapshot is at or after s (s is a stale request that
	// was overtaken): walk the log for the newest one before s. Rare.
	var found *eventlog.SnapshotRef
	from := eventlog.FromStart
	for {
		page, err := e.log.Query(ctx, from, eventlog.ToID(s), nil)
		if err != nil {
			return nil, err
		}
		if found == nil && page.Start > 0 && len(page.Entries) > 0 && page.Entries[0].Snapshot == "" {
			if err := e.checkWholeLog(ctx, page.Start); err != nil {
				return nil, err
			}
		}
		for i, ent := range page.Entries {
			if ent.Snapshot != "" {
				found = &eventlog.SnapshotRef{SequenceID: page.Start + eventlog.SequenceID(i), BlobID: ent.Snapshot}
			}
		}
		if page.Complete {
			return found, nil
		}
		from = eventlog.FromID(page.End)
	}
}

// checkWholeLog refuses to build a snapshot without a base when the log
// no longer starts at 0: the cells of the truncated entries are gone.
func (e *Engine) checkWholeLog(_ context.Context, start eventlog.SequenceID) error {
	if start == 0 {
		return nil
	}
	return errs.Storage(nil, "cannot build a complete snapshot: the log starts at %d and no snapshot precedes the request", start)
}

// prepareWorkerLocked makes the worker state a descendant of base that is
// not past s, loading base from blobs when the state cannot be reused.
func (e *Engine) prepareWorkerLocked(ctx context.Context, base *eventlog.SnapshotRef, s eventlog.SequenceID) error {
	w := &e.w
	sameBase := (w.base == nil && base == nil) || (w.base != nil && base != nil && *w.base == *base)
	if w.cells != nil && sameBase && w.at <= s {
		return nil
	}
	g := newGrid(uint32(e.opts.TileWidth), uint32(e.opts.TileHeight), true)
	var present map[tileKey]string
	at := eventlog.SequenceID(0)
	if base != nil {
		var err error
		if present, err = readSnapshot(ctx, e, g, *base); err != nil {
			return err
		}
		at = base.SequenceID
	}
	clear(g.dirty)
	*w = workerState{cells: g, at: at, base: base, baseTiles: present}
	return nil
}

// replayWorkerLocked applies the entries [w.at, s) to the worker state.
func (e *Engine) replayWorkerLocked(ctx context.Context, s eventlog.SequenceID) error {
	w := &e.w
	for w.at < s {
		page, err := e.log.Query(ctx, eventlog.FromID(w.at), eventlog.ToID(s), nil)
		if err != nil {
			w.cells = nil // force a reload from the base next time
			return err
		}
		for i, ent := range page.Entries {
			applyBody(e, w.cells, page.Start+eventlog.SequenceID(i), ent.Body)
		}
		w.at = page.End
		if page.Complete && w.at < s {
			w.cells = nil
			return errs.Range("the log ends at %d, before the snapshot at %d", w.at, s)
		}
	}
	return nil
}

// writeSnapshotLocked writes the snapshot directory s: every non-empty
// tile (encoding those changed since the base, copying the others byte for
// byte), then the index.
func (e *Engine) writeSnapshotLocked(ctx context.Context, s eventlog.SequenceID) (encoded, copied int, err error) {
	w := &e.w
	name := strconv.FormatUint(uint64(s), 10)
	dir, err := e.root.GetDir(ctx, name)
	if err != nil {
		return 0, 0, err
	}
	tiles, err := dir.GetDir(ctx, tilesDir)
	if err != nil {
		return 0, 0, err
	}
	var baseTilesDir blobstore.BlobDir
	if w.base != nil && w.baseTiles != nil {
		bd, err := e.root.GetDir(ctx, w.base.BlobID)
		if err != nil {
			return 0, 0, err
		}
		if baseTilesDir, err = bd.GetDir(ctx, tilesDir); err != nil {
			return 0, 0, err
		}
	}
	type job struct {
		key  tileKey
		from string // base tile blob to copy; "" to encode
	}
	jobs := make([]job, 0, len(w.cells.tiles))
	for k := range w.cells.tiles {
		j := job{key: k}
		if _, dirty := w.cells.dirty[k]; !dirty && baseTilesDir != nil {
			j.from = w.baseTiles[k]
		}
		if j.from == "" {
			encoded++
		} else {
			copied++
		}
		jobs = append(jobs, j)
	}
	err = forEach(ctx, e.opts.WriteConcurrency, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		dst := w.cells.tileName(j.key)
		if j.from != "" {
			e.stats.TilesCopied.Add(1)
			return blobstore.Copy(ctx, tiles, dst, baseTilesDir, j.from)
		}
		e.stats.TilesEncoded.Add(1)
		return tiles.WriteBlob(ctx, dst, w.cells.encodeTile(nil, w.cells.tiles[j.key]))
	})
	if err != nil {
		return 0, 0, fmt.Errorf("writing snapshot %d: %w", s, err)
	}
	if err := dir.WriteBlob(ctx, indexBlob, w.cells.encodeIndex()); err != nil {
		return 0, 0, fmt.Errorf("writing snapshot %d: %w", s, err)
	}
	return encoded, copied, nil
}

// forEach runs fn for 0..n-1 on up to limit goroutines and returns the
// first error; the others see a cancelled context.
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
		next = make(chan int)
		ferr error
	)
	for range min(limit, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { ferr = err; cancel(err) })
				}
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return ferr
}
