package spreadsheet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Retention (snapshot-format.md, "Retention"): snapshots are a cache of
// the log, so only the newest K completed ones are kept. A snapshot S
// beyond them is retired once a newer snapshot completed at least G ago
// (a reader that started loading S before that has had G to finish): the
// snapshot field of entry S is cleared first, so no entry ever names a
// missing snapshot, then the directory S/ goes, its index first (see
// readSnapshot for why). A crash in between leaves a directory named by
// no entry, an orphan, which a later pass removes by the same rule: it
// too is older than a newer snapshot that completed at least G ago. A
// directory whose entry still has pending is a snapshot being built and
// is never touched; nor is the newest snapshot (K is at least 1).
//
// Every step is idempotent and a pass holds no lock another process
// needs, so two passes at once (two workers, a worker and the sweeper)
// do the same work twice and no harm: clearing a cleared field and
// removing a removed directory both succeed.
//
// The clear is unconditional. The only condition SetMetadata offers
// (IfPending) cannot say "pending is absent", and none is needed: a
// completed entry's metadata changes only by retirement (completion is
// conditional on pending, which was cleared when the snapshot was set, and
// pending is only ever set by an append), so the field a pass clears
// either still names the snapshot or was cleared by another pass.
//
// Completion times: the engine records the time of every completion it
// makes; for others (another process, or before a restart) it takes the
// modification time of the snapshot's index blob where the store can tell
// it (blobstore.Stater: S3's LastModified, a file's mtime), since the
// index is the last blob written before the completion, plus a second for
// stores that keep whole seconds. A store that cannot tell leaves the
// engine with the time it first saw the snapshot, which is later than the
// completion, so the grace only lengthens. The log has no times to derive
// them from.
//
// Passes run in the background: after each snapshot the engine completes
// (in the worker, after the completion, never in a request's path), and
// again when a pass leaves snapshots that only their grace protects, at
// the time the first of them may go (Options.RetireLater, or the engine's
// own timer), so that about G after a sheet's last snapshot at most K
// directories remain.

// RetainAll (Options.Retain) keeps every snapshot; NoGrace
// (Options.RetireGrace) retires a snapshot as soon as a newer one
// completes.
const (
	RetainAll = -1
	NoGrace   = time.Duration(-1)
)

// statSlack is added to a modification time read from the store: S3 keeps
// whole seconds, and the index is written a little before the completion.
const statSlack = time.Second

// retireState is the engine's retention bookkeeping, apart from both roles.
type retireState struct {
	mu sync.Mutex
	// running is set while a pass runs; again asks it to run once more
	// (a snapshot completed meanwhile).
	running, again bool
	// completedAt holds the completion times known of completed
	// snapshots, by entry id. A snapshot once completed stays completed
	// until retired, so a time may be trusted as long as it is kept.
	completedAt map[eventlog.SequenceID]time.Time
	// timer is the engine's own timer for the next pass (no
	// RetireLater), due at timerDue; stopped is set by Close.
	timer    *time.Timer
	timerDue time.Time
	stopped  bool
}

func (r *retireState) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
}

// noteCompleted records that the snapshot at s completed at t (a
// completion this engine made or saw made).
func (r *retireState) noteCompleted(s eventlog.SequenceID, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.completedAt == nil {
		r.completedAt = map[eventlog.SequenceID]time.Time{}
	}
	if old, ok := r.completedAt[s]; !ok || t.After(old) {
		r.completedAt[s] = t
	}
}

func (r *retireState) known(s eventlog.SequenceID) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.completedAt[s]
	return t, ok
}

func (r *retireState) forget(s eventlog.SequenceID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.completedAt, s)
}

// keepOnly forgets the completion times of snapshots whose directories
// are gone (retired by another engine), so the map does not grow with
// every snapshot ever seen.
func (r *retireState) keepOnly(dirs []*snapDir) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.completedAt) <= len(dirs) {
		return
	}
	listed := make(map[eventlog.SequenceID]bool, len(dirs))
	for _, d := range dirs {
		listed[d.id] = true
	}
	for s := range r.completedAt {
		if !listed[s] {
			delete(r.completedAt, s)
		}
	}
}

