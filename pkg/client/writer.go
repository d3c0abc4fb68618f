package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Writer appends cell edits to one sheet at the log's next id, for one
// writer among any number, and keeps going when others win: a conflict is
// caught up (the writer reads what the others appended, up to the log's
// end) and retried at the new next id after a jittered backoff. It is not
// safe for concurrent use: one Writer is one writer.
//
// # Fair under contention
//
// Optimistic appends favour whoever learns the next id first: the writer
// that just won knows it at once, a loser only after its conflict and
// its catch-up, so a loser that simply retries keeps losing to the same
// winner. Two rules keep every writer of a hot sheet making progress:
//
//   - a loser's backoff is drawn afresh at each conflict from a range
//     that grows with the number of conflicts in a row (capped), so
//     losers do not retry in lock step;
//   - a writer that has met contention lately (a conflict within its last
//     few appends) waits a random pause before each append, winning ones
//     included, so that a winner on a hot sheet leaves the others a
//     window instead of taking every id in turn. A writer alone on its
//     sheet never waits.
//
// # Never twice
//
// An append whose outcome stayed unknown (a *errs.StorageError from
// Log.AddEntries) is not simply sent again: the next attempt first reads
// the log at the same id to see whether it landed (see Log.AddEntries).
type Writer struct {
	log  *Log
	next eventlog.SequenceID
	// known is the newest snapshot known (0: none).
	known eventlog.SequenceID
	// unsure holds the bodies of an append whose outcome is unknown, at
	// next.
	unsure [][]byte
	// heat counts recent contention: raised by each conflict, lowered by
	// each uncontested append.
	heat int
	// rtt is a moving average of an append's round trip, the unit of
	// the pauses.
	rtt time.Duration

	// CatchUp, when not nil, is given what other writers appended, in
	// order, before the writer appends after it.
	CatchUp func(eventlog.Page) error
	// Stats counts the writer's work.
	Stats WriterStats
}

// WriterStats counts a Writer's appends, conflicts and waits.
type WriterStats struct {
	Appends   int
	Conflicts int
	// MaxConflictsInARow is the longest run of conflicts before an
	// append landed.
	MaxConflictsInARow int
	// Resolved counts appends whose lost reply was settled by reading.
	Resolved int
	Waited   time.Duration
}

// maxHeat caps the contention count; each uncontested append lowers it
// by one, so a writer is calm again a few appends after the others stop.
const maxHeat = 4

// Writer returns a writer of sheet that starts appending at next (the
// log's next id as far as the caller knows; a wrong guess costs one
// conflict).
func (c *Client) Writer(sheet string, next eventlog.SequenceID) *Writer {
	return &Writer{log: c.Log(sheet), next: next}
}

// Next is the id the writer appends at next.
func (w *Writer) Next() eventlog.SequenceID { return w.next }

// Append appends the entries (1 to eventlog.MaxBatch, fitting in one
// request) atomically at the log's next id and returns the id of the
// first. Conflicts are retried until ctx ends; other errors are returned.
// After an error the entries were not appended, except after a
// *errs.StorageError, whose outcome the next call settles first.
func (w *Writer) Append(ctx context.Context, entries ...cell.Entry) (eventlog.SequenceID, error) {
	if len(entries) == 0 || len(entries) > eventlog.MaxBatch {
		return 0, errs.Validation("a batch holds 1 to %d entries, not %d", eventlog.MaxBatch, len(entries))
	}
	es := make([]eventlog.Entry, len(entries))
	bodies := make([][]byte, len(entries))
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return 0, eventlog.BatchEntryError(len(entries), i, err)
		}
		bodies[i] = Canonical(e)
		es[i].Body = bodies[i]
	}
	if w.unsure != nil {
		if err := w.settle(ctx); err != nil {
			return 0, err
		}
	}
	inARow := 0
	for {
		if w.heat > 0 {
			if err := w.pause(ctx); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		last, err := w.log.AddEntries(ctx, w.next, es, &w.known)
		var ce *errs.ConflictError
		switch {
		case err == nil:
			w.learnRTT(time.Since(start))
			if inARow == 0 {
				w.heat = max(0, w.heat-1)
			}
			w.noteSnapshot(last)
			first := w.next
			w.next += eventlog.SequenceID(len(es))
			w.Stats.Appends++
			w.Stats.MaxConflictsInARow = max(w.Stats.MaxConflictsInARow, inARow)
			return first, nil
		case errors.As(err, &ce):
			w.learnRTT(time.Since(start))
			w.Stats.Conflicts++
			inARow++
			w.heat = min(maxHeat, w.heat+1)
			if err := w.catchUp(ctx, eventlog.SequenceID(ce.NextSequenceID)); err != nil {
				return 0, err
			}
			if err := w.wait(ctx, w.backoff(inARow)); err != nil {
				return 0, err
			}
		case errs.TypeOf(err) == errs.TypeStorage && ctx.Err() == nil:
			w.unsure = bodies
			return 0, err
		default:
			if errs.TypeOf(err) == errs.TypeStorage {
				w.unsure = bodies
			}
			return 0, err
		}
	}
}

// settle finds out what became of the append whose outcome was unknown.
func (w *Writer) settle(ctx context.Context) error {
	o, ref, _, err := w.log.resolve(ctx, w.next, w.unsure, &w.known)
	switch o {
	case ours:
		w.Stats.Resolved++
		w.noteSnapshot(ref)
		w.next += eventlog.SequenceID(len(w.unsure))
	case theirs, absent:
	default:
		return err
	}
	w.unsure = nil
	return nil
}

// catchUp reads what others appended from the writer's next id to the
// log's end (at least to next), hands it to CatchUp, and moves the
// writer's next id there.
func (w *Writer) catchUp(ctx context.Context, next eventlog.SequenceID) error {
	if next <= w.next {
		return nil
	}
	for page, err := range eventlog.Pages(ctx, w.log, eventlog.FromID(w.next), eventlog.ToEnd, &w.known) {
		var re *errs.RangeError
		if errors.As(err, &re) {
			// Truncated past us: nothing to catch up with but the id.
			break
		}
		if err != nil {
			return err
		}
		w.noteSnapshot(page.LastSnapshot)
		if w.CatchUp != nil && len(page.Entries) > 0 {
			if err := w.CatchUp(page); err != nil {
				return err
			}
		}
		w.next = max(w.next, page.End)
	}
	w.next = max(w.next, next)
	return nil
}

func (w *Writer) noteSnapshot(r *eventlog.SnapshotRef) {
	if r != nil && r.SequenceID > w.known {
		w.known = r.SequenceID
	}
}

func (w *Writer) learnRTT(d time.Duration) {
	if w.rtt == 0 {
		w.rtt = d
		return
	}
	w.rtt = (7*w.rtt + d) / 8
}

// backoff is the wait after the n-th conflict in a row: a random time
// under a ceiling of n round trips, at most 16.
func (w *Writer) backoff(n int) time.Duration {
	return jitter(time.Duration(min(n, 16)) * max(w.rtt, time.Millisecond))
}

// pause is the wait before an append on a hot sheet: a random time under
// about two round trips.
func (w *Writer) pause(ctx context.Context) error {
	return w.wait(ctx, jitter(2*max(w.rtt, time.Millisecond)))
}

func (w *Writer) wait(ctx context.Context, d time.Duration) error {
	w.Stats.Waited += d
	if err := sleep(ctx, d); err != nil {
		return contextError(ctx, err)
	}
	return nil
}

func jitter(ceil time.Duration) time.Duration {
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil)))
}
