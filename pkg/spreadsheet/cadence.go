package spreadsheet

// The snapshot cadence. A snapshot writes every non-empty tile of the
// sheet into its own directory: the tiles changed since the previous
// snapshot are encoded, the others copied (server-side on S3, a hard link
// on disk), because readers, the TypeScript engine among them, find every
// tile of a snapshot in that snapshot's directory. So one snapshot costs
// about one blob write per non-empty tile, T, plus a few requests for the
// index, the directories and retention. Requested every N entries, that
// is T/N writes per entry: 10 per entry on S3 for a sheet of 1,000 tiles
// at N = 100.
//
// The interval therefore grows with the sheet: a snapshot is due after
// max(N, T) entries, T counted when the host last requested a snapshot
// (or loaded the sheet), which keeps the writes per entry near one at
// every size (measured by TestCostS3PerEntry in pkg/blobstore/s3). T is
// not counted afresh on every append: a sheet that gains a tile with
// every entry (a diagonal) would then never be due. With T fixed, the
// next snapshot writes at most T plus the entries since tiles, so at most
// two writes per entry even then. The contract (workers.md) asks for "at
// least N entries", which this is. It costs readers little: a reader
// replays at most about T entries after the snapshot, while it reads T
// tiles to load it, so the tail is at most about as much work as the
// snapshot itself.

// snapshotIntervalLocked is the number of entries after the newest
// snapshot at which the next one is due.
func (e *Engine) snapshotIntervalLocked() int {
	return max(e.opts.SnapshotInterval, e.host.snapTiles)
}