// RetireResult is what one retention pass did.
type RetireResult struct {
	// Retired are the completed snapshots retired; Orphans the
	// directories named by no entry that were removed.
	Retired, Orphans []eventlog.SequenceID
	// Kept are the completed snapshots still there afterwards, oldest
	// first.
	Kept []eventlog.SequenceID
	// Due is when a pass will find more to retire (zero: nothing waits
	// for its grace).
	Due time.Time
	// TruncatedTo is the log's new start when the pass truncated it.
	TruncatedTo *eventlog.SequenceID
}

// Retire runs one retention pass over the sheet's snapshot directories:
// it retires the completed snapshots beyond the newest K whose grace is
// over, removes orphaned directories, truncates the log when
// Options.TruncateLog says so, and asks for the next pass (RetireLater or
// the engine's timer) when some snapshots wait for their grace. A pass
// already running in this engine is asked to run once more instead, and
// the result is then empty. Safe to run at once from several engines and
// processes.
func (e *Engine) Retire(ctx context.Context) (RetireResult, error) {
	if e.opts.Retain < 0 {
		return RetireResult{}, nil
	}
	r := &e.retire
	r.mu.Lock()
	if r.running {
		r.again = true
		r.mu.Unlock()
		return RetireResult{}, nil
	}
	r.running = true
	r.mu.Unlock()
	for {
		e.lg.Debug("retention pass")
		res, err := e.retirePass(ctx)
		e.stats.retirePasses.Add(1)
		e.lg.Debug("retention pass done", "retired", res.Retired, "orphans", res.Orphans, "kept", res.Kept, "err", err)
		if err != nil {
			e.stats.retireErrors.Add(1)
			// Try again after a grace: whatever failed may have passed.
			e.scheduleRetire(ctx, e.opts.Now().Add(max(e.opts.RetireGrace, time.Second)))
		} else if !res.Due.IsZero() {
			e.scheduleRetire(ctx, res.Due)
		}
		r.mu.Lock()
		if !r.again || err != nil || ctx.Err() != nil {
			r.running, r.again = false, false
			r.mu.Unlock()
			return res, err
		}
		r.again = false
		r.mu.Unlock()
	}
}

// retireAfterSnapshot is the pass that follows a completion, in the
// worker that made it. Its failure does not fail the snapshot, which is
// complete: the pass is tried again later.
func (e *Engine) retireAfterSnapshot(ctx context.Context, s eventlog.SequenceID) {
	if e.opts.Retain < 0 {
		return
	}
	res, err := e.Retire(ctx)
	if err != nil {
		e.lg.Warn("snapshot retention failed; it is tried again later", "seq", uint64(s), "err", err)
		return
	}
	if len(res.Retired)+len(res.Orphans) > 0 || res.TruncatedTo != nil {
		args := []any{"seq", uint64(s), "retired", res.Retired, "orphans", res.Orphans, "kept", res.Kept}
		if res.TruncatedTo != nil {
			args = append(args, "logStart", uint64(*res.TruncatedTo))
		}
		e.lg.Info("snapshots retired", args...)
	}
}

// scheduleRetire asks for a pass at due: RetireLater, or the engine's own
// timer (kept at the earliest due asked for).
func (e *Engine) scheduleRetire(ctx context.Context, due time.Time) {
	if e.opts.RetireLater != nil {
		e.opts.RetireLater(ctx, e.sheet, due)
		return
	}
	r := &e.retire
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || (r.timer != nil && !r.timerDue.IsZero() && !due.Before(r.timerDue)) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timerDue = due
	// The timer runs on the real clock; due is on the engine's, which
	// tests replace, so the delay is measured on the engine's.
	r.timer = time.AfterFunc(max(due.Sub(e.opts.Now()), 0), func() {
		r.mu.Lock()
		r.timerDue = time.Time{}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
		defer cancel()
		if _, err := e.Retire(ctx); err != nil {
			e.lg.Warn("snapshot retention failed; it is tried again later", "err", err)
		}
	})
}

// retireTimeout bounds a pass started by the engine's own timer.
const retireTimeout = 5 * time.Minute

// snapDir is one snapshot directory of the sheet's root, by entry id.
type snapDir struct {
	id    eventlog.SequenceID
	name  string
	state dirState
}

type dirState uint8

const (
	// orphan: no entry names the directory (its entry was truncated
	// away, or has neither snapshot nor pending).
	orphan dirState = iota
	// completed: its entry names it as its snapshot.
	completed
	// untouchable: a snapshot being built (its entry has pending), or a
	// directory this pass cannot judge (beyond the log's end, or its
	// entry names another blob).
	untouchable
)

