// Package spreadsheet is the engine: it applies cell edits to a sheet's
// event log, serves cell values, decides when a snapshot is due, and runs
// the snapshot workflow. It talks only to the three contracts: an
// eventlog.EventLog, a blobstore.BlobDir (the sheet's root) and a
// workers.WorkerHost, so the same engine runs over memory stores in a
// test, embedded stores on one machine, and DynamoDB and S3 on AWS.
//
// An Engine has two independent roles, each in its own file:
//
//   - host side (host.go: SetCell, Append, AppendBatch, Cell, Range,
//     Counts, Sync, Status): it keeps the cells as of the log's end,
//     appends entries (one, or a batch in one atomic write) with
//     optimistic concurrency, sets pending = "snapshot" on the entry
//     where a snapshot becomes due, and re-sends a request that stays
//     pending too long;
//   - worker side (worker.go: RunWorkflow, WorkflowHandler): it builds
//     the snapshot requested at an entry S from the previous snapshot
//     plus the entries before S, and completes it with one conditional
//     metadata write.
//
// Each role has its own copy of the cells and its own lock; an Engine
// used for one role only pays for that one. The snapshot layout both
// roles read is in snapshot.go, the cells in grid.go.
package spreadsheet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
	DefaultRetain           = 2
	DefaultRetireGrace      = 10 * time.Minute
	// MaxTileSize bounds the tile sizes this engine writes or reads: a
	// tile's cells are keyed by a 32-bit offset.
	MaxTileSize = 1 << 15
)

// Options configure an Engine. The zero value gives the defaults.
type Options struct {
	// SnapshotInterval is N: a snapshot is requested on the first append
	// at least max(N, 2T) entries after the newest snapshot (or the start
	// of the log), where T is the number of non-empty tiles, unless one
	// is still pending. Every snapshot writes or copies each non-empty
	// tile, so growing the interval with the tiles keeps the blob
	// requests per entry at about one, whatever the sheet's size (see
	// cadence.go).
	SnapshotInterval int
	// TileWidth and TileHeight are the tile size of snapshots this
	// engine writes (readers follow each snapshot's own index).
	TileWidth, TileHeight int
	// ResendAfter is how long a requested workflow may stay pending
	// before the host posts it again (hosts with PostMessage only). The
	// host checks by itself, so an idle sheet's lost message is re-sent
	// too; each further re-send waits twice as long, up to 32 times
	// ResendAfter.
	ResendAfter time.Duration
	// WriteConcurrency bounds parallel blob writes of one snapshot.
	WriteConcurrency int
	// Retain is K, the completed snapshots kept by retention (retire.go);
	// 0 means DefaultRetain, RetainAll (negative) keeps every snapshot.
	Retain int
	// RetireGrace is G: a snapshot beyond the newest K is retired only
	// once a newer snapshot completed at least G ago, so that a reader
	// that started loading it has finished. 0 means DefaultRetireGrace;
	// NoGrace (negative) retires as soon as a newer one completes.
	RetireGrace time.Duration
	// TruncateLog truncates the log, after each retention pass, to the
	// oldest snapshot retained. Off by default: the log is the sheet's
	// history.
	TruncateLog bool
	// RetireLater, when set, is how the engine asks for a retention pass
	// at due (or soon after), when one will find more to retire: the
	// deployment calls Retire on an engine of sheet then. A nil
	// RetireLater arms a timer of the engine's own, which Close stops;
	// deployments whose engines do not live that long (a cache that
	// drops them, a Lambda) pass their own scheduler.
	RetireLater func(ctx context.Context, sheet string, due time.Time)
	Logger      *slog.Logger
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
	case o.ResendAfter < 0:
		return o, errs.Validation("resend interval must not be negative")
	}
	if o.Retain == 0 {
		o.Retain = DefaultRetain
	}
	switch {
	case o.RetireGrace == 0:
		o.RetireGrace = DefaultRetireGrace
	case o.RetireGrace < 0:
		o.RetireGrace = 0
	}
	return o, nil
}

// Engine is the engine of one sheet. It is safe for concurrent use.
type Engine struct {
	sheet      string
	log        eventlog.EventLog
	root       blobstore.BlobDir
	workerHost workers.WorkerHost
	opts       Options
	lg         *slog.Logger

	// thin is set for a workers.NoWorkflowsHost: the engine never
	// requests a workflow.
	thin bool

	// hostLock guards host and workerLock guards worker; waiting for
	// them respects a context (ctxLock).
	hostLock   ctxLock
	host       hostState
	workerLock ctxLock
	worker     workerState

	// hostBytes and workerBytes are the roles' footprints as of their
	// last unlock; onFootprint is told after every change.
	hostBytes, workerBytes atomic.Int64
	onFootprint            atomic.Pointer[func(int)]

	// resend is the host's timer for a request that stays pending, of
	// generation resendArmed; closed stops it for good.
	resendMu    sync.Mutex
	resend      *time.Timer
	resendArmed uint64
	closed      bool

	retire retireState

	stats counters
}

