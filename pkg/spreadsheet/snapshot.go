package spreadsheet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Blob names of the snapshot layout.
const (
	indexBlob = "index"
	tilesDir  = "tiles"
)

// loaded is a sheet state read from the log: the newest snapshot plus
// every entry after it.
type loaded struct {
	cells     *grid
	next      eventlog.SequenceID
	snap      *eventlog.SnapshotRef
	pendingID *eventlog.SequenceID
}

// maxSnapshotReloads bounds how often a load starts again because the
// snapshot it was reading was retired under it. Each new start reads the
// newest snapshot, which is only retired G after a newer one completes.
const maxSnapshotReloads = 3

// loadLatest reads the newest snapshot and replays the log after it. A
// snapshot whose blobs vanish while it is read (it was retired: a reader
// slower than the grace) is given up for the log's newest one.
func (e *Engine) loadLatest(ctx context.Context) (loaded, error) {
	for attempt := 0; ; attempt++ {
		st, err := e.loadLatestOnce(ctx)
		var gone *snapshotGoneError
		if !errors.As(err, &gone) || attempt >= maxSnapshotReloads {
			return st, err
		}
		e.stats.snapshotReloads.Add(1)
		e.lg.Info("a snapshot was retired while it was being loaded; loading the newest one", "blob", gone.blobID)
	}
}

func (e *Engine) loadLatestOnce(ctx context.Context) (loaded, error) {
	st := loaded{cells: newGrid(uint32(e.opts.TileWidth), uint32(e.opts.TileHeight))}
	first := true
	for page, err := range eventlog.Pages(ctx, e.log, eventlog.FromSnapshot, eventlog.ToEnd, nil) {
		if err != nil {
			return loaded{}, err
		}
		if first {
			first = false
			if len(page.Entries) > 0 && page.Entries[0].Snapshot != "" {
				ref := eventlog.SnapshotRef{SequenceID: page.Start, BlobID: page.Entries[0].Snapshot}
				if err := e.readSnapshot(ctx, st.cells, ref, false); err != nil {
					return loaded{}, err
				}
				st.snap = &ref
			} else if page.Start > 0 {
				e.lg.Warn("the log starts after 0 and has no snapshot: entries before it are lost", "start", uint64(page.Start))
			}
		}
		for id, ent := range page.All() {
			if ent.Pending == eventlog.WorkflowSnapshot {
				st.pendingID = &id
			}
			if ent.Snapshot != "" && (st.snap == nil || id > st.snap.SequenceID) {
				// A snapshot newer than the one loaded cannot exist
				// (FromSnapshot starts at the newest), but a concurrent
				// completion may have landed between pages.
				st.snap = &eventlog.SnapshotRef{SequenceID: id, BlobID: ent.Snapshot}
				if st.pendingID != nil && *st.pendingID <= id {
					st.pendingID = nil
				}
			}
			e.applyBody(st.cells, id, ent.Body)
		}
		st.next = page.End
	}
	return st, nil
}

// snapshotGoneError says that a blob of a snapshot was missing while it
// was read: the snapshot was retired meanwhile (or is broken).
type snapshotGoneError struct {
	blobID string
	err    error
}

func (e *snapshotGoneError) Error() string {
	return fmt.Sprintf("snapshot %s is gone: %v", e.blobID, e.err)
}

func (e *snapshotGoneError) Unwrap() error { return e.err }

// goneIfMissing wraps a 404 from reading snapshot blobID.
func goneIfMissing(blobID string, err error) error {
	var se *errs.StorageError
	if errors.As(err, &se) && se.StatusCode == 404 {
		return &snapshotGoneError{blobID: blobID, err: err}
	}
	return err
}

// readSnapshot loads the snapshot ref into g. With check, it marks clean
// every tile whose blob is exactly what this engine would write for it,
// so that the next snapshot may copy it: a tile in another tile format,
// or written by another engine with entries this one leaves out (the
// TypeScript engine's "B1":{} for a cleared cell), is encoded afresh.
func (e *Engine) readSnapshot(ctx context.Context, g *grid, ref eventlog.SnapshotRef, check bool) error {
	if err := blobstore.ValidateName(ref.BlobID); err != nil {
		return errs.Storage(err, "snapshot at %d names a bad blob id", ref.SequenceID)
	}
	dir, err := e.root.GetDir(ctx, ref.BlobID)
	if err != nil {
		return err
	}
	raw, err := dir.ReadBlob(ctx, indexBlob)
	if err != nil {
		return fmt.Errorf("reading the index of snapshot %s: %w", ref.BlobID, goneIfMissing(ref.BlobID, err))
	}
	var idx snapshotIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		return errs.Storage(err, "snapshot %s has a corrupt index", ref.BlobID)
	}
	if idx.TileFormat.Type != "grid" || idx.TileFormat.TileWidth == 0 || idx.TileFormat.TileHeight == 0 ||
		idx.TileFormat.TileWidth > MaxTileSize || idx.TileFormat.TileHeight > MaxTileSize {
		return errs.Storage(nil, "snapshot %s has an unsupported tile format %+v", ref.BlobID, idx.TileFormat)
	}
	g.rowCount, g.colCount = idx.RowCount, idx.ColCount
	check = check && idx.TileFormat.TileWidth == g.tw && idx.TileFormat.TileHeight == g.th
	tiles, err := dir.GetDir(ctx, tilesDir)
	if err != nil {
		return err
	}
	names, err := listBlobs(ctx, tiles)
	if err != nil {
		return err
	}
	// Each tile blob is read and decoded into a grid of its own, in
	// parallel, then adopted by g: decoding is most of a load's work.
	parts := make([]*grid, len(names))
	err = forEach(ctx, e.opts.WriteConcurrency, len(names), func(ctx context.Context, i int) error {
		row0, col0, h, w, err := parseTileName(names[i])
		if err != nil {
			return errs.Storage(err, "snapshot %s", ref.BlobID)
		}
		blob, err := tiles.ReadBlob(ctx, names[i])
		if err != nil {
			return err
		}
		part := newGrid(g.tw, g.th)
		if err := part.decodeTile(blob, row0, col0, h, w); err != nil {
			return errs.Storage(err, "snapshot %s, tile %s", ref.BlobID, names[i])
		}
		if check && h == g.th && w == g.tw && row0%h == 0 && col0%w == 0 {
			// A tile of the grid's own format holds exactly this
			// blob's cells.
			if t := part.tiles[tileKey{row0 / h, col0 / w}]; t != nil {
				t.clean = bytes.Equal(part.encodeTile(make([]byte, 0, len(blob)), t), blob)
			}
		}
		parts[i] = part
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the tiles of snapshot %s: %w", ref.BlobID, goneIfMissing(ref.BlobID, err))
	}
	// Retirement removes the index before any tile, so an index still
	// there after the listing says no tile had gone when it was listed:
	// the listing was whole. (A tile missing from it would otherwise
	// read as empty cells.)
	if err := blobExists(ctx, dir, indexBlob); err != nil {
		return fmt.Errorf("reading snapshot %s: %w", ref.BlobID, goneIfMissing(ref.BlobID, err))
	}
	for _, p := range parts {
		g.adopt(p)
	}
	e.stats.snapshotsLoaded.Add(1)
	return nil
}

// blobExists is nil when dir holds the blob name: one StatBlob where the
// store has it, a read otherwise.
func blobExists(ctx context.Context, dir blobstore.BlobDir, name string) error {
	if st, ok := dir.(blobstore.Stater); ok {
		_, err := st.StatBlob(ctx, name)
		return err
	}
	_, err := dir.ReadBlob(ctx, name)
	return err
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
