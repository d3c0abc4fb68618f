package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Option tunes the suite, mostly to scale the heavy tests down for slow
// backends.
type Option func(*config)

type config struct {
	appenders, attempts       int
	pagingEntries             int
	largeEntryBytes           int
	historyClients, historyOp int
	historyRuns               int
	propertySteps             int
	batchRounds               int
	batchWriters, batches     int
	maxPageEntries            int
	maxPageBytes              int
	skip                      map[string]bool
}

func defaults() config {
	return config{
		appenders: 16, attempts: 200,
		pagingEntries:   250,
		largeEntryBytes: 100 << 10,
		historyClients:  4, historyOp: 25, historyRuns: 6,
		propertySteps: 50,
		batchRounds:   50,
		batchWriters:  3, batches: 60,
	}
}

// Appenders sets the concurrent appenders test to goroutines writers of
// attempts appends each (default 16 × 200).
func Appenders(goroutines, attempts int) Option {
	return func(c *config) { c.appenders, c.attempts = max(goroutines, 2), max(attempts, 1) }
}

// PagingEntries sets how many entries the paging tests write (default
// 250, at least 20).
func PagingEntries(n int) Option { return func(c *config) { c.pagingEntries = max(n, 20) } }

// LargeEntryBytes sets the body size of the large-entry test (default
// 100 KiB).
func LargeEntryBytes(n int) Option { return func(c *config) { c.largeEntryBytes = max(n, 1024) } }

// History sets the linearizability check to runs histories of clients
// concurrent clients making opsPerClient calls each (default 4 × 25, 6
// runs). Keep clients × opsPerClient around 100: the check is exponential
// in the worst case.
func History(clients, opsPerClient, runs int) Option {
	return func(c *config) {
		c.historyClients, c.historyOp, c.historyRuns = max(clients, 2), max(opsPerClient, 1), max(runs, 1)
	}
}

// Batches sets the batch concurrency tests: rounds of a batch racing
// single appends (BatchRace, default 50), and writers appending batches
// of batches each while readers watch (BatchReaders, default 3 × 60).
func Batches(rounds, writers, batches int) Option {
	return func(c *config) {
		c.batchRounds, c.batchWriters, c.batches = max(rounds, 1), max(writers, 1), max(batches, 1)
	}
}

// PropertySteps sets the longest operation sequence of the model-based
// property test (default 50; sequences are n/2 to n steps long, and a
// failure is reported at the step that fails). The number of sequences is
// rapid's -rapid.checks flag (default 100).
func PropertySteps(n int) Option { return func(c *config) { c.propertySteps = max(n, 1) } }

// PageLimits declares the implementation's page bounds; every page the
// suite receives is then checked against them: at most entries entries,
// and at most bytes of bodies unless the page holds a single entry. Zero
// leaves a bound unchecked.
func PageLimits(entries, bytes int) Option {
	return func(c *config) { c.maxPageEntries, c.maxPageBytes = entries, bytes }
}

// Skip leaves out the named tests, each reported as skipped: top-level
// tests by name (Run lists them) and subtests by their path below Run
// ("LastSnapshot/NewestCleared"). It is for implementations that serve
// only part of the contract by design: a thin client over the HTTP API,
// which takes only spreadsheet entries in their canonical encoding,
// leaves out BodyRoundTrip (bodies of any shape, byte for byte) and
// Property (which draws such bodies).
func Skip(tests ...string) Option {
	return func(c *config) {
		if c.skip == nil {
			c.skip = map[string]bool{}
		}
		for _, n := range tests {
			c.skip[n] = true
		}
	}
}

// Light scales every heavy test down for backends at a few milliseconds
// per request (DynamoDB on an emulator): 4 × 50 appenders, 120 paged
// entries, 3 histories of 3 × 15 calls, property sequences of 5 to 10
// steps, 12 batch races, 2 batch writers of 15 batches. The whole suite
// then makes about 5,000 calls (19,000 without Light), most of them in
// the property test, which runs 100 sequences and reads the whole log
// after every step; -rapid.checks=N changes the number of sequences.
// Options after Light still apply.
func Light() Option {
	return func(c *config) {
		c.appenders, c.attempts = 4, 50
		c.pagingEntries = 120
		c.historyClients, c.historyOp, c.historyRuns = 3, 15, 3
		c.propertySteps = 10
		c.batchRounds, c.batchWriters, c.batches = 12, 2, 15
	}
}