func (e *Engine) retirePass(ctx context.Context) (RetireResult, error) {
	now := e.opts.Now()
	dirs, err := e.snapshotDirs(ctx)
	if err != nil {
		return RetireResult{}, err
	}
	e.retire.keepOnly(dirs)
	if len(dirs) == 0 {
		return RetireResult{}, nil
	}
	first, err := e.logStart(ctx)
	if err != nil {
		return RetireResult{}, err
	}
	if err := e.classify(ctx, dirs, first); err != nil {
		return RetireResult{}, err
	}
	var done []*snapDir // completed, newest first
	for i := len(dirs) - 1; i >= 0; i-- {
		if dirs[i].state == completed {
			done = append(done, dirs[i])
		}
	}
	var res RetireResult
	if len(done) == 0 {
		return res, nil
	}
	// The newest completed snapshot whose grace is over: everything
	// older than it, beyond the newest K, may go. Newest first, so the
	// scan stops at the first one, and reads the times of only the
	// snapshots still in their grace (which stay cached).
	grace := now.Add(-e.opts.RetireGrace)
	type timed struct {
		id eventlog.SequenceID
		t  time.Time
	}
	var (
		oldEnough eventlog.SequenceID
		found     bool
		// inGrace are the completed snapshots newer than oldEnough,
		// whose completion is less than G ago.
		inGrace []timed
	)
	for _, d := range done {
		t, err := e.completionTime(ctx, d, now)
		if err != nil {
			return RetireResult{}, err
		}
		if !t.After(grace) {
			oldEnough, found = d.id, true
			break
		}
		inGrace = append(inGrace, timed{d.id, t})
	}
	keep := map[eventlog.SequenceID]bool{}
	for _, d := range done[:min(e.opts.Retain, len(done))] {
		keep[d.id] = true
	}
	var (
		retire []*snapDir
		// waiting is the oldest directory that goes once the grace of
		// a newer snapshot ends.
		waiting *snapDir
	)
	for _, d := range dirs {
		switch {
		case keep[d.id] || d.state == untouchable:
		case found && d.id < oldEnough:
			retire = append(retire, d)
		case waiting == nil && d.id < done[0].id:
			waiting = d
		}
	}
	retired := map[eventlog.SequenceID]bool{}
	for _, d := range retire {
		if err := e.retireDir(ctx, d); err != nil {
			return res, err
		}
		retired[d.id] = true
		if d.state == completed {
			res.Retired = append(res.Retired, d.id)
		} else {
			res.Orphans = append(res.Orphans, d.id)
		}
	}
	for i := len(done) - 1; i >= 0; i-- {
		if !retired[done[i].id] {
			res.Kept = append(res.Kept, done[i].id)
		}
	}
	if waiting != nil {
		// It goes when the first grace of a snapshot newer than it ends.
		for _, c := range inGrace {
			if c.id > waiting.id && (res.Due.IsZero() || c.t.Add(e.opts.RetireGrace).Before(res.Due)) {
				res.Due = c.t.Add(e.opts.RetireGrace)
			}
		}
	}
	if e.opts.TruncateLog && len(res.Kept) > 0 && res.Kept[0] > first {
		if err := e.log.Truncate(ctx, res.Kept[0]); err != nil {
			var re *errs.RangeError
			if !errors.As(err, &re) { // another pass truncated further
				return res, fmt.Errorf("truncating the log to %d: %w", res.Kept[0], err)
			}
		} else {
			t := res.Kept[0]
			res.TruncatedTo = &t
			e.stats.logTruncations.Add(1)
		}
	}
	return res, nil
}

// snapshotDirs lists the directories of the sheet's root whose names are
// entry ids (the canonical decimal form), oldest first. Anything else in
// the root is not a snapshot and is left alone.
func (e *Engine) snapshotDirs(ctx context.Context) ([]*snapDir, error) {
	var dirs []*snapDir
	token := ""
	for {
		page, err := e.root.Query(ctx, token)
		if err != nil {
			return nil, fmt.Errorf("listing snapshot directories: %w", err)
		}
		for _, name := range page.Dirs {
			// ParseUint takes no sign, so with no leading zero the
			// name is n's canonical form.
			n, err := strconv.ParseUint(name, 10, 64)
			if err == nil && (name[0] != '0' || name == "0") {
				dirs = append(dirs, &snapDir{id: eventlog.SequenceID(n), name: name})
			}
		}
		if page.Continuation == "" {
			break
		}
		token = page.Continuation
	}
	slices.SortFunc(dirs, func(a, b *snapDir) int { return cmp.Compare(a.id, b.id) })
	return dirs, nil
}

