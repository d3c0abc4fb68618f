package boltlog

import (
	"bytes"
	"context"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// sheetLog is the log of one sheet: a view of the store's keyspace, with
// no state of its own, so any number of them may exist for one sheet.
type sheetLog struct {
	s      *Store
	sheet  string
	key    []byte // the sheet's key in the heads bucket
	prefix []byte // the prefix of its keys in the other buckets
}

var _ eventlog.EventLog = (*sheetLog)(nil)

func (l *sheetLog) corrupt(format string, args ...any) error {
	return errs.Storage(nil, "event log of sheet %s is corrupt: "+format, append([]any{l.sheet}, args...)...)
}

func (l *sheetLog) readHead(tx *bolt.Tx) (head, error) {
	v := tx.Bucket(bucketHeads).Get(l.key)
	if v == nil {
		return head{}, nil
	}
	h, err := decodeHead(v)
	if err != nil {
		return head{}, l.corrupt("%v", err)
	}
	return h, nil
}

// readMetadata returns the metadata of the entry at id, which the head
// says exists.
func (l *sheetLog) readRecord(tx *bolt.Tx, id eventlog.SequenceID) (body []byte, md eventlog.Metadata, err error) {
	v := tx.Bucket(bucketEntries).Get(idKey(l.prefix, id))
	if v == nil {
		return nil, md, l.corrupt("entry %d is missing", id)
	}
	body, md, err = decodeRecord(v)
	if err != nil {
		return nil, md, l.corrupt("entry %d: %v", id, err)
	}
	return body, md, nil
}

// lastSnapshot is the reply to a caller that knows the snapshot at
// *known, for the log whose head is h.
func (l *sheetLog) lastSnapshot(tx *bolt.Tx, h head, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	if known == nil || !h.hasSnap || h.snap == *known {
		return nil, nil
	}
	_, md, err := l.readRecord(tx, h.snap)
	if err != nil {
		return nil, err
	}
	if md.Snapshot == "" {
		return nil, l.corrupt("the head names entry %d as the newest snapshot, but it has none", h.snap)
	}
	return &eventlog.SnapshotRef{SequenceID: h.snap, BlobID: md.Snapshot}, nil
}

func putHead(tx *bolt.Tx, key []byte, h head) error {
	return tx.Bucket(bucketHeads).Put(key, h.encode())
}

// AddEntry implements eventlog.EventLog: the batch of one entry.
func (l *sheetLog) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return l.AddEntries(ctx, id, []eventlog.Entry{e}, known)
}

