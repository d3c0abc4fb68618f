package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// The sequential model of the contract: a pure value, each operation
// returning a new state and the reply the contract demands. The property
// test runs it in lock step with the log under test; the linearizability
// check searches for an order of a concurrent history that it accepts.

type mEntry struct {
	body string
	md   eventlog.Metadata
}

// mState is immutable: operations copy before they change anything.
type mState struct {
	first   uint64
	entries []mEntry // entries[i] has id first+i
}

func (s mState) next() uint64 { return s.first + uint64(len(s.entries)) }

func (s mState) clone() mState {
	return mState{first: s.first, entries: slices.Clone(s.entries)}
}

// newestSnapshot returns the id of the newest entry with a snapshot.
func (s mState) newestSnapshot() (uint64, bool) {
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i].md.Snapshot != "" {
			return s.first + uint64(i), true
		}
	}
	return 0, false
}

func (s mState) lastSnapshot(known *eventlog.SequenceID) *eventlog.SnapshotRef {
	id, ok := s.newestSnapshot()
	if known == nil || !ok || eventlog.SequenceID(id) == *known {
		return nil
	}
	return &eventlog.SnapshotRef{SequenceID: eventlog.SequenceID(id), BlobID: s.entries[id-s.first].md.Snapshot}
}

func (s mState) equal(o mState) bool {
	return s.first == o.first && slices.Equal(s.entries, o.entries)
}

func (s mState) hash() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d", s.first)
	for _, e := range s.entries {
		fmt.Fprintf(h, "|%s|%s|%s|%s", e.body, e.md.Snapshot, e.md.History, e.md.Pending)
	}
	return h.Sum64()
}

func (s mState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "first=%d next=%d", s.first, s.next())
	for i, e := range s.entries {
		fmt.Fprintf(&b, "\n  %d %s%s", s.first+uint64(i), e.body, describeMetadata(e.md))
	}
	return b.String()
}

type opKind uint8

const (
	opAdd opKind = iota
	opAddBatch
	opSetMetadata
	opQuery
	opTruncate
)

// op is one call of the EventLog interface.
type op struct {
	kind    opKind
	id      eventlog.SequenceID // AddEntry, AddEntries, SetMetadata, Truncate
	entry   eventlog.Entry      // AddEntry
	entries []eventlog.Entry    // AddEntries
	upd     eventlog.MetadataUpdate
	from    eventlog.From
	to      eventlog.To
	known   *eventlog.SequenceID // AddEntry, AddEntries, Query
}

// reply is what a call returned, reduced to what the contract constrains.
type reply struct {
	errTag  string // "" when the call succeeded, else the errs type tag
	next    uint64 // ConflictError.NextSequenceID
	applied bool   // SetMetadata
	last    *eventlog.SnapshotRef
	page    eventlog.Page // Query (LastSnapshot is in last)
	err     error         // for messages only
}

// ambiguous reports a failure of the backing store: the call may or may
// not have taken effect.
func (r reply) ambiguous() bool { return r.errTag == errs.TypeStorage }

// call runs o against log and records the reply.
func call(ctx context.Context, log eventlog.EventLog, o op) reply {
	var r reply
	switch o.kind {
	case opAdd:
		r.last, r.err = log.AddEntry(ctx, o.id, o.entry, o.known)
	case opAddBatch:
		r.last, r.err = log.AddEntries(ctx, o.id, o.entries, o.known)
	case opSetMetadata:
		r.applied, r.err = log.SetMetadata(ctx, o.id, o.upd)
	case opQuery:
		r.page, r.err = log.Query(ctx, o.from, o.to, o.known)
		r.last = r.page.LastSnapshot
	case opTruncate:
		r.err = log.Truncate(ctx, o.id)
	}
	if r.err != nil {
		r.errTag = errs.TypeOf(r.err)
		if r.errTag == "" {
			r.errTag = "untyped error"
		}
		var c *errs.ConflictError
		if errors.As(r.err, &c) {
			r.next = c.NextSequenceID
		}
	}
	return r
}

