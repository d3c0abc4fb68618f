package spreadsheet

import (
	"time"

	"github.com/sheetlog/sheetlog/pkg/metrics"
)

// The engine's metrics, counted here in every deployment (see
// docs/operations.md). Process-wide: no sheet id is a label.
var (
	appendedEntries = metrics.NewCounter("sheetlog_appended_entries_total",
		"Entries appended to event logs through the engine (every entry of a batch counts).")
	appendConflicts = metrics.NewCounter("sheetlog_append_conflicts_total",
		"Appends refused because their sequence id was not the log's next one (a 409 ConflictError for a client).")
	snapshotRuns = metrics.NewCounterVec("sheetlog_snapshots_total",
		"Snapshot workflow runs by result: written (this run completed the snapshot), noop (already complete, or another run completed it first), failed (an error; the run is retried).",
		"result")
	snapshotDuration = metrics.NewHistogram("sheetlog_snapshot_duration_seconds",
		"Time a snapshot run took to build the snapshot's blobs and complete it in the log, for runs that got that far (written, or completed by another run meanwhile).")
	snapshotTiles = metrics.NewCounterVec("sheetlog_snapshot_tiles_total",
		"Tile blobs written by snapshots: encoded (changed since the base snapshot) or copied byte for byte from the base.",
		"how")

	snapshotsWritten = snapshotRuns.With("written")
	snapshotsNoop    = snapshotRuns.With("noop")
	snapshotsFailed  = snapshotRuns.With("failed")
	tilesEncoded     = snapshotTiles.With("encoded")
	tilesCopied      = snapshotTiles.With("copied")
)

// snapshotOutcome is how a snapshot run ended, for the metrics.
type snapshotOutcome uint8

const (
	outcomeNone    snapshotOutcome = iota // nothing to do: already complete
	outcomeBuilt                          // built, and lost the race to complete it
	outcomeWritten                        // built and completed
)

// countSnapshot counts one run of RunSnapshot.
func countSnapshot(o snapshotOutcome, err error, took time.Duration) {
	switch {
	case err != nil:
		snapshotsFailed.Inc()
	case o == outcomeWritten:
		snapshotsWritten.Inc()
	default:
		snapshotsNoop.Inc()
	}
	if err == nil && o != outcomeNone {
		snapshotDuration.Observe(took)
	}
}
