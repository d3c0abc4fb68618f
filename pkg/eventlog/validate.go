package eventlog

import (
	"encoding/binary"
	"math/bits"
)

// Every append of every backend validates each body, so ValidateEntry
// runs once per entry written: on a bulk load it was a third of the
// engine's write path. plainBody answers the common case in one pass
// over the bytes, with no allocation and no callback; whatever it is not
// sure of (an error, an escaped member name, deep nesting) goes to
// validateEntry, the scanner-based check that gives the errors their
// messages. FuzzPlainBody checks that plainBody accepts nothing that
// validateEntry refuses.

// plainDepth is the nesting plainBody follows; deeper documents are
// left to validateEntry, whose limit (jsonscan.MaxDepth) is higher.
const plainDepth = 32

// plainBody reports whether body certainly passes validateEntry: a JSON
// object with a non-empty string "type" member (the last one, when
// there are several) and no metadata member, whose member names have no
// escapes and no bytes beyond ASCII, nested at most plainDepth deep. A
// false result says nothing.
func plainBody(b []byte) bool {
	i := past(b, 0, '{')
	typed := false
	for i >= 0 {
		// A member name, whose opening quote past has read.
		if i = past(b, i, '"'); i < 0 {
			return false // also {}: it has no "type"
		}
		// Most member names end within eight plain bytes: one word,
		// and no call.
		end, flags := 0, uint8(0)
		if i+8 <= len(b) {
			if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				if k := i + bits.TrailingZeros64(m)>>3; b[k] == '"' {
					end = k + 1
				}
			}
		}
		if end == 0 {
			if end, flags = scanString(b, i-1); flags != 0 {
				return false
			}
		}
		key := b[i : end-1]
		if i = past(b, end, ':'); i < 0 {
			return false
		}
		switch string(key) {
		case "snapshot", "history", "pending":
			return false
		}
		isType := string(key) == "type"
		if i = skipSpace(b, i); i >= len(b) {
			return false
		}
		// Scalars inline; skipValue for the rest.
		switch c := b[i]; {
		case c == '"':
			end, flags = scanString(b, i)
			if flags&strBad != 0 || isType && flags != 0 {
				return false
			}
			if isType {
				typed = end-i > 2
			}
			i = end
		case isType:
			return false
		case c-'1' < 9:
			// Most numbers are short integers: their digits, then what
			// ends the member.
			j := i + 1
			for j < len(b) && b[j]-'0' < 10 {
				j++
			}
			if j < len(b) && (b[j] == ',' || b[j] == '}') {
				i = j
			} else {
				i = skipNumber(b, i)
			}
		case c == '-' || c == '0':
			i = skipNumber(b, i)
		default:
			i = skipValue(b, i)
		}
		if i < 0 {
			return false
		}
		if i = skipSpace(b, i); i < len(b) && b[i] == '}' {
			return typed && skipSpace(b, i+1) == len(b)
		}
		i = past(b, i, ',')
	}
	return false
}

// past returns the index after the byte c that starts b[i:] after white
// space, or -1.
func past(b []byte, i int, c byte) int {
	if i < len(b) && b[i] == c {
		return i + 1 // the common case: no white space
	}
	if i = skipSpace(b, i); i < len(b) && b[i] == c {
		return i + 1
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' {
		return i // the common case: no white space at all
	}
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// Flags of scanString.
const (
	strBad     = 1 << iota // not a valid string token
	strEscaped             // holds an escape
	strWide                // holds bytes beyond ASCII
)

// scanString reads the string token starting at b[i] (a quote) and
// returns the index after its closing quote, and what it holds.
func scanString(b []byte, i int) (end int, flags uint8) {
	i++
	// Most strings (member names, short values) end within eight bytes:
	// one word, and no call.
	if i+8 <= len(b) {
		m := specialBytes(binary.LittleEndian.Uint64(b[i:]))
		if m == 0 {
			i += 8
		} else if i += bits.TrailingZeros64(m) >> 3; b[i] == '"' {
			return i + 1, 0
		}
	}
	for {
		if i = nextSpecial(b, i); i >= len(b) {
			return 0, strBad
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags
		case c == '\\':
			flags |= strEscaped
			if i+1 >= len(b) {
				return 0, strBad
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, strBad
				}
				i += 6
			default:
				return 0, strBad
			}
		case c < 0x20:
			return 0, strBad
		default:
			flags |= strWide
			i++
		}
	}
}