// step applies o to s and returns the new state and the reply the
// contract demands. For a successful Query, want.page holds every entry
// from the resolved start to the clamped end: the log may return a prefix
// (see matches).
func step(s mState, o op) (mState, reply) {
	fail := func(tag string) (mState, reply) { return s, reply{errTag: tag} }
	switch o.kind {
	case opAdd, opAddBatch:
		entries := o.entries
		if o.kind == opAdd {
			entries = []eventlog.Entry{o.entry}
		}
		if !validBatch(entries) {
			return fail(errs.TypeValidation)
		}
		if uint64(o.id) != s.next() {
			return s, reply{errTag: errs.TypeConflict, next: s.next()}
		}
		n := s.clone()
		for _, e := range entries {
			n.entries = append(n.entries, mEntry{body: string(e.Body), md: e.Metadata})
		}
		return n, reply{last: n.lastSnapshot(o.known)}

	case opSetMetadata:
		if o.upd.Validate() != nil {
			return fail(errs.TypeValidation)
		}
		if uint64(o.id) < s.first || uint64(o.id) >= s.next() {
			return fail(errs.TypeRange)
		}
		i := uint64(o.id) - s.first
		if o.upd.IfPending != "" && s.entries[i].md.Pending != o.upd.IfPending {
			return s, reply{applied: false}
		}
		n := s.clone()
		n.entries[i].md = o.upd.Apply(n.entries[i].md)
		return n, reply{applied: true}

	case opQuery:
		start := s.first
		if id, ok := o.from.ID(); ok {
			if uint64(id) < s.first || uint64(id) > s.next() {
				return fail(errs.TypeRange)
			}
			start = uint64(id)
		} else if o.from.IsSnapshot() {
			if id, ok := s.newestSnapshot(); ok {
				start = id
			}
		}
		end := s.next()
		if id, ok := o.to.ID(); ok && uint64(id) < end {
			end = uint64(id)
		}
		p := eventlog.Page{Start: eventlog.SequenceID(start), End: eventlog.SequenceID(start), Complete: true}
		if end > start {
			p.End = eventlog.SequenceID(end)
			for _, e := range s.entries[start-s.first : end-s.first] {
				p.Entries = append(p.Entries, eventlog.Entry{Body: []byte(e.body), Metadata: e.md})
			}
		}
		return s, reply{page: p, last: s.lastSnapshot(o.known)}

	case opTruncate:
		if uint64(o.id) < s.first || uint64(o.id) > s.next() {
			return fail(errs.TypeRange)
		}
		k := uint64(o.id) - s.first
		return mState{first: uint64(o.id), entries: slices.Clone(s.entries[k:])}, reply{}
	}
	panic("unknown op")
}

// validBatch is the contract's rule for what one append takes: 1 to
// MaxBatch entries, each a valid entry, at most one of them with pending
// set. (A single AddEntry is the batch of one.)
func validBatch(entries []eventlog.Entry) bool {
	if len(entries) == 0 || len(entries) > eventlog.MaxBatch {
		return false
	}
	pending := 0
	for _, e := range entries {
		if eventlog.ValidateEntry(e) != nil {
			return false
		}
		if e.Pending != "" {
			pending++
		}
	}
	return pending <= 1
}

// matches returns nil when got is a reply the contract allows given want
// (from step), or says how it differs. A Query may return a non-empty
// prefix of the wanted page, and is complete exactly when it reached the
// wanted end.
func matches(o op, want, got reply) error {
	if got.errTag != want.errTag {
		return fmt.Errorf("error %q (%v), want %s", got.errTag, got.err, orOK(want.errTag))
	}
	if want.errTag == errs.TypeConflict && got.next != want.next {
		return fmt.Errorf("ConflictError carries next id %d, want %d", got.next, want.next)
	}
	if want.errTag != "" {
		return nil
	}
	if o.kind == opSetMetadata && got.applied != want.applied {
		return fmt.Errorf("applied = %v, want %v", got.applied, want.applied)
	}
	if !sameSnapshotRef(got.last, want.last) {
		return fmt.Errorf("lastSnapshot = %s, want %s", describeRef(got.last), describeRef(want.last))
	}
	if o.kind != opQuery {
		return nil
	}
	g, w := got.page, want.page
	if g.Start != w.Start {
		return fmt.Errorf("page starts at %d, want %d", g.Start, w.Start)
	}
	if w.End == w.Start {
		if g.End != w.Start || !g.Complete || len(g.Entries) != 0 {
			return fmt.Errorf("page [%d,%d) complete=%v with %d entries, want a complete empty page at %d",
				g.Start, g.End, g.Complete, len(g.Entries), w.Start)
		}
		return nil
	}
	if g.End <= g.Start || g.End > w.End {
		return fmt.Errorf("page [%d,%d) complete=%v, want a non-empty prefix of [%d,%d)", g.Start, g.End, g.Complete, w.Start, w.End)
	}
	if g.Complete != (g.End == w.End) {
		return fmt.Errorf("page [%d,%d) says complete=%v, but the query ends at %d", g.Start, g.End, g.Complete, w.End)
	}
	if n := int(g.End - g.Start); len(g.Entries) != n {
		return fmt.Errorf("page [%d,%d) holds %d entries, want %d", g.Start, g.End, len(g.Entries), n)
	}
	for i, e := range g.Entries {
		we := w.Entries[i]
		if string(e.Body) != string(we.Body) || e.Metadata != we.Metadata {
			return fmt.Errorf("entry %d is %s%s, want %s%s", g.Start+eventlog.SequenceID(i),
				e.Body, describeMetadata(e.Metadata), we.Body, describeMetadata(we.Metadata))
		}
	}
	return nil
}