// Run runs the conformance suite. Every call of newLog must return a new,
// empty log (next id 0) that nothing else writes to, for instance a new
// sheet in a shared table; it may call t.Cleanup to release it.
func Run(t *testing.T, newLog func(t *testing.T) eventlog.EventLog, opts ...Option) {
	c := defaults()
	for _, o := range opts {
		o(&c)
	}
	s := &suite{cfg: c, newLog: newLog}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"EmptyLog", s.testEmptyLog},
		{"Append", s.testAppend},
		{"AppendConflicts", s.testAppendConflicts},
		{"AppendValidation", s.testAppendValidation},
		{"BodyRoundTrip", s.testBodyRoundTrip},
		{"AppendWithMetadata", s.testAppendWithMetadata},
		{"AppendBatch", s.testAppendBatch},
		{"Metadata", s.testMetadata},
		{"Truncate", s.testTruncate},
		{"Query", s.testQuery},
		{"Snapshots", s.testSnapshots},
		{"LastSnapshot", s.testLastSnapshot},
		{"Context", s.testContext},
		{"LargeEntries", s.testLargeEntries},
		{"ConcurrentAppenders", s.testConcurrentAppenders},
		{"BatchRace", s.testBatchRace},
		{"BatchReaders", s.testBatchReaders},
		{"Linearizability", s.testLinearizability},
		{"Property", s.testProperty},
	} {
		if c.skip[tc.name] {
			t.Run(tc.name, func(t *testing.T) { t.Skip("left out by eventlogtest.Skip") })
			continue
		}
		t.Run(tc.name, tc.run)
	}
}

type suite struct {
	cfg    config
	newLog func(t *testing.T) eventlog.EventLog
}

// harness wraps one log under test with assertions.
type harness struct {
	t   testing.TB
	cfg config
	ctx context.Context
	log eventlog.EventLog
}

func (s *suite) fresh(t *testing.T) *harness {
	t.Helper()
	for name := range s.cfg.skip {
		if strings.HasSuffix(t.Name(), "/"+name) {
			t.Skip("left out by eventlogtest.Skip")
		}
	}
	return &harness{t: t, cfg: s.cfg, ctx: t.Context(), log: s.newLog(t)}
}

