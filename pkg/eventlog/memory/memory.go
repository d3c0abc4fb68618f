// Package memory is the in-memory reference implementation of
// eventlog.EventLog: the simplest correct log, the model the durable
// backends are compared with, and the log of the engine benchmarks.
//
// Every call does its reading and writing under one mutex, so each call
// is atomic and the log is trivially linearizable; only Query's copying
// of bodies, which never change once stored, happens after the lock is
// released. Bodies are copied on the way in and on the way out: no caller
// buffer ever aliases stored data.
//
// Costs: AddEntry is O(1) amortised (AddEntries O(entries)), Query is
// O(page), and the newest snapshot is cached so that FromSnapshot and
// lastSnapshot are O(1); only clearing the newest snapshot costs a
// backward scan to find the previous one.
//
// The log holds no pointer per entry: bodies are packed into large
// shared byte chunks, and the few entries with metadata keep it in a map
// beside them, so a record is 16 bytes the garbage collector never
// scans. A log of a million entries is then a few hundred objects, not
// millions.
package memory

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// Default page bounds.
const (
	DefaultPageSize  = 1000
	DefaultPageBytes = 1 << 20
)

// Options bound the pages returned by Query. Zero or negative values take
// the defaults.
type Options struct {
	// PageSize is the largest number of entries in one page.
	PageSize int
	// PageBytes is the largest total body size of one page. A page always
	// holds at least one entry, however large, so that paging progresses.
	PageBytes int
}

func (o Options) withDefaults() Options {
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.PageBytes <= 0 {
		o.PageBytes = DefaultPageBytes
	}
	return o
}

// Log is one in-memory event log. The zero value is not usable; call New.
type Log struct {
	opts Options

	// mu is a plain mutex: every critical section is short, and a
	// waiter spins a little before it sleeps, where a reader of an
	// RWMutex that finds a writer sleeps at once and the writer pays for
	// waking it.
	mu sync.Mutex
	// first is the id of entries.at(0); the next id is first plus
	// entries.len().
	first   eventlog.SequenceID
	entries records
	bodies  arena
	// meta holds the metadata of the entries that have some (a record's
	// hasMeta says which).
	meta map[eventlog.SequenceID]eventlog.Metadata
	// hasSnap and snapID cache the newest entry with a snapshot.
	hasSnap bool
	snapID  eventlog.SequenceID
	// pending indexes the entries whose pending field is set, so that the
	// store can list them without scanning every log.
	pending map[eventlog.SequenceID]string
}

var _ eventlog.EventLog = (*Log)(nil)

// New returns an empty log whose next id is 0.
func New(opts Options) *Log {
	return &Log{opts: opts.withDefaults(), meta: map[eventlog.SequenceID]eventlog.Metadata{}, pending: map[eventlog.SequenceID]string{}}
}

// metadata is the metadata of the entry at id, which is in the log.
func (l *Log) metadata(id eventlog.SequenceID) eventlog.Metadata {
	if !l.entries.at(int(id - l.first)).hasMeta {
		return eventlog.Metadata{}
	}
	return l.meta[id]
}

func (l *Log) next() eventlog.SequenceID {
	return l.first + eventlog.SequenceID(l.entries.len())
}

func abandoned(err error) error {
	return errs.Storage(err, "event log call abandoned")
}

// lastSnapshot is the reply to a caller that knows the snapshot at *known.
func (l *Log) lastSnapshot(known *eventlog.SequenceID) *eventlog.SnapshotRef {
	if known == nil || !l.hasSnap || l.snapID == *known {
		return nil
	}
	return &eventlog.SnapshotRef{SequenceID: l.snapID, BlobID: l.meta[l.snapID].Snapshot}
}

// AddEntry implements eventlog.EventLog: the batch of one entry.
func (l *Log) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return l.AddEntries(ctx, id, []eventlog.Entry{e}, known)
}

// AddEntries implements eventlog.EventLog. The whole batch is appended
// under the one lock, so no reader sees part of it.
func (l *Log) AddEntries(ctx context.Context, id eventlog.SequenceID, entries []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, abandoned(err)
	}
	if err := eventlog.ValidateBatch(entries); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if next := l.next(); id != next {
		return nil, errs.Conflict(uint64(id), uint64(next))
	}
	for i, e := range entries {
		at := id + eventlog.SequenceID(i)
		r := l.bodies.add(at, e.Body)
		if r.hasMeta = e.Snapshot != "" || e.History != "" || e.Pending != ""; r.hasMeta {
			l.meta[at] = e.Metadata
		}
		l.entries.push(r)
		if e.Snapshot != "" {
			l.hasSnap, l.snapID = true, at
		}
		if e.Pending != "" {
			l.pending[at] = e.Pending
		}
	}
	return l.lastSnapshot(known), nil
}