// nextSpecial returns the index of the first byte from b[i] on that is
// not plainByte, or len(b): eight bytes at a time, then byte by byte.
func nextSpecial(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(b) && plainByte[b[i]] {
		i++
	}
	return i
}

// specialBytes sets the top bit of the lowest byte of w (read little
// endian) that is not plainByte, if any: a byte below 0x20 or from 0x80
// on, a quote or a backslash. Each test is the classic carry trick:
// (x - 0x01..) &^ x flags the bytes of x that are zero (with 0x20..,
// below 0x20). A borrow can flag bytes above a true one, never below it,
// so the lowest flagged byte is always a true one (and bits above it
// say nothing).
func specialBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (w - 0x20*ones) &^ w
	quote, backslash := w^('"'*ones), w^('\\'*ones)
	zero := (quote-ones)&^quote | (backslash-ones)&^backslash
	return (below | zero | w) & highs
}

// plainByte marks the bytes a string holds as they are: printable ASCII
// but the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipValue reads the value starting at b[i] and returns the index after
// it, or -1 when it is not valid JSON or nests deeper than plainDepth.
// Containers are followed with a stack of their closing brackets rather
// than by recursion.
func skipValue(b []byte, i int) int {
	var stack [plainDepth]byte
	depth := 0
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth == plainDepth {
				return -1
			}
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			stack[depth] = closer
			depth++
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == closer {
				i++
				depth--
				break
			}
			if closer == '}' {
				if i = skipMemberName(b, i); i < 0 {
					return -1
				}
			}
			continue
		case c == '"':
			end, flags := scanString(b, i)
			if flags&strBad != 0 {
				return -1
			}
			i = end
		case c == '-' || '0' <= c && c <= '9':
			if i = skipNumber(b, i); i < 0 {
				return -1
			}
		case c == 't':
			if i = skipLiteral(b, i, "true"); i < 0 {
				return -1
			}
		case c == 'f':
			if i = skipLiteral(b, i, "false"); i < 0 {
				return -1
			}
		case c == 'n':
			if i = skipLiteral(b, i, "null"); i < 0 {
				return -1
			}
		default:
			return -1
		}
		// A value ended at b[i-1]: close containers or go on to the next
		// element.
		for {
			if depth == 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == stack[depth-1] {
				i++
				depth--
				continue
			}
			if b[i] != ',' {
				return -1
			}
			i = skipSpace(b, i+1)
			if stack[depth-1] == '}' {
				if i = skipMemberName(b, i); i < 0 {
					return -1
				}
			}
			break
		}
	}
}

// skipMemberName reads `"name" :` and the white space after it, and
// returns the index of the member's value. Like the entry's own member
// names, a name with escapes or bytes beyond ASCII is left to
// validateEntry.
func skipMemberName(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	end, flags := scanString(b, i)
	if flags != 0 {
		return -1 // validateEntry's scanner unescapes it: let it decide
	}
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// skipNumber reads a number as RFC 8259 writes it.
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case c-'1' < 9:
		i = skipDigits(b, i+1)
	default:
		return -1
	}
	if i >= len(b) || b[i] != '.' && b[i]|0x20 != 'e' {
		return i // the common case: an integer
	}
	if b[i] == '.' {
		if i++; i >= len(b) || b[i]-'0' >= 10 {
			return -1
		}
		i = skipDigits(b, i)
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i]-'0' >= 10 {
			return -1
		}
		i = skipDigits(b, i)
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i]-'0' < 10 {
		i++
	}
	return i
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}