// Stats counts the engine's work since New.
type Stats struct {
	// TilesEncoded and TilesCopied count the tile blobs snapshots wrote
	// by encoding a tile, and by copying the base snapshot's blob.
	TilesEncoded, TilesCopied int64
	// SnapshotsWritten counts snapshots this engine completed;
	// CompletionsNoop the runs that found theirs already complete (or
	// lost the race to complete it).
	SnapshotsWritten, CompletionsNoop int64
	// SnapshotsLoaded counts snapshots read from blobs.
	SnapshotsLoaded int64
	// EntriesReplayed counts entries applied from the log (not appends);
	// UnknownEntries those skipped because the engine cannot read them.
	EntriesReplayed, UnknownEntries int64
	// WorkflowsReposted counts requests posted again because they stayed
	// pending.
	WorkflowsReposted int64
	// RetirePasses counts retention passes run (RetireErrors those that
	// failed); SnapshotsRetired the completed snapshots they retired,
	// OrphansRemoved the directories named by no entry they removed;
	// LogTruncations the truncations of the log they made.
	RetirePasses, RetireErrors, SnapshotsRetired, OrphansRemoved, LogTruncations int64
	// SnapshotReloads counts loads started again because a snapshot's
	// blobs went missing under the reader (it was retired meanwhile).
	SnapshotReloads int64
}

// counters is where Stats is counted, from either role.
type counters struct {
	tilesEncoded, tilesCopied, snapshotsWritten, completionsNoop, snapshotsLoaded,
	entriesReplayed, unknownEntries, workflowsReposted atomic.Int64
	retirePasses, retireErrors, snapshotsRetired, orphansRemoved, logTruncations, snapshotReloads atomic.Int64
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
	_, thin := host.(workers.NoWorkflowsHost)
	return &Engine{
		sheet: sheet, log: log, root: root, workerHost: host, opts: o, thin: thin,
		lg: o.Logger.With("sheet", sheet),
	}, nil
}

// Sheet is the id of the engine's sheet.
func (e *Engine) Sheet() string { return e.sheet }

// Stats returns a copy of the engine's counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{
		TilesEncoded: c.tilesEncoded.Load(), TilesCopied: c.tilesCopied.Load(),
		SnapshotsWritten: c.snapshotsWritten.Load(), CompletionsNoop: c.completionsNoop.Load(),
		SnapshotsLoaded: c.snapshotsLoaded.Load(),
		EntriesReplayed: c.entriesReplayed.Load(), UnknownEntries: c.unknownEntries.Load(),
		WorkflowsReposted: c.workflowsReposted.Load(),
		RetirePasses:      c.retirePasses.Load(), RetireErrors: c.retireErrors.Load(),
		SnapshotsRetired: c.snapshotsRetired.Load(), OrphansRemoved: c.orphansRemoved.Load(),
		LogTruncations: c.logTruncations.Load(), SnapshotReloads: c.snapshotReloads.Load(),
	}
}

// Close stops the engine's background work (the host's re-send timer).
// Calls made afterwards still work; a cache closes the engines it drops.
func (e *Engine) Close() {
	e.resendMu.Lock()
	defer e.resendMu.Unlock()
	e.closed = true
	if e.resend != nil {
		e.resend.Stop()
	}
	e.retire.stop()
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

// Permanent tells worker pools not to retry.
func (e *UnknownWorkflowError) Permanent() bool { return true }

// applyBody replays one entry body onto g. Entries this engine cannot
// read are skipped and counted: the log may hold entry types from newer
// writers, and one bad entry must not make a sheet unreadable.
func (e *Engine) applyBody(g *grid, id eventlog.SequenceID, body []byte) {
	ce, err := cell.DecodeEntry(body, cell.Lenient)
	if err != nil {
		e.stats.unknownEntries.Add(1)
		e.lg.Warn("skipping a log entry the engine cannot apply", "seq", uint64(id), "err", err)
		return
	}
	g.apply(ce)
	e.stats.entriesReplayed.Add(1)
}

// engineBytes is the heap an Engine holds with no cells.
const engineBytes = 1024

// Footprint is the heap the engine holds (both roles), as measured after
// its last change, so caches of engines can bound memory as well as
// count. It never waits for a running operation.
func (e *Engine) Footprint() int {
	return engineBytes + int(e.hostBytes.Load()+e.workerBytes.Load())
}

// OnFootprint makes the engine call fn with its Footprint after every
// operation that may have changed it (loading, appending, catching up,
// building a snapshot), outside the engine's locks. A cache of engines
// sets it so that it measures each engine on every path, not only when
// it hands one out. Passing nil removes it.
func (e *Engine) OnFootprint(fn func(bytes int)) {
	if fn == nil {
		e.onFootprint.Store(nil)
		return
	}
	e.onFootprint.Store(&fn)
}

func (e *Engine) reportFootprint() {
	if fn := e.onFootprint.Load(); fn != nil {
		(*fn)(e.Footprint())
	}
}

// lockHost and lockWorker take the host and worker sides. They give up
// when ctx ends, so a call stuck in a storage operation cannot pile up
// waiters that ignore their deadlines. The unlocks measure the role's
// footprint and report it.
func (e *Engine) lockHost(ctx context.Context) error {
	if err := e.hostLock.lock(ctx); err != nil {
		return errs.Storage(err, "sheet %s is busy", e.sheet)
	}
	return nil
}

func (e *Engine) unlockHost() {
	n := e.host.footprint()
	// Only the holder of the lock stores, so a load tells whether it
	// changed; a read changes nothing and pays no atomic swap.
	changed := e.hostBytes.Load() != n
	if changed {
		e.hostBytes.Store(n)
	}
	e.hostLock.unlock()
	if changed {
		e.reportFootprint()
	}
}

func (e *Engine) lockWorker(ctx context.Context) error {
	if err := e.workerLock.lock(ctx); err != nil {
		return errs.Storage(err, "sheet %s is busy with a workflow", e.sheet)
	}
	return nil
}

func (e *Engine) unlockWorker() {
	n := e.worker.footprint()
	changed := e.workerBytes.Swap(n) != n
	e.workerLock.unlock()
	if changed {
		e.reportFootprint()
	}
}
