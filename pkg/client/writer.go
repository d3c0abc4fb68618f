package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sheetlog/sheetlog/internal/ctxsleep"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Writer appends cell edits to one sheet at the log's next id, for one
// writer among any number, and keeps going when others win: a conflict is
// caught up with and retried at the 409's next id after a jittered
// backoff. Catching up means learning the next id, and, when CatchUp is
// set (a writer that keeps a view of the sheet), reading what the others
// appended up to the log's end first. It is not safe for concurrent use:
// one Writer is one writer.
//
// # Fair under contention
//
// Optimistic appends favour whoever learns the next id first: the writer
// that just won knows it at once, a loser only after its conflict, so a
// loser that backs off longer and longer, as exponential backoff would
// have it, keeps losing to the same winners and starves. Instead:
//
//   - every writer that has met contention lately (a conflict within its
//     last few appends) waits a random time before each append, winning
//     ones included, so that a winner on a hot sheet leaves the others a
//     window instead of taking every id in turn; the window is about as
//     many round trips as there are writers contending (estimated from
//     the attempts its appends take), so attempts spread out instead of
//     arriving together;
//   - that window does not grow with a writer's losses; it shrinks, down
//     to a quarter, for a writer that has lost many times in a row, so
//     the writer that has waited longest is the likeliest to win next.
//     The window is in round trips, so it widens when the deployment
//     slows down: that is the backoff that keeps a hot sheet from being
//     hammered.
//
// A writer alone on its sheet never waits.
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
	// tries is a moving average of the attempts an append takes: about
	// the number of writers contending for each id.
	tries float64

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
			if err := w.wait(ctx, w.window(inARow)); err != nil {
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
			w.tries = (3*max(w.tries, 1) + float64(1+inARow)) / 4
			return first, nil
		case errors.As(err, &ce):
			w.learnRTT(time.Since(start))
			w.Stats.Conflicts++
			inARow++
			w.heat = maxHeat
			if err := w.catchUp(ctx, eventlog.SequenceID(ce.NextSequenceID)); err != nil {
				return 0, err
			}
		default:
			if errs.TypeOf(err) == errs.TypeStorage {
				// The outcome is unknown: the next call reads the log
				// at this id before it appends anything.
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
	if w.CatchUp == nil {
		// A writer with no view of the sheet has nothing to read: the
		// next id is all it needs.
		w.next = next
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

// window is the random wait before an append on a hot sheet, after
// losses conflicts in a row: spread over about as many round trips as
// there are writers contending (the attempts an append has been taking,
// at most 16), so that about one attempt arrives per round trip, and
// shrinking to a quarter for a writer that keeps losing.
func (w *Writer) window(losses int) time.Duration {
	rtt := max(w.rtt, time.Millisecond)
	spread := min(max(w.tries, 1), 16)
	return jitter(time.Duration(spread*float64(rtt)) / time.Duration(1+min(losses, 6)/2))
}

func (w *Writer) wait(ctx context.Context, d time.Duration) error {
	w.Stats.Waited += d
	if err := ctxsleep.Sleep(ctx, d); err != nil {
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
