// Package a1 converts between cell coordinates and A1-style references:
// column letters in bijective base 26 (A..Z, AA..AZ, BA.., ZZ, AAA..)
// followed by the 1-based row number. Row 0, column 0 is "A1".
//
// Coordinates are uint32 so that every reference the snapshot format can
// produce, including tile-relative ones, converts both ways; whether a
// coordinate is a valid cell (0..2^31-1) is the caller's rule.
package a1

import (
	"fmt"
	"strconv"
)

// MaxColumnLetters is the length of the column part of the largest uint32
// column ("MWLQKWV").
const MaxColumnLetters = 7

// AppendColumn appends the letters of column col to dst.
func AppendColumn(dst []byte, col uint32) []byte {
	var buf [MaxColumnLetters]byte
	i := len(buf)
	n := uint64(col) + 1
	for n > 0 {
		n--
		i--
		buf[i] = byte('A' + n%26)
		n /= 26
	}
	return append(dst, buf[i:]...)
}

// Append appends the reference of (row, col) to dst.
func Append(dst []byte, row, col uint32) []byte {
	dst = AppendColumn(dst, col)
	return strconv.AppendUint(dst, uint64(row)+1, 10)
}

// Ref returns the reference of (row, col), e.g. Ref(9, 27) == "AB10".
func Ref(row, col uint32) string {
	var buf [24]byte
	return string(Append(buf[:0], row, col))
}

// Error describes a malformed reference.
type Error struct {
	Ref    string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid cell reference %q: %s", e.Ref, e.Reason) }

// Parse returns the coordinates of a reference in canonical form:
// upper-case letters, then a row number from 1 with no sign and no leading
// zero. Anything else, or a coordinate that does not fit in uint32, is an
// *Error.
func Parse(ref string) (row, col uint32, err error) {
	return parse(ref, ref)
}

// ParseBytes is Parse of a reference held in bytes (a snapshot tile's
// keys), without making a string of it.
func ParseBytes(ref []byte) (row, col uint32, err error) {
	return parse(ref, "")
}

// parse reads ref; whole is what an error names ("": ref itself).
func parse[S ~string | ~[]byte](ref S, whole string) (row, col uint32, err error) {
	bad := func(reason string) (uint32, uint32, error) {
		if whole == "" {
			whole = string(ref)
		}
		return 0, 0, &Error{Ref: whole, Reason: reason}
	}
	i := 0
	var c uint64
	for i < len(ref) && 'A' <= ref[i] && ref[i] <= 'Z' {
		c = c*26 + uint64(ref[i]-'A'+1)
		if c-1 > uint64(^uint32(0)) {
			return bad("column out of range")
		}
		i++
	}
	if i == 0 {
		return bad("no column letters (A-Z)")
	}
	digits := ref[i:]
	if len(digits) == 0 {
		return bad("no row number")
	}
	if digits[0] == '0' {
		return bad("row numbers start at 1 and have no leading zero")
	}
	var r uint64
	for j := 0; j < len(digits); j++ {
		d := digits[j]
		if d < '0' || d > '9' {
			return bad(fmt.Sprintf("unexpected %q in the row number", d))
		}
		r = r*10 + uint64(d-'0')
		if r-1 > uint64(^uint32(0)) {
			return bad("row out of range")
		}
	}
	return uint32(r - 1), uint32(c - 1), nil
}

// Range is an inclusive rectangle of cells.
type Range struct {
	Row0, Col0, Row1, Col1 uint32
}

// Rows and Cols are the rectangle's dimensions; Cells is their product.
func (r Range) Rows() uint64  { return uint64(r.Row1-r.Row0) + 1 }
func (r Range) Cols() uint64  { return uint64(r.Col1-r.Col0) + 1 }
func (r Range) Cells() uint64 { return r.Rows() * r.Cols() }

// String returns the range in "A1:B2" form (a single reference when the
// range is one cell).
func (r Range) String() string {
	if r.Row0 == r.Row1 && r.Col0 == r.Col1 {
		return Ref(r.Row0, r.Col0)
	}
	return Ref(r.Row0, r.Col0) + ":" + Ref(r.Row1, r.Col1)
}

// ParseRange parses "B2" or "A1:J20". Corners may be given in any order;
// the result is normalized so that Row0 <= Row1 and Col0 <= Col1.
func ParseRange(s string) (Range, error) {
	a, b := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			a, b = s[:i], s[i+1:]
			if b == "" {
				return Range{}, &Error{Ref: s, Reason: "empty second corner"}
			}
			break
		}
	}
	r0, c0, err := parse(a, s)
	if err != nil {
		return Range{}, err
	}
	r1, c1 := r0, c0
	if b != "" {
		if r1, c1, err = parse(b, s); err != nil {
			return Range{}, err
		}
	}
	return Range{min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1)}, nil
}
