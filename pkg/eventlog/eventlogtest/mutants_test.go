package eventlogtest

// The suite is tested by running it against deliberately broken logs,
// each in a child process (a failing suite cannot be observed from inside
// the test that runs it): every mutant must make the suite fail.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

const mutantEnv = "EVENTLOGTEST_MUTANT"

// mutant wraps the reference log and breaks one rule.
type mutant struct {
	*memory.Log
	name string

	// writeMu serializes the appends of batchVisibleHalfway.
	writeMu  sync.Mutex
	mu       sync.Mutex
	maxSnap  *eventlog.SequenceID // staleSnapshotCache
	cache    map[string]eventlog.Page
	reads    int
	appended atomic.Int64
}

// mutants names each mutant, the part of the suite run against it (a
// -test.run pattern below TestMutantSuite; "" for the whole suite) and the
// subtest that must catch it: under -test.failfast, the first one to fail
// (a regular expression matching its whole path below TestMutantSuite).
// Most are run against the whole suite, where the first subtest to fail is
// the one that checks the broken rule most directly; some only against
// the concurrent tests, the linearizability check or the property test,
// to show that those catch them on their own.
var mutants = []struct{ name, only, caughtBy string }{
	{"appendTooHigh", "", "EmptyLog/AddEntry"},
	{"conflictWrongNext", "", "EmptyLog/AddEntry"},
	{"validationAfterConflict", "", "AppendValidation/Empty"},
	{"dropSnapshotOnAppend", "", "AppendWithMetadata"},
	{"phantomAppend", "", "Query/Paging"},
	{"ignoreIfPending", "", "Metadata/Conditional"},
	{"notAppliedSaysApplied", "", "Metadata/Conditional"},
	{"clearIgnored", "", "Metadata/ClearEachField"},
	{"lastSnapshotWhenEqual", "", "AppendWithMetadata"},
	{"ignoreContext", "", "Context/Cancelled"},
	{"startAtNextIsRangeError", "", "EmptyLog/Queries"},
	{"endNotClamped", "", "EmptyLog/Queries"},
	{"completeLies", "", "Append"},
	{"truncateAtNextRefused", "", "Truncate/AtNext"},
	{"truncateBeyondNextClamps", "", "EmptyLog/Truncate"},
	{"truncateOffByOne", "", "EmptyLog/Truncate"},
	{"staleSnapshotCache", "", "Snapshots/NewestCleared"},
	{"lostRaceAcked", "", "EmptyLog/AddEntry"},
	{"batchPartial", "", "AppendBatch/BadEntryAtEveryPosition"},
	{"batchVisibleHalfway", "", "BatchReaders"},
	{"batchConflictFirstOnly", "", "BatchRace"},
	{"batchLosesPending", "", "AppendBatch/Pending"},
	{"batchTwoPendings", "", "AppendBatch/Pending"},
	{"batchLimitOff", "", "AppendBatch/SizeRefused"},
	{"batchOwnSnapshotIgnored", "", "AppendBatch/Metadata"},
	{"phantomAppend", "ConcurrentAppenders", "ConcurrentAppenders"},
	{"lostRaceAcked", "ConcurrentAppenders", "ConcurrentAppenders"},
	{"laggingReads", "Linearizability", `Linearizability/History\d+`},
	{"lostRaceAcked", "Linearizability", `Linearizability/History\d+`},
	{"batchVisibleHalfway", "Linearizability", `Linearizability/History\d+`},
	{"batchConflictFirstOnly", "Linearizability", `Linearizability/History\d+`},
	{"ignoreIfPending", "Property", "Property"},
	{"staleSnapshotCache", "Property", "Property"},
	{"truncateAtNextRefused", "Property", "Property"},
	{"lastSnapshotWhenEqual", "Property", "Property"},
	{"endNotClamped", "Property", "Property"},
	{"truncateOffByOne", "Property", "Property"},
	{"batchPartial", "Property", "Property"},
	{"batchLosesPending", "Property", "Property"},
	{"batchTwoPendings", "Property", "Property"},
	{"batchLimitOff", "Property", "Property"},
	{"batchOwnSnapshotIgnored", "Property", "Property"},
}

func TestMutantsAreCaught(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		return // this is a child process
	}
	failLine := regexp.MustCompile(`--- FAIL: (TestMutantSuite/\S+)`)
	for _, m := range mutants {
		name := m.name
		if m.only != "" {
			name += "_in" + m.only
		}
		t.Run(name, func(t *testing.T) {
			run := "^TestMutantSuite$"
			if m.only != "" {
				run += "/^" + m.only + "$"
			}
			// A property test finds these bugs in nearly every run of 100
			// sequences; 1,000 make a miss vanishingly rare, and cost
			// nothing when the bug is found early.
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.failfast", "-test.count=1", "-test.timeout=3m",
				"-rapid.nofailfile", "-rapid.shrinktime=1ms", "-rapid.checks=1000")
			// Visualizations of failed histories go to a directory that
			// is removed afterwards.
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name, "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite did not catch mutant %s (err %v):\n%s", m.name, err, out)
			}
			all := failLine.FindAllSubmatch(out, -1)
			if len(all) == 0 || bytes.Contains(out, []byte("panic:")) {
				t.Fatalf("the suite crashed on mutant %s instead of failing a test:\n%s", m.name, out)
			}
			// Failures are reported parent first, so the last line names
			// the innermost subtest that failed; -failfast stopped the
			// suite there.
			caught := string(all[len(all)-1][1])
			want := regexp.MustCompile("^TestMutantSuite/(" + m.caughtBy + ")$")
			if !want.MatchString(caught) {
				t.Fatalf("mutant %s was caught by %s, want %s:\n%s", m.name, caught, m.caughtBy, out)
			}
			t.Logf("caught by %s", caught)
		})
	}
}