func orOK(tag string) string {
	if tag == "" {
		return "success"
	}
	return tag
}

func sameSnapshotRef(a, b *eventlog.SnapshotRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func describeRef(r *eventlog.SnapshotRef) string {
	if r == nil {
		return "absent"
	}
	return fmt.Sprintf("{%d %q}", r.SequenceID, r.BlobID)
}

func describeMetadata(m eventlog.Metadata) string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"snapshot", m.Snapshot}, {"history", m.History}, {"pending", m.Pending}} {
		if f.v != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", f.k, f.v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " {" + strings.Join(parts, " ") + "}"
}

func describeFrom(f eventlog.From) string {
	if id, ok := f.ID(); ok {
		return fmt.Sprint(id)
	}
	if f.IsSnapshot() {
		return "Snapshot"
	}
	return "Start"
}

func describeTo(t eventlog.To) string {
	if id, ok := t.ID(); ok {
		return fmt.Sprint(id)
	}
	return "End"
}

func describeKnown(k *eventlog.SequenceID) string {
	if k == nil {
		return ""
	}
	return fmt.Sprintf(", known=%d", *k)
}

func describeField(u eventlog.FieldUpdate) string {
	switch {
	case u.IsSet():
		return fmt.Sprintf("%q", u.Value())
	case u.IsClear():
		return "clear"
	}
	return "keep"
}

func (o op) String() string {
	switch o.kind {
	case opAdd:
		return fmt.Sprintf("AddEntry(%d, %s%s%s)", o.id, o.entry.Body, describeMetadata(o.entry.Metadata), describeKnown(o.known))
	case opAddBatch:
		return fmt.Sprintf("AddEntries(%d, %s%s)", o.id, describeEntries(o.entries), describeKnown(o.known))
	case opSetMetadata:
		s := fmt.Sprintf("SetMetadata(%d, snapshot=%s history=%s pending=%s", o.id,
			describeField(o.upd.Snapshot), describeField(o.upd.History), describeField(o.upd.Pending))
		if o.upd.IfPending != "" {
			s += fmt.Sprintf(" if pending=%q", o.upd.IfPending)
		}
		return s + ")"
	case opQuery:
		return fmt.Sprintf("Query(%s, %s%s)", describeFrom(o.from), describeTo(o.to), describeKnown(o.known))
	case opTruncate:
		return fmt.Sprintf("Truncate(%d)", o.id)
	}
	return "?"
}

func (r reply) describe(o op) string {
	if r.errTag != "" {
		if r.errTag == errs.TypeConflict {
			return fmt.Sprintf("ConflictError(next=%d)", r.next)
		}
		return r.errTag
	}
	switch o.kind {
	case opAdd, opAddBatch:
		return "ok" + lastSuffix(r.last)
	case opSetMetadata:
		return fmt.Sprintf("applied=%v", r.applied)
	case opQuery:
		p := r.page
		ids := make([]string, len(p.Entries))
		for i, e := range p.Entries {
			ids[i] = fmt.Sprintf("%s%s", e.Body, describeMetadata(e.Metadata))
		}
		return fmt.Sprintf("[%d,%d) complete=%v%s [%s]", p.Start, p.End, p.Complete, lastSuffix(r.last), strings.Join(ids, ", "))
	}
	return "ok"
}

// describeEntries lists a batch's entries, abbreviating long batches.
func describeEntries(es []eventlog.Entry) string {
	parts := make([]string, 0, min(len(es), 7))
	for i, e := range es {
		if len(es) > 6 && i == 3 {
			parts = append(parts, fmt.Sprintf("... %d more ...", len(es)-5))
		}
		if len(es) > 6 && i >= 3 && i < len(es)-2 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s%s", e.Body, describeMetadata(e.Metadata)))
	}
	return fmt.Sprintf("%d entries [%s]", len(es), strings.Join(parts, ", "))
}

func lastSuffix(r *eventlog.SnapshotRef) string {
	if r == nil {
		return ""
	}
	return " last=" + describeRef(r)
}
