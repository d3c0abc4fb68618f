package spreadsheet

// The snapshot cadence. A snapshot writes every non-empty tile of the
// sheet into its own directory: the tiles changed since the previous
// snapshot are encoded, the others copied (server-side on S3, a hard link
// on disk), because readers, the TypeScript engine among them, find every
// tile of a snapshot in that snapshot's directory. So one snapshot costs
// about one blob write per non-empty tile, T, plus a few requests for the
// index, the directories and retention; a worker that did not build the
// previous snapshot itself (a new Lambda instance) first reads it back,
// one more request per tile. Requested every N entries, that is T/N to
// 2T/N requests per entry: 10 to 20 per entry on S3 for a sheet of 1,000
// tiles at N = 100.
//
// The interval therefore grows with the sheet: a snapshot is due after
// max(N, 2T) entries, which keeps the blob requests per entry at about 1
// for a cold worker and 0.5 for a warm one, whatever the sheet's size
// (TestCostS3PerEntry in pkg/blobstore/s3 measures it). T is counted when
// the host last requested a snapshot (or loaded the sheet), not afresh on
// every append: a sheet that gains a tile with every entry (a diagonal)
// would then never be due. With T fixed, the next snapshot writes at most
// T plus the entries since tiles, 1.5 writes per entry even then.
//
// The contract (workers.md) asks for "at least N entries", which this is.
// It costs readers little: a reader replays at most about 2T entries
// after the snapshot, while it reads T tiles of up to thousands of cells
// each to load it.

// tilesPerInterval is the entries the interval grows by per non-empty
// tile.
const tilesPerInterval = 2

// snapshotIntervalLocked is the number of entries after the newest
// snapshot at which the next one is due.
func (e *Engine) snapshotIntervalLocked() int {
	return max(e.opts.SnapshotInterval, tilesPerInterval*e.host.snapTiles)
}
