package memory

import (
	"bytes"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// record is one entry of a log: where the arena keeps its body, and
// whether the log's meta map holds metadata for it. It holds no pointer,
// so the chunks of records are never scanned by the garbage collector.
type record struct {
	// chunk is the arena chunk of a small body; for a big one, the chunk
	// small bodies were being written to, so that chunk never decreases
	// along the log and a truncation frees every chunk before the first
	// remaining record's.
	chunk uint32
	// off and n locate a small body in its chunk.
	off, n  uint32
	big     bool
	hasMeta bool
}

// Sizes of the arena's chunks: the first is small (most logs of a test
// are short), each next one twice the last, up to maxChunk. A body
// larger than bigBody gets an allocation of its own instead, so a chunk
// never wastes much of its tail.
const (
	firstChunk = 256
	maxChunk   = 64 << 10
	bigBody    = maxChunk / 8
)

// arena holds a log's bodies, written once and never changed: small ones
// packed one after the other into shared chunks, big ones apart.
type arena struct {
	// chunks[i] is chunk number base+i; the last one is being filled.
	chunks [][]byte
	base   uint32
	big    map[eventlog.SequenceID][]byte
}

// add copies body, the body of the entry at id, and returns its record.
func (a *arena) add(id eventlog.SequenceID, body []byte) record {
	n := len(a.chunks)
	if len(body) > bigBody {
		if a.big == nil {
			a.big = map[eventlog.SequenceID][]byte{}
		}
		a.big[id] = bytes.Clone(body)
		return record{chunk: a.base + uint32(max(n-1, 0)), big: true}
	}
	if n == 0 || cap(a.chunks[n-1])-len(a.chunks[n-1]) < len(body) {
		size := firstChunk
		if n > 0 {
			size = min(2*cap(a.chunks[n-1]), maxChunk)
		}
		a.chunks = append(a.chunks, make([]byte, 0, max(size, len(body))))
		n++
	}
	c := &a.chunks[n-1]
	off := len(*c)
	*c = append(*c, body...)
	return record{chunk: a.base + uint32(n-1), off: uint32(off), n: uint32(len(body))}
}

// size is the length of the body of the entry at id, whose record is r.
func (a *arena) size(id eventlog.SequenceID, r *record) int {
	if r.big {
		return len(a.big[id])
	}
	return int(r.n)
}

// dropBefore frees the bodies of the entries before start, whose first
// remaining record is first (nil: none remains).
func (a *arena) dropBefore(start eventlog.SequenceID, first *record) {
	for id := range a.big {
		if id < start {
			delete(a.big, id)
		}
	}
	k := len(a.chunks)
	if first != nil {
		k = int(first.chunk - a.base)
	}
	clear(a.chunks[:k])
	a.chunks = a.chunks[k:]
	a.base += uint32(k)
}