func TestMutantSuite(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		return // only run as a child of TestMutantsAreCaught
	}
	Run(t, func(*testing.T) eventlog.EventLog {
		return &mutant{Log: memory.New(memory.Options{PageSize: 2}), name: name, cache: map[string]eventlog.Page{}}
	})
}

// bounds pages through the log to find its first and next ids. A
// concurrent Truncate can make a page's continuation fall before the new
// start (a RangeError); the walk then starts over rather than spin on the
// zero page the error comes with.
func (m *mutant) bounds(ctx context.Context) (first, next eventlog.SequenceID) {
	for ctx.Err() == nil {
		p, err := m.Log.Query(ctx, eventlog.FromStart, eventlog.ToEnd, nil)
		first = p.Start
		for err == nil && !p.Complete {
			p, err = m.Log.Query(ctx, eventlog.FromID(p.End), eventlog.ToEnd, nil)
		}
		if err == nil {
			return first, p.End
		}
	}
	return first, next
}

func (m *mutant) newest(ctx context.Context) *eventlog.SnapshotRef {
	p, _ := m.Log.Query(ctx, eventlog.FromSnapshot, eventlog.ToEnd, nil)
	if len(p.Entries) == 0 || p.Entries[0].Snapshot == "" {
		return nil
	}
	return &eventlog.SnapshotRef{SequenceID: p.Start, BlobID: p.Entries[0].Snapshot}
}

func (m *mutant) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	switch m.name {
	case "batchVisibleHalfway":
		m.writeMu.Lock()
		defer m.writeMu.Unlock()
	case "ignoreContext":
		ctx = context.Background()
	case "dropSnapshotOnAppend":
		e.Snapshot = ""
	case "validationAfterConflict":
		if _, next := m.bounds(ctx); id != next {
			return nil, errs.Conflict(uint64(id), uint64(next))
		}
	case "appendTooHigh":
		if _, next := m.bounds(ctx); id > next {
			id = next
		}
	}
	last, err := m.Log.AddEntry(ctx, id, e, known)
	var c *errs.ConflictError
	switch {
	case m.name == "conflictWrongNext" && errors.As(err, &c):
		c.NextSequenceID = uint64(id)
	case m.name == "lostRaceAcked" && errors.As(err, &c) && c.NextSequenceID == uint64(id)+1:
		// Tells the loser of a race for id that it won.
		return nil, nil
	case m.name == "phantomAppend" && err == nil && m.appended.Add(1)%50 == 0:
		return nil, errs.Conflict(uint64(id), uint64(id)+1)
	case m.name == "lastSnapshotWhenEqual" && err == nil && known != nil && last == nil:
		last = m.newest(ctx)
	}
	return last, err
}

// AddEntries breaks the batch rules; the single-entry mutants above
// break AddEntry alone, which the memory log's AddEntries does not call
// through the mutant.
func (m *mutant) AddEntries(ctx context.Context, id eventlog.SequenceID, entries []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	pendings := 0
	for _, e := range entries {
		if e.Pending != "" {
			pendings++
		}
	}
	switch m.name {
	case "ignoreContext":
		ctx = context.Background()
	case "batchPartial":
		// Writes entry by entry and stops at the first refused.
		if len(entries) > 0 && len(entries) <= eventlog.MaxBatch {
			return m.oneByOne(ctx, id, entries, known)
		}
	case "batchVisibleHalfway":
		// Checks everything first, then writes entry by entry while
		// every other append waits: only a reader can tell.
		m.writeMu.Lock()
		defer m.writeMu.Unlock()
		if err := eventlog.ValidateBatch(entries); err != nil {
			return nil, err
		}
		var last *eventlog.SnapshotRef
		for i, e := range entries {
			if i > 0 {
				time.Sleep(entryWriteTime)
			}
			var err error
			if last, err = m.Log.AddEntry(ctx, id+eventlog.SequenceID(i), e, known); err != nil {
				return nil, err
			}
		}
		return last, nil
	case "batchConflictFirstOnly":
		// Checks the conflict for the first entry only; the others go
		// wherever the end of the log is by then.
		if err := eventlog.ValidateBatch(entries); err != nil {
			return nil, err
		}
		last, err := m.Log.AddEntry(ctx, id, entries[0], known)
		if err != nil {
			return nil, err
		}
		for _, e := range entries[1:] {
			time.Sleep(entryWriteTime)
			for {
				_, next := m.bounds(ctx)
				if last, err = m.Log.AddEntry(ctx, next, e, known); err == nil || ctx.Err() != nil {
					break
				}
			}
		}
		return last, err
	case "batchLosesPending":
		if len(entries) > 1 && pendings == 1 {
			entries = slices.Clone(entries)
			for i := range entries {
				entries[i].Pending = ""
			}
		}
	case "batchTwoPendings":
		if pendings > 1 && len(entries) <= eventlog.MaxBatch {
			return m.oneByOne(ctx, id, entries, known)
		}
	case "batchLimitOff":
		if len(entries) > eventlog.MaxBatch {
			return m.oneByOne(ctx, id, entries, known)
		}
	case "batchOwnSnapshotIgnored":
		// Replies with the newest snapshot from before the batch.
		before := m.newest(ctx)
		_, err := m.Log.AddEntries(ctx, id, entries, known)
		if err != nil || known == nil || before == nil || before.SequenceID == *known {
			return nil, err
		}
		return before, nil
	}
	return m.Log.AddEntries(ctx, id, entries, known)
}