// AddEntries implements eventlog.EventLog. The batch is one request of
// the group commit: it is applied inside one transaction, whole, and made
// durable by that transaction's one fsync.
func (l *sheetLog) AddEntries(ctx context.Context, id eventlog.SequenceID, entries []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, abandoned(err)
	}
	if err := eventlog.ValidateBatch(entries); err != nil {
		return nil, err
	}
	// The records are copies: the caller may reuse its bodies once we
	// return, and the committer reads nothing the caller owns.
	b := batch{recs: make([][]byte, len(entries)), mds: make([]eventlog.Metadata, len(entries))}
	size := 0
	for i, e := range entries {
		b.recs[i] = encodeRecord(e.Body, e.Metadata)
		b.mds[i] = e.Metadata
		size += len(b.recs[i]) + len(l.prefix) + 8
	}
	known = copyKnown(known)

	var last *eventlog.SnapshotRef
	err := l.s.update(ctx, size, func(tx *bolt.Tx) (outcome, fatal error) {
		last, outcome, fatal = l.appendTx(tx, id, b, known)
		return outcome, fatal
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}

// batch is an append's entries, encoded: recs[i] is the record of the
// entry at id+i, mds[i] its metadata.
type batch struct {
	recs [][]byte
	mds  []eventlog.Metadata
}

// appendTx is AddEntries inside a transaction. It decides the outcome
// (a conflict, ids used up) before it writes anything.
func (l *sheetLog) appendTx(tx *bolt.Tx, id eventlog.SequenceID, b batch, known *eventlog.SequenceID) (last *eventlog.SnapshotRef, outcome, fatal error) {
	h, err := l.readHead(tx)
	if err != nil {
		return nil, err, nil
	}
	if id != h.next {
		return nil, errs.Conflict(uint64(id), uint64(h.next)), nil
	}
	n := eventlog.SequenceID(len(b.recs))
	if h.next > math.MaxUint64-n {
		return nil, errs.Storage(nil, "the event log of sheet %s has too few sequence ids left for %d entries", l.sheet, n), nil
	}
	nh := h
	nh.next += n
	snapBlob := ""
	for i, md := range b.mds {
		if md.Snapshot != "" {
			nh.hasSnap, nh.snap, snapBlob = true, id+eventlog.SequenceID(i), md.Snapshot
		}
	}
	// Read what the reply needs before writing anything, so that a
	// failure here leaves the transaction clean. The newest snapshot
	// after the batch is its own last one, if it carries any.
	if snapBlob != "" {
		if known != nil && *known != nh.snap {
			last = &eventlog.SnapshotRef{SequenceID: nh.snap, BlobID: snapBlob}
		}
	} else if last, err = l.lastSnapshot(tx, h, known); err != nil {
		return nil, err, nil
	}

	entries, pending, snapshots := tx.Bucket(bucketEntries), tx.Bucket(bucketPending), tx.Bucket(bucketSnapshots)
	for i, rec := range b.recs {
		key := idKey(l.prefix, id+eventlog.SequenceID(i))
		if err := entries.Put(key, rec); err != nil {
			return nil, nil, err
		}
		if p := b.mds[i].Pending; p != "" {
			if err := pending.Put(key, []byte(p)); err != nil {
				return nil, nil, err
			}
		}
		if b.mds[i].Snapshot != "" {
			if err := snapshots.Put(key, snapshotMark); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := putHead(tx, l.key, nh); err != nil {
		return nil, nil, err
	}
	return last, nil, nil
}

func copyKnown(k *eventlog.SequenceID) *eventlog.SequenceID {
	if k == nil {
		return nil
	}
	return eventlog.Known(*k)
}

// SetMetadata implements eventlog.EventLog.
func (l *sheetLog) SetMetadata(ctx context.Context, id eventlog.SequenceID, u eventlog.MetadataUpdate) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, abandoned(err)
	}
	if err := u.Validate(); err != nil {
		return false, err
	}
	key := idKey(l.prefix, id)
	size := 64 + len(u.Snapshot.Value()) + len(u.History.Value()) + len(u.Pending.Value())
	var applied bool
	err := l.s.update(ctx, size, func(tx *bolt.Tx) (error, error) {
		applied = false
		h, err := l.readHead(tx)
		if err != nil {
			return err, nil
		}
		if id < h.first || id >= h.next {
			return errs.Range("sequence id %d is outside the log [%d, %d)", id, h.first, h.next), nil
		}
		body, md, err := l.readRecord(tx, id)
		if err != nil {
			return err, nil
		}
		if u.IfPending != "" && md.Pending != u.IfPending {
			return nil, nil
		}
		nmd := u.Apply(md)
		if nmd == md {
			applied = true
			return nil, nil
		}
		nh := h
		switch {
		case nmd.Snapshot != "" && (!h.hasSnap || id > h.snap):
			nh.hasSnap, nh.snap = true, id
		case nmd.Snapshot == "" && h.hasSnap && id == h.snap:
			nh.hasSnap, nh.snap, err = l.snapshotBelow(tx, key)
			if err != nil {
				return err, nil
			}
		}
		// encodeRecord copies body out of the page before Put can touch it.
		if err := tx.Bucket(bucketEntries).Put(key, encodeRecord(body, nmd)); err != nil {
			return nil, err
		}
		if err := setIndex(tx.Bucket(bucketPending), key, md.Pending, nmd.Pending, []byte(nmd.Pending)); err != nil {
			return nil, err
		}
		if err := setIndex(tx.Bucket(bucketSnapshots), key, md.Snapshot, nmd.Snapshot, snapshotMark); err != nil {
			return nil, err
		}
		if nh != h {
			if err := putHead(tx, l.key, nh); err != nil {
				return nil, err
			}
		}
		applied = true
		return nil, nil
	})
	if err != nil {
		return false, err
	}
	return applied, nil
}

// setIndex keeps an index bucket in step with one metadata field that
// changed from old to now: the key is present exactly when the field is
// set, with value v.
func setIndex(b *bolt.Bucket, key []byte, old, now string, v []byte) error {
	switch {
	case old == now:
		return nil
	case now == "":
		return b.Delete(key)
	default:
		return b.Put(key, v)
	}
}

// snapshotBelow finds the newest snapshot of the sheet older than the
// entry at key, which is in the snapshots index: one seek and one step
// back.
func (l *sheetLog) snapshotBelow(tx *bolt.Tx, key []byte) (bool, eventlog.SequenceID, error) {
	c := tx.Bucket(bucketSnapshots).Cursor()
	k, _ := c.Seek(key)
	if !bytes.Equal(k, key) {
		return false, 0, l.corrupt("the snapshot index misses entry %x", key[len(l.prefix):])
	}
	k, _ = c.Prev()
	if k == nil || !bytes.HasPrefix(k, l.prefix) {
		return false, 0, nil
	}
	_, id, err := splitKey(k)
	if err != nil {
		return false, 0, l.corrupt("snapshot index: %v", err)
	}
	return true, id, nil
}

// Query implements eventlog.EventLog.
func (l *sheetLog) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	var p eventlog.Page
	err := l.s.view(ctx, func(tx *bolt.Tx) error {
		h, err := l.readHead(tx)
		if err != nil {
			return err
		}
		start := h.first
		if id, ok := from.ID(); ok {
			if id < h.first || id > h.next {
				return errs.Range("query start %d is outside the log [%d, %d]", id, h.first, h.next)
			}
			start = id
		} else if from.IsSnapshot() && h.hasSnap {
			start = h.snap
		}
		end := h.next
		if id, ok := to.ID(); ok && id < end {
			end = id
		}
		p = eventlog.Page{Start: start, End: start}
		if p.LastSnapshot, err = l.lastSnapshot(tx, h, known); err != nil {
			return err
		}
		if end <= start {
			p.Complete = true
			return nil
		}
		return l.readPage(tx, &p, end)
	})
	if err != nil {
		return eventlog.Page{}, err
	}
	return p, nil
}

