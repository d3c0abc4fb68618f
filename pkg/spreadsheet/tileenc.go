package spreadsheet

import "sync"

// tileEncoding is the blob of a tile as the worker last encoded it, kept
// until the next snapshot so that it re-encodes only the rows changed
// since. A sheet is mostly filled row by row: the tile being filled is
// dirty at every snapshot, but only gains rows, and encoding it whole
// each time cost more than the entries that changed it.
type tileEncoding struct {
	// t is the tile encoded: a tile emptied and made again is another
	// one, whose rows this encoding knows nothing of.
	t *tile
	// buf holds the opening brace and the members of the rows encoded,
	// without the closing brace; ends[i] is len(buf) after rows[i].
	buf  []byte
	ends []int
}

// encodingBytes is what a kept encoding holds besides its buffers.
const encodingBytes = 64

// maxKeptEncodingBytes bounds the encodings a worker keeps between
// snapshots. Only the tiles a snapshot encoded are kept, which is few
// on a sheet being edited; a snapshot that encodes a whole large sheet
// (the first one, or one after a reload in another tile format) would
// otherwise keep a second copy of it.
const maxKeptEncodingBytes = 8 << 20

func (enc *tileEncoding) bytes() int64 {
	return encodingBytes + int64(cap(enc.buf)) + int64(cap(enc.ends))*8
}

// encodeKept returns the blob of t, encoding only the rows changed since enc
// last encoded t, and keeps the result in enc. The blob aliases enc's
// buffer: it is valid until the next encode.
func (g *grid) encodeKept(enc *tileEncoding, t *tile) []byte {
	keep := 0
	if enc.t == t {
		keep = min(int(t.unchanged), len(enc.ends))
	}
	enc.t = t
	if keep == 0 {
		if hint := g.encodedSizeHint(t); cap(enc.buf) < hint {
			enc.buf = make([]byte, 0, hint)
		}
		enc.buf = append(enc.buf[:0], '{')
	} else {
		enc.buf = enc.buf[:enc.ends[keep-1]]
	}
	enc.ends = enc.ends[:keep]
	for ri := keep; ri < len(t.rows); ri++ {
		enc.buf = g.appendRowMembers(enc.buf, &t.rows[ri], len(enc.buf) > 1)
		enc.ends = append(enc.ends, len(enc.buf))
	}
	t.unchanged = uint32(len(t.rows))
	// The brace lies past the last end: the next encode cuts it off.
	return append(enc.buf, '}')
}

// encodingBuffers recycle the buffers of encodings that are dropped,
// for the next ones: a tile being filled is tens of kilobytes.
var encodingBuffers = sync.Pool{New: func() any { return new(tileEncoding) }}

func newTileEncoding() *tileEncoding {
	return encodingBuffers.Get().(*tileEncoding)
}

func dropTileEncoding(enc *tileEncoding) {
	enc.t = nil
	enc.buf, enc.ends = enc.buf[:0], enc.ends[:0]
	encodingBuffers.Put(enc)
}
