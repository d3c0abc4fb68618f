package spreadsheet

import (
	"bytes"
	"context"
	"encoding/json"
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

// loadLatest reads the newest snapshot and replays the log after it.
func (e *Engine) loadLatest(ctx context.Context) (loaded, error) {
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
		return fmt.Errorf("reading the index of snapshot %s: %w", ref.BlobID, err)
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
	blobs := make([][]byte, len(names))
	err = forEach(ctx, e.opts.WriteConcurrency, len(names), func(ctx context.Context, i int) error {
		var err error
		blobs[i], err = tiles.ReadBlob(ctx, names[i])
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the tiles of snapshot %s: %w", ref.BlobID, err)
	}
	var buf []byte
	for i, name := range names {
		row0, col0, h, w, err := parseTileName(name)
		if err != nil {
			return errs.Storage(err, "snapshot %s", ref.BlobID)
		}
		if err := g.decodeTile(blobs[i], row0, col0, h, w); err != nil {
			return errs.Storage(err, "snapshot %s, tile %s", ref.BlobID, name)
		}
		if check && h == g.th && w == g.tw && row0%h == 0 && col0%w == 0 {
			// Tiles of the grid's own format never overlap, so the tile
			// holds exactly this blob's cells.
			if t := g.tiles[tileKey{row0 / h, col0 / w}]; t != nil {
				buf = encodeTile(buf[:0], t)
				t.clean = bytes.Equal(buf, blobs[i])
			}
		}
		blobs[i] = nil // the cells hold what they need
	}
	e.stats.snapshotsLoaded.Add(1)
	return nil
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