// SetMetadata implements eventlog.EventLog.
func (l *Log) SetMetadata(ctx context.Context, id eventlog.SequenceID, u eventlog.MetadataUpdate) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, abandoned(err)
	}
	if err := u.Validate(); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < l.first || id >= l.next() {
		return false, errs.Range("sequence id %d is outside the log [%d, %d)", id, l.first, l.next())
	}
	old := l.metadata(id)
	if u.IfPending != "" && old.Pending != u.IfPending {
		return false, nil
	}
	md := u.Apply(old)
	r := l.entries.at(int(id - l.first))
	if r.hasMeta = md != (eventlog.Metadata{}); r.hasMeta {
		l.meta[id] = md
	} else {
		delete(l.meta, id)
	}

	if md.Pending != "" {
		l.pending[id] = md.Pending
	} else {
		delete(l.pending, id)
	}
	switch {
	case md.Snapshot != "" && (!l.hasSnap || id > l.snapID):
		l.hasSnap, l.snapID = true, id
	case md.Snapshot == "" && l.hasSnap && id == l.snapID:
		l.findNewestSnapshotBelow(id)
	}
	return true, nil
}

// findNewestSnapshotBelow refreshes the snapshot cache after the snapshot
// at id was cleared: the newest one, if any, is below id.
func (l *Log) findNewestSnapshotBelow(id eventlog.SequenceID) {
	l.hasSnap = false
	for i := int(id-l.first) - 1; i >= 0; i-- {
		if l.entries.at(i).hasMeta && l.meta[l.first+eventlog.SequenceID(i)].Snapshot != "" {
			l.hasSnap, l.snapID = true, l.first+eventlog.SequenceID(i)
			return
		}
	}
}

// Query implements eventlog.EventLog.
func (l *Log) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	if err := ctx.Err(); err != nil {
		return eventlog.Page{}, abandoned(err)
	}
	v, err := l.view(from, to, known)
	if err != nil || len(v.recs) == 0 {
		return v.page, err
	}
	// Stored bytes never change (an append writes past them, a
	// truncation only drops the log's references to them), so the
	// bodies are copied into one buffer after the lock is released: an
	// append waits for no copy.
	p := v.page
	p.Entries = make([]eventlog.Entry, len(v.recs))
	buf := make([]byte, 0, v.size)
	big, meta := 0, 0
	for i := range v.recs {
		r := &v.recs[i]
		var body []byte
		if r.big {
			body, big = v.big[big], big+1
		} else {
			body = v.chunks[r.chunk-v.chunk0][r.off : r.off+r.n]
		}
		at := len(buf)
		buf = append(buf, body...)
		// The three-index slice keeps an append to one body from
		// overwriting the next.
		p.Entries[i].Body = buf[at:len(buf):len(buf)]
		if r.hasMeta {
			p.Entries[i].Metadata, meta = v.meta[meta], meta+1
		}
	}
	return p, nil
}

// view is what Query reads under the lock: the page without its entries,
// copies of the entries' records, the metadata of those that have some
// and the big bodies (in order), the arena chunks from number chunk0 on
// that the others are in, and the bodies' total size.
type view struct {
	page   eventlog.Page
	recs   []record
	meta   []eventlog.Metadata
	big    [][]byte
	chunks [][]byte
	chunk0 uint32
	size   int
}

// capHint bounds the entries of a page of at most limit entries from the
// query alone.
func capHint(from eventlog.From, to eventlog.To, limit int) int {
	t, ok := to.ID()
	switch f, fromID := from.ID(); {
	case !ok:
		return limit
	case t == 0:
		return 0
	case fromID && t <= f:
		return 0
	case fromID:
		return int(min(uint64(limit), uint64(t-f)))
	}
	return limit
}

