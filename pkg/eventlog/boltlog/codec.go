package boltlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Bucket names and the format marker. The marker lets a future layout
// refuse to open an old file instead of misreading it.
var (
	bucketMeta      = []byte("meta")
	bucketHeads     = []byte("heads")
	bucketEntries   = []byte("entries")
	bucketPending   = []byte("pending")
	bucketSnapshots = []byte("snapshots")

	keyFormat   = []byte("format")
	formatValue = []byte("sheetlog-eventlog-bolt/1")

	// snapshotMark is the value of a snapshots index key. bbolt does not
	// promise to tell an empty value from a missing one, so it is a byte.
	snapshotMark = []byte{1}
)

// keySep ends the sheet part of a key. sheetid.Validate allows no 0x00,
// so "a"+sep never prefixes the keys of sheet "ab".
const keySep = 0x00

// sheetPrefix is the common prefix of every key of sheet in the entries,
// pending and snapshots buckets.
func sheetPrefix(sheet string) []byte {
	p := make([]byte, 0, len(sheet)+1)
	return append(append(p, sheet...), keySep)
}

// idKey is the key of id under prefix (a sheetPrefix).
func idKey(prefix []byte, id eventlog.SequenceID) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], uint64(id))
	return k
}

// splitKey parses a key of the entries, pending or snapshots bucket.
func splitKey(k []byte) (sheet string, id eventlog.SequenceID, err error) {
	i := bytes.IndexByte(k, keySep)
	if i <= 0 || len(k)-i-1 != 8 {
		return "", 0, fmt.Errorf("malformed key %x", k)
	}
	return string(k[:i]), eventlog.SequenceID(binary.BigEndian.Uint64(k[i+1:])), nil
}

// head is what the store keeps per sheet beside its entries.
type head struct {
	first, next eventlog.SequenceID
	// hasSnap and snap name the newest entry with a snapshot.
	hasSnap bool
	snap    eventlog.SequenceID
}

const headVersion, headLen = 1, 1 + 8 + 8 + 1 + 8

func (h head) encode() []byte {
	b := make([]byte, headLen)
	b[0] = headVersion
	binary.BigEndian.PutUint64(b[1:], uint64(h.first))
	binary.BigEndian.PutUint64(b[9:], uint64(h.next))
	if h.hasSnap {
		b[17] = 1
	}
	binary.BigEndian.PutUint64(b[18:], uint64(h.snap))
	return b
}

func decodeHead(b []byte) (head, error) {
	if len(b) != headLen || b[0] != headVersion || b[17] > 1 {
		return head{}, fmt.Errorf("malformed head record %x", b)
	}
	h := head{
		first:   eventlog.SequenceID(binary.BigEndian.Uint64(b[1:])),
		next:    eventlog.SequenceID(binary.BigEndian.Uint64(b[9:])),
		hasSnap: b[17] == 1,
		snap:    eventlog.SequenceID(binary.BigEndian.Uint64(b[18:])),
	}
	if h.first > h.next || (h.hasSnap && (h.snap < h.first || h.snap >= h.next)) {
		return head{}, fmt.Errorf("inconsistent head record first=%d next=%d snapshot=%v@%d", h.first, h.next, h.hasSnap, h.snap)
	}
	return h, nil
}

// An entry record is a version byte, the three metadata fields as
// uvarint-length-prefixed strings (snapshot, history, pending), then the
// body, byte for byte, to the end of the record.
const recordVersion = 1

func encodeRecord(body []byte, md eventlog.Metadata) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(md.Snapshot) + len(md.History) + len(md.Pending) + len(body)
	b := make([]byte, 1, n)
	b[0] = recordVersion
	for _, f := range []string{md.Snapshot, md.History, md.Pending} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return append(b, body...)
}

var errRecord = errors.New("malformed entry record")

// decodeRecord splits a record. The returned body aliases b: callers copy
// it before the transaction ends.
func decodeRecord(b []byte) (body []byte, md eventlog.Metadata, err error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, md, errRecord
	}
	rest := b[1:]
	var fields [3]string
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, md, errRecord
		}
		fields[i] = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	return rest, eventlog.Metadata{Snapshot: fields[0], History: fields[1], Pending: fields[2]}, nil
}