// entryWriteTime is how long the mutants that write a batch entry by
// entry take per entry, as a backend doing I/O for each would.
const entryWriteTime = 20 * time.Microsecond

// oneByOne appends entries one at a time, stopping at the first failure.
func (m *mutant) oneByOne(ctx context.Context, id eventlog.SequenceID, entries []eventlog.Entry, known *eventlog.SequenceID) (last *eventlog.SnapshotRef, err error) {
	for i, e := range entries {
		if i > 0 {
			runtime.Gosched()
		}
		if last, err = m.Log.AddEntry(ctx, id+eventlog.SequenceID(i), e, known); err != nil {
			return nil, err
		}
	}
	return last, nil
}

func (m *mutant) SetMetadata(ctx context.Context, id eventlog.SequenceID, u eventlog.MetadataUpdate) (bool, error) {
	switch m.name {
	case "ignoreContext":
		ctx = context.Background()
	case "ignoreIfPending":
		u.IfPending = ""
	case "clearIgnored":
		for _, f := range []*eventlog.FieldUpdate{&u.Snapshot, &u.History, &u.Pending} {
			if f.IsClear() {
				*f = eventlog.Keep()
			}
		}
	}
	applied, err := m.Log.SetMetadata(ctx, id, u)
	switch {
	case m.name == "notAppliedSaysApplied" && err == nil:
		applied = true
	case m.name == "staleSnapshotCache" && err == nil && applied && u.Snapshot.IsSet():
		m.mu.Lock()
		if m.maxSnap == nil || *m.maxSnap < id {
			m.maxSnap = eventlog.Known(id)
		}
		m.mu.Unlock()
	}
	return applied, err
}

func (m *mutant) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	switch m.name {
	case "ignoreContext":
		ctx = context.Background()
	case "staleSnapshotCache":
		// Remembers the newest snapshot ever set, even once cleared.
		m.mu.Lock()
		ms := m.maxSnap
		m.mu.Unlock()
		if first, next := m.bounds(ctx); from.IsSnapshot() && ms != nil && *ms >= first && *ms < next {
			if real, _ := m.Log.Query(ctx, eventlog.FromSnapshot, eventlog.ToID(0), nil); real.Start < *ms {
				from = eventlog.FromID(*ms)
			}
		}
	case "laggingReads":
		// Half the reads are served from a cache of earlier replies.
		key := describeFrom(from) + "|" + describeTo(to) + describeKnown(known)
		m.mu.Lock()
		m.reads++
		p, ok := m.cache[key]
		m.mu.Unlock()
		if ok && m.reads%2 == 0 {
			runtime.Gosched()
			return p, nil
		}
	}
	p, err := m.Log.Query(ctx, from, to, known)
	if err != nil {
		return p, err
	}
	switch m.name {
	case "laggingReads":
		m.mu.Lock()
		m.cache[describeFrom(from)+"|"+describeTo(to)+describeKnown(known)] = p
		m.mu.Unlock()
	case "completeLies":
		p.Complete = true
	case "startAtNextIsRangeError":
		if id, ok := from.ID(); ok {
			if _, next := m.bounds(ctx); id == next {
				return eventlog.Page{}, errs.Range("mutant")
			}
		}
	case "endNotClamped":
		if id, ok := to.ID(); ok {
			if _, next := m.bounds(ctx); id > next {
				return eventlog.Page{}, errs.Range("mutant")
			}
		}
	case "lastSnapshotWhenEqual":
		if known != nil && p.LastSnapshot == nil {
			p.LastSnapshot = m.newest(ctx)
		}
	}
	return p, nil
}

func (m *mutant) Truncate(ctx context.Context, start eventlog.SequenceID) error {
	first, next := m.bounds(ctx)
	switch m.name {
	case "ignoreContext":
		ctx = context.Background()
	case "truncateAtNextRefused":
		if start == next && start > first {
			return errs.Range("mutant")
		}
	case "truncateBeyondNextClamps":
		if start > next {
			start = next
		}
	case "truncateOffByOne":
		if start > first {
			start--
		}
	}
	return m.Log.Truncate(ctx, start)
}