// view reads a page under the lock. It copies 16 bytes per entry and
// little else, so that an append rarely finds the lock taken, and never
// for long. The records are copied into a slice made before the lock is
// taken.
func (l *Log) view(from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (view, error) {
	recs := make([]record, 0, capHint(from, to, l.opts.PageSize))
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.next()
	start := l.first
	if id, ok := from.ID(); ok {
		if id < l.first || id > next {
			return view{}, errs.Range("query start %d is outside the log [%d, %d]", id, l.first, next)
		}
		start = id
	} else if from.IsSnapshot() && l.hasSnap {
		start = l.snapID
	}
	end := next
	if id, ok := to.ID(); ok && id < end {
		end = id
	}
	v := view{page: eventlog.Page{Start: start, End: start, LastSnapshot: l.lastSnapshot(known)}, recs: recs}
	if end <= start {
		v.page.Complete = true
		return v, nil
	}
	for i := int(start - l.first); i < int(end-l.first) && len(v.recs) < l.opts.PageSize; i++ {
		r := l.entries.at(i)
		id := l.first + eventlog.SequenceID(i)
		n := l.bodies.size(id, r)
		if len(v.recs) > 0 && v.size+n > l.opts.PageBytes {
			break
		}
		v.size += n
		v.recs = append(v.recs, *r)
		if r.hasMeta {
			v.meta = append(v.meta, l.meta[id])
		}
		if r.big {
			v.big = append(v.big, l.bodies.big[id])
		}
	}
	v.chunk0 = v.recs[0].chunk
	if last := v.recs[len(v.recs)-1].chunk; int(last-l.bodies.base) < len(l.bodies.chunks) {
		v.chunks = slices.Clone(l.bodies.chunks[v.chunk0-l.bodies.base : last-l.bodies.base+1])
	} else {
		// The last record is big and no small body was stored after
		// it: its chunk number names a chunk not made yet.
		v.chunks = slices.Clone(l.bodies.chunks[v.chunk0-l.bodies.base:])
	}
	v.page.End = start + eventlog.SequenceID(len(v.recs))
	v.page.Complete = v.page.End == end
	return v, nil
}

// Truncate implements eventlog.EventLog.
func (l *Log) Truncate(ctx context.Context, start eventlog.SequenceID) error {
	if err := ctx.Err(); err != nil {
		return abandoned(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if start < l.first || start > l.next() {
		return errs.Range("truncation point %d is outside the log [%d, %d]", start, l.first, l.next())
	}
	l.entries.drop(int(start - l.first))
	l.first = start
	if l.entries.len() > 0 {
		l.bodies.dropBefore(start, l.entries.at(0))
	} else {
		l.bodies.dropBefore(start, nil)
	}
	if l.hasSnap && l.snapID < start {
		// Every other snapshot was older still.
		l.hasSnap = false
	}
	for id := range l.meta {
		if id < start {
			delete(l.meta, id)
		}
	}
	for id := range l.pending {
		if id < start {
			delete(l.pending, id)
		}
	}
	return nil
}

// pendingEntries lists the entries of l with pending set, in id order.
func (l *Log) pendingEntries(sheet string) []eventlog.PendingEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]eventlog.PendingEntry, 0, len(l.pending))
	for _, id := range slices.Sorted(maps.Keys(l.pending)) {
		out = append(out, eventlog.PendingEntry{Sheet: sheet, SequenceID: id, Workflow: l.pending[id]})
	}
	return out
}

// Store holds one in-memory log per sheet, created on first use.
type Store struct {
	opts Options
	mu   sync.Mutex
	logs map[string]*Log
}

var _ eventlog.Store = (*Store)(nil)

// NewStore returns an empty store whose logs use opts.
func NewStore(opts Options) *Store {
	return &Store{opts: opts, logs: map[string]*Log{}}
}

// Log returns the log of sheet, creating an empty one on first use.
func (s *Store) Log(sheet string) (eventlog.EventLog, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logs[sheet]
	if !ok {
		l = New(s.opts)
		s.logs[sheet] = l
	}
	return l, nil
}

// Pending lists every entry with pending set, across all sheets, ordered
// by sheet and then by sequence id.
func (s *Store) Pending(ctx context.Context) ([]eventlog.PendingEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, abandoned(err)
	}
	s.mu.Lock()
	sheets := slices.Sorted(maps.Keys(s.logs))
	logs := make([]*Log, len(sheets))
	for i, sh := range sheets {
		logs[i] = s.logs[sh]
	}
	s.mu.Unlock()
	var out []eventlog.PendingEntry
	for i, l := range logs {
		out = append(out, l.pendingEntries(sheets[i])...)
	}
	return out, nil
}

// records holds a log's entries in chunks of chunkSize records, so that
// a long log grows without copying what it holds (append grows a long
// slice by a quarter at a time, copying a million entries over and over)
// and a truncation frees whole chunks.
type records struct {
	chunks [][]record
	// off is the index in chunks[0] of the first record; n the records.
	off, n int
}

const chunkSize = 4096

func (rs *records) len() int { return rs.n }

func (rs *records) at(i int) *record {
	i += rs.off
	return &rs.chunks[i/chunkSize][i%chunkSize]
}

// push appends r. The first chunk starts small and grows by append up
// to chunkSize (a short log stays short); a later one, whose log is long
// already, is made whole at once rather than copied as it grows.
func (rs *records) push(r record) {
	i := rs.off + rs.n
	if i/chunkSize == len(rs.chunks) {
		size := 16
		if len(rs.chunks) > 0 {
			size = chunkSize
		}
		rs.chunks = append(rs.chunks, make([]record, 0, size))
	}
	c := &rs.chunks[i/chunkSize]
	*c = append(*c, r)
	rs.n++
}

// drop removes the first k records.
func (rs *records) drop(k int) {
	rs.off += k
	rs.n -= k
	whole := rs.off / chunkSize
	clear(rs.chunks[:whole])
	rs.chunks = rs.chunks[whole:]
	rs.off %= chunkSize
}