// body is a small, valid entry body, distinct for each n.
func body(n int) []byte {
	return fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%d}`, n/7, n%7, n)
}

func entry(n int) eventlog.Entry { return eventlog.Entry{Body: body(n)} }

func isErr[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

// add appends e at id and fails the test unless it succeeds.
func (h *harness) add(id uint64, e eventlog.Entry) {
	h.t.Helper()
	if _, err := h.log.AddEntry(h.ctx, eventlog.SequenceID(id), e, nil); err != nil {
		h.t.Fatalf("AddEntry(%d, %s): %v", id, e.Body, err)
	}
}

// addBatch appends es at id with AddEntries and fails the test unless it
// succeeds.
func (h *harness) addBatch(id uint64, es []eventlog.Entry) {
	h.t.Helper()
	if _, err := h.log.AddEntries(h.ctx, eventlog.SequenceID(id), es, nil); err != nil {
		h.t.Fatalf("AddEntries(%d, %s): %v", id, describeEntries(es), err)
	}
}

// fill appends entries body(from) .. body(to-1) at ids from .. to-1.
func (h *harness) fill(from, to int) {
	h.t.Helper()
	for i := from; i < to; i++ {
		h.add(uint64(i), entry(i))
	}
}

func (h *harness) setMetadata(id uint64, u eventlog.MetadataUpdate) bool {
	h.t.Helper()
	applied, err := h.log.SetMetadata(h.ctx, eventlog.SequenceID(id), u)
	if err != nil {
		h.t.Fatalf("SetMetadata(%d): %v", id, err)
	}
	return applied
}

func (h *harness) truncate(start uint64) {
	h.t.Helper()
	if err := h.log.Truncate(h.ctx, eventlog.SequenceID(start)); err != nil {
		h.t.Fatalf("Truncate(%d): %v", start, err)
	}
}

// query runs one query that must succeed and checks the page's own
// consistency and the declared page limits.
func (h *harness) query(from eventlog.From, to eventlog.To, known *eventlog.SequenceID) eventlog.Page {
	h.t.Helper()
	p, err := h.log.Query(h.ctx, from, to, known)
	if err != nil {
		h.t.Fatalf("Query(%s, %s%s): %v", describeFrom(from), describeTo(to), describeKnown(known), err)
	}
	h.checkPage(p)
	return p
}

func (h *harness) checkPage(p eventlog.Page) {
	h.t.Helper()
	if p.End < p.Start || uint64(len(p.Entries)) != uint64(p.End-p.Start) {
		h.t.Fatalf("page [%d,%d) holds %d entries", p.Start, p.End, len(p.Entries))
	}
	if !p.Complete && len(p.Entries) == 0 {
		h.t.Fatalf("incomplete page at %d holds no entry: paging would never progress", p.Start)
	}
	if h.cfg.maxPageEntries > 0 && len(p.Entries) > h.cfg.maxPageEntries {
		h.t.Fatalf("page [%d,%d) holds %d entries, above the declared bound %d", p.Start, p.End, len(p.Entries), h.cfg.maxPageEntries)
	}
	if h.cfg.maxPageBytes > 0 && len(p.Entries) > 1 {
		n := 0
		for _, e := range p.Entries {
			n += len(e.Body)
		}
		if n > h.cfg.maxPageBytes {
			h.t.Fatalf("page [%d,%d) holds %d body bytes, above the declared bound %d", p.Start, p.End, n, h.cfg.maxPageBytes)
		}
	}
}

// queryAll pages from from to to, continuing from each page's End until
// a page is complete, and returns the resolved start, the final end and
// every entry. It checks that the pages join up and that lastSnapshot is
// the same on every page (nothing else writes meanwhile).
func (h *harness) queryAll(from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (start, end uint64, entries []eventlog.Entry, last *eventlog.SnapshotRef) {
	h.t.Helper()
	p := h.query(from, to, known)
	start, last = uint64(p.Start), p.LastSnapshot
	for pages := 1; ; pages++ {
		entries = append(entries, p.Entries...)
		if p.Complete {
			return start, uint64(p.End), entries, last
		}
		if pages > 1_000_000 {
			h.t.Fatalf("query from %s has not completed after %d pages", describeFrom(from), pages)
		}
		prevEnd := p.End
		p = h.query(eventlog.FromID(p.End), to, known)
		if p.Start != prevEnd {
			h.t.Fatalf("continuing from %d returned a page starting at %d", prevEnd, p.Start)
		}
		if !sameSnapshotRef(p.LastSnapshot, last) {
			h.t.Fatalf("lastSnapshot changed between pages with no write: %s then %s", describeRef(last), describeRef(p.LastSnapshot))
		}
	}
}

// bounds returns the log's first and next ids.
func (h *harness) bounds() (first, next uint64) {
	h.t.Helper()
	first, next, _, _ = h.queryAll(eventlog.FromStart, eventlog.ToEnd, nil)
	return first, next
}

// expect checks the whole log: its first id and every entry, body and
// metadata.
func (h *harness) expect(first uint64, want []eventlog.Entry) {
	h.t.Helper()
	gotFirst, gotNext, got, _ := h.queryAll(eventlog.FromStart, eventlog.ToEnd, nil)
	if gotFirst != first || gotNext != first+uint64(len(want)) {
		h.t.Fatalf("log is [%d,%d), want [%d,%d)", gotFirst, gotNext, first, first+uint64(len(want)))
	}
	for i := range want {
		if string(got[i].Body) != string(want[i].Body) || got[i].Metadata != want[i].Metadata {
			h.t.Fatalf("entry %d is %s%s, want %s%s", first+uint64(i), got[i].Body, describeMetadata(got[i].Metadata),
				want[i].Body, describeMetadata(want[i].Metadata))
		}
	}
}

// entries returns body(from) .. body(to-1) with no metadata, as expect
// wants them.
func entries(from, to int) []eventlog.Entry {
	var out []eventlog.Entry
	for i := from; i < to; i++ {
		out = append(out, entry(i))
	}
	return out
}

func (h *harness) wantConflict(err error, what string, next uint64) {
	h.t.Helper()
	var c *errs.ConflictError
	if !errors.As(err, &c) {
		h.t.Fatalf("%s: got %v (%T), want a ConflictError", what, err, err)
	}
	if c.NextSequenceID != next {
		h.t.Fatalf("%s: ConflictError carries next id %d, want %d", what, c.NextSequenceID, next)
	}
}

func (h *harness) wantRange(err error, what string) {
	h.t.Helper()
	if !isErr[*errs.RangeError](err) {
		h.t.Fatalf("%s: got %v (%T), want a RangeError", what, err, err)
	}
}

func (h *harness) wantValidation(err error, what string) {
	h.t.Helper()
	if !isErr[*errs.ValidationError](err) {
		h.t.Fatalf("%s: got %v (%T), want a ValidationError", what, err, err)
	}
}

func (h *harness) wantEmptyPage(p eventlog.Page, at uint64, what string) {
	h.t.Helper()
	if uint64(p.Start) != at || uint64(p.End) != at || !p.Complete || len(p.Entries) != 0 {
		h.t.Fatalf("%s: page [%d,%d) complete=%v with %d entries, want a complete empty page at %d",
			what, p.Start, p.End, p.Complete, len(p.Entries), at)
	}
}

func (h *harness) wantLast(got *eventlog.SnapshotRef, want *eventlog.SnapshotRef, what string) {
	h.t.Helper()
	if !sameSnapshotRef(got, want) {
		h.t.Fatalf("%s: lastSnapshot = %s, want %s", what, describeRef(got), describeRef(want))
	}
}

func ref(id uint64, blob string) *eventlog.SnapshotRef {
	return &eventlog.SnapshotRef{SequenceID: eventlog.SequenceID(id), BlobID: blob}
}

func known(id uint64) *eventlog.SequenceID { return eventlog.Known(eventlog.SequenceID(id)) }

func from(id uint64) eventlog.From { return eventlog.FromID(eventlog.SequenceID(id)) }

func to(id uint64) eventlog.To { return eventlog.ToID(eventlog.SequenceID(id)) }
