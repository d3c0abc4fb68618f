package fsblob

import (
	"slices"
	"strings"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// The name encoding is described in the package documentation. In short:
// a blob name becomes its "encoded form" (one byte per plain character,
// "^x" per upper-case letter, "%hh" per other byte), and the encoded form
// becomes one path segment, or, when longer than maxSegment, a chain of
// continuation directories ("~" + chunk) ending in a segment that holds
// the last maxSegment encoded bytes.
const (
	// maxSegment is the longest path segment the store creates. It stays
	// under every common file-name limit: 255 bytes (ext4, XFS, Btrfs,
	// tmpfs, APFS) and 143 (eCryptfs).
	maxSegment = 128
	// contChunk is the number of encoded bytes in a full continuation
	// segment, after its "~".
	contChunk = maxSegment - 1
	// contMark starts every continuation segment. The encoded form of a
	// name never contains it.
	contMark = '~'
	// maxEncodedLen bounds the encoded form of a valid name: 100 characters
	// of at most 4 UTF-8 bytes, each escaped in 3.
	maxEncodedLen = 3 * 4 * blobstore.MaxNameLen
)

const hexDigits = "0123456789abcdef"

// plain reports whether byte c stands for itself in an encoded name.
// Only lower-case letters are plain, so that two names never map to file
// names that differ only in case (which a case-insensitive file system
// would merge); non-ASCII bytes are escaped, so that a file system that
// normalizes Unicode cannot merge "é" and "e\u0301".
func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// encodeName returns the encoded form of name (which need not be valid).
func encodeName(name string) string {
	if isPlain(name) {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case plain(c):
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte('^')
			b.WriteByte(c - 'A' + 'a')
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	return b.String()
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			return false
		}
	}
	return true
}

// decodeName inverts encodeName. It fails on anything encodeName cannot
// produce, except that it does not check that escapes were necessary;
// callers compare encodeName(result) with the input for that.
func decodeName(e string) (string, bool) {
	if isPlain(e) {
		return e, true
	}
	b := make([]byte, 0, len(e))
	for i := 0; i < len(e); i++ {
		switch c := e[i]; {
		case plain(c):
			b = append(b, c)
		case c == '^':
			if i+1 >= len(e) || e[i+1] < 'a' || e[i+1] > 'z' {
				return "", false
			}
			b = append(b, e[i+1]-'a'+'A')
			i++
		case c == '%':
			if i+2 >= len(e) {
				return "", false
			}
			hi, lo := strings.IndexByte(hexDigits, e[i+1]), strings.IndexByte(hexDigits, e[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			b = append(b, byte(hi<<4|lo))
			i += 2
		default:
			return "", false
		}
	}
	return string(b), true
}

// segments returns the path segments that hold name, outermost first.
// Every name but the longest ones is a single segment, its encoded form.
func segments(name string) []string {
	return appendSegments(nil, name)
}

func appendSegments(dst []string, name string) []string {
	e := encodeName(name)
	if len(e) <= maxSegment {
		return append(dst, e)
	}
	// The last segment carries the last maxSegment bytes, so it is never
	// "." or ".."; the continuation segments before it carry contChunk
	// bytes each, except the first, which carries the remainder.
	rest, last := e[:len(e)-maxSegment], e[len(e)-maxSegment:]
	first := len(rest) % contChunk
	if first == 0 {
		first = contChunk
	}
	for len(rest) > 0 {
		dst = append(dst, string(contMark)+rest[:first])
		rest = rest[first:]
		first = contChunk
	}
	return append(dst, last)
}

// nameOf returns the blob name stored at the given segments (continuation
// segments with their "~", then the last segment), if they are exactly the
// segments of a valid name. Anything else found on disk is not the store's
// and is ignored.
func nameOf(segs []string) (string, bool) {
	if len(segs) == 0 {
		return "", false
	}
	var e string
	if len(segs) == 1 {
		e = segs[0]
	} else {
		var b strings.Builder
		for _, s := range segs[:len(segs)-1] {
			if len(s) < 2 || s[0] != contMark {
				return "", false
			}
			b.WriteString(s[1:])
		}
		b.WriteString(segs[len(segs)-1])
		e = b.String()
	}
	if len(e) > maxEncodedLen {
		return "", false
	}
	name, ok := decodeName(e)
	if !ok || blobstore.ValidateName(name) != nil {
		return "", false
	}
	if !slices.Equal(segments(name), segs) {
		return "", false
	}
	return name, true
}