// readPage fills p with the entries from p.Start up to end, as many as
// the page bounds allow. The bodies are copied out of the transaction's
// pages into one buffer.
func (l *sheetLog) readPage(tx *bolt.Tx, p *eventlog.Page, end eventlog.SequenceID) error {
	opts := l.s.opts
	var (
		buf  []byte
		ends []int
		mds  []eventlog.Metadata
	)
	c := tx.Bucket(bucketEntries).Cursor()
	want := idKey(l.prefix, p.Start)
	k, v := c.Seek(want)
	for id := p.Start; id < end && len(ends) < opts.PageSize; id++ {
		if !bytes.Equal(k, want) {
			return l.corrupt("entry %d is missing", id)
		}
		body, md, err := decodeRecord(v)
		if err != nil {
			return l.corrupt("entry %d: %v", id, err)
		}
		if len(ends) > 0 && len(buf)+len(body) > opts.PageBytes {
			break
		}
		buf = append(buf, body...)
		ends = append(ends, len(buf))
		mds = append(mds, md)
		k, v = c.Next()
		want = idKey(l.prefix, id+1)
	}
	p.Entries = make([]eventlog.Entry, len(ends))
	at := 0
	for i, e := range ends {
		// The three-index slice keeps an append to one body from
		// overwriting the next.
		p.Entries[i] = eventlog.Entry{Body: buf[at:e:e], Metadata: mds[i]}
		at = e
	}
	p.End = p.Start + eventlog.SequenceID(len(ends))
	p.Complete = p.End == end
	return nil
}

// Truncate implements eventlog.EventLog.
func (l *sheetLog) Truncate(ctx context.Context, start eventlog.SequenceID) error {
	return l.s.update(ctx, 64, func(tx *bolt.Tx) (error, error) {
		h, err := l.readHead(tx)
		if err != nil {
			return err, nil
		}
		if start < h.first || start > h.next {
			return errs.Range("truncation point %d is outside the log [%d, %d]", start, h.first, h.next), nil
		}
		if start == h.first {
			return nil, nil
		}
		limit := idKey(l.prefix, start)
		// Collect the index keys first: deleting under a bbolt cursor
		// can skip keys.
		var idx [2][][]byte
		for i, name := range [][]byte{bucketPending, bucketSnapshots} {
			c := tx.Bucket(name).Cursor()
			for k, _ := c.Seek(l.prefix); k != nil && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
				idx[i] = append(idx[i], bytes.Clone(k))
			}
		}
		entries := tx.Bucket(bucketEntries)
		for id := h.first; id < start; id++ {
			if err := entries.Delete(idKey(l.prefix, id)); err != nil {
				return nil, err
			}
		}
		for i, name := range [][]byte{bucketPending, bucketSnapshots} {
			b := tx.Bucket(name)
			for _, k := range idx[i] {
				if err := b.Delete(k); err != nil {
					return nil, err
				}
			}
		}
		nh := h
		nh.first = start
		if h.hasSnap && h.snap < start {
			// Every other snapshot was older still.
			nh.hasSnap, nh.snap = false, 0
		}
		return nil, putHead(tx, l.key, nh)
	})
}