// logStart is the log's first id.
func (e *Engine) logStart(ctx context.Context) (eventlog.SequenceID, error) {
	page, err := e.log.Query(ctx, eventlog.FromStart, eventlog.ToID(0), nil)
	if err != nil {
		return 0, err
	}
	return page.Start, nil
}

// classify reads the entry of each directory to tell its state.
// Completed ones this engine already knows are not read again, and are
// told apart before any read starts: after a completion that is every
// directory but a few, and a pass runs after each completion, so
// starting the concurrent reads for them all cost more than the pass's
// real work.
func (e *Engine) classify(ctx context.Context, dirs []*snapDir, first eventlog.SequenceID) error {
	var unknown []*snapDir
	for _, d := range dirs {
		if d.id < first {
			e.retire.forget(d.id)
			d.state = orphan // its entry is gone
		} else if _, ok := e.retire.known(d.id); ok {
			d.state = completed
		} else {
			unknown = append(unknown, d)
		}
	}
	return forEach(ctx, e.opts.WriteConcurrency, len(unknown), func(ctx context.Context, i int) error {
		d := unknown[i]
		page, err := e.log.Query(ctx, eventlog.FromID(d.id), eventlog.ToID(d.id+1), nil)
		var re *errs.RangeError
		switch {
		case errors.As(err, &re):
			d.state = orphan // truncated since logStart
			return nil
		case err != nil:
			return err
		case len(page.Entries) == 0:
			d.state = untouchable // beyond the log's end
			return nil
		}
		ent := page.Entries[0]
		switch {
		case ent.Pending != "":
			d.state = untouchable
		case ent.Snapshot == d.name:
			d.state = completed
		case ent.Snapshot != "":
			d.state = untouchable
		default:
			d.state = orphan // neither snapshot nor pending
		}
		return nil
	})
}

// completionTime is when the snapshot in d completed, as well as the
// engine can tell (see the comment at the top of this file).
func (e *Engine) completionTime(ctx context.Context, d *snapDir, now time.Time) (time.Time, error) {
	if t, ok := e.retire.known(d.id); ok {
		return t, nil
	}
	dir, err := e.root.GetDir(ctx, d.name)
	if err != nil {
		return time.Time{}, err
	}
	st, ok := dir.(blobstore.Stater)
	if !ok {
		// No way to learn when it completed: from now on.
		e.retire.noteCompleted(d.id, now)
		return now, nil
	}
	info, err := st.StatBlob(ctx, indexBlob)
	if err != nil {
		var se *errs.StorageError
		if errors.As(err, &se) && se.StatusCode == 404 {
			// A completed snapshot without its index is broken or
			// being retired by another pass: it justifies nothing.
			e.lg.Warn("a completed snapshot has no index", "seq", uint64(d.id))
			return now, nil
		}
		return time.Time{}, err
	}
	t := info.ModTime.Add(statSlack)
	e.retire.noteCompleted(d.id, t)
	return t, nil
}

// retireDir retires one directory: it clears the snapshot field of a
// completed one, then removes the index and the rest.
func (e *Engine) retireDir(ctx context.Context, d *snapDir) error {
	if d.state == completed {
		_, err := e.log.SetMetadata(ctx, d.id, eventlog.MetadataUpdate{Snapshot: eventlog.Clear()})
		var re *errs.RangeError
		if err != nil && !errors.As(err, &re) { // truncated: nothing names it
			return fmt.Errorf("retiring snapshot %d: %w", d.id, err)
		}
	}
	e.retire.forget(d.id)
	dir, err := e.root.GetDir(ctx, d.name)
	if err != nil {
		return err
	}
	// The index goes first: a reader that finds it after listing the
	// tiles knows the listing was whole (readSnapshot).
	if err := dir.RemoveBlob(ctx, indexBlob); err != nil {
		return fmt.Errorf("removing snapshot %d: %w", d.id, err)
	}
	if err := dir.RemoveAll(ctx); err != nil {
		return fmt.Errorf("removing snapshot %d: %w", d.id, err)
	}
	if d.state == completed {
		e.stats.snapshotsRetired.Add(1)
	} else {
		e.stats.orphansRemoved.Add(1)
	}
	return nil
}
