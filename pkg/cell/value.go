// Package cell is the spreadsheet's data model on the wire: cell values,
// formats and the SetCellValueAndFormat log entry, exactly as
// snapshot-format.md defines them, with a strict decoder for what clients
// send and a lenient one for what the log and older snapshots hold.
package cell

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Kind is the kind of a cell value.
type Kind uint8

const (
	// Absent: the cell has no value (distinct from Null).
	Absent Kind = iota
	Null
	Bool
	Number
	String
	// Error: a cell error such as #DIV/0!.
	Error
)

func (k Kind) String() string {
	switch k {
	case Absent:
		return "absent"
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Error:
		return "error"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ErrorCodes are the cell error codes of the format.
var ErrorCodes = []string{
	"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
	"#GETTING_DATA", "#SPILL!", "#UNKNOWN!", "#FIELD!", "#CALC!",
}

var errorCodeSet = func() map[string]bool {
	m := make(map[string]bool, len(ErrorCodes))
	for _, c := range ErrorCodes {
		m[c] = true
	}
	return m
}()

// IsErrorCode reports whether code is one of ErrorCodes.
func IsErrorCode(code string) bool { return errorCodeSet[code] }

// Value is a cell value. The zero Value is absent.
type Value struct {
	kind Kind
	b    bool
	n    float64
	s    string // the string, or the error code
}

// NullValue, BoolValue and StringValue build values of those kinds.
func NullValue() Value             { return Value{kind: Null} }
func BoolValue(b bool) Value       { return Value{kind: Bool, b: b} }
func StringValue(s string) Value   { return Value{kind: String, s: s} }
func (v Value) Kind() Kind         { return v.kind }
func (v Value) IsAbsent() bool     { return v.kind == Absent }
func (v Value) BoolVal() bool      { return v.b }
func (v Value) NumberVal() float64 { return v.n }

// StringVal is the string of a String value or the code of an Error.
func (v Value) StringVal() string { return v.s }

// NumberValue builds a number; NaN and infinities are not values. -0 is
// 0: JSON readers and the TypeScript engine do not tell them apart.
func NumberValue(f float64) (Value, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}, fmt.Errorf("cell numbers must be finite, got %v", f)
	}
	return numberValue(f), nil
}

func numberValue(f float64) Value {
	if f == 0 {
		f = 0 // -0 == 0, so this drops the sign
	}
	return Value{kind: Number, n: f}
}

// ErrorValue builds a cell error with one of ErrorCodes.
func ErrorValue(code string) (Value, error) {
	if !IsErrorCode(code) {
		return Value{}, fmt.Errorf("unknown cell error code %q", code)
	}
	return Value{kind: Error, s: code}, nil
}

// Equal reports whether two values are the same JSON value (numbers
// compare by value, so 0 equals -0 as in JSON readers).
func (v Value) Equal(o Value) bool {
	if v.kind != o.kind {
		return false
	}
	switch v.kind {
	case Bool:
		return v.b == o.b
	case Number:
		return v.n == o.n
	case String, Error:
		return v.s == o.s
	}
	return true
}

func (v Value) String() string { return string(v.AppendJSON(nil)) }

// AppendJSON appends the value's JSON; an absent value appends nothing.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case Null:
		return append(dst, "null"...)
	case Bool:
		return strconv.AppendBool(dst, v.b)
	case Number:
		return AppendNumber(dst, v.n)
	case String:
		return AppendString(dst, v.s)
	case Error:
		dst = append(dst, `{"type":"CellError","value":`...)
		dst = AppendString(dst, v.s)
		return append(dst, '}')
	}
	return dst
}

// Cell is a value and an optional format. The zero Cell is empty.
type Cell struct {
	Value     Value
	Format    string
	HasFormat bool
}

// WithFormat returns c with format f.
func (c Cell) WithFormat(f string) Cell { c.Format, c.HasFormat = f, true; return c }

// ValidUTF8 returns c with the invalid UTF-8 of its string value and
// format replaced as AppendString writes it (each invalid byte becomes
// U+FFFD), so that a cell kept in memory equals the cell read back from
// its JSON.
func (c Cell) ValidUTF8() Cell {
	if c.Value.kind != String && c.Format == "" {
		return c // most cells: nothing to check (and inlined, no call)
	}
	return c.validStrings()
}

func (c Cell) validStrings() Cell {
	if c.Value.kind == String {
		c.Value.s = validUTF8(c.Value.s)
	}
	c.Format = validUTF8(c.Format)
	return c
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// Empty reports whether the cell has neither a value nor a format.
func (c Cell) Empty() bool { return c.Value.kind == Absent && !c.HasFormat }

// Equal compares value and format.
func (c Cell) Equal(o Cell) bool {
	return c.Value.Equal(o.Value) && c.HasFormat == o.HasFormat && c.Format == o.Format
}

func (c Cell) String() string { return string(c.AppendJSON(nil)) }

// AppendJSON appends {"value":V,"format":F} with absent members omitted
// ({} for an empty cell): the cell object of snapshot tiles.
func (c Cell) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	dst = c.appendMembers(dst, false)
	return append(dst, '}')
}

// appendMembers appends the value and format members, with a leading comma
// when comma is set and a member is written.
func (c Cell) appendMembers(dst []byte, comma bool) []byte {
	if c.Value.kind != Absent {
		if comma {
			dst = append(dst, ',')
		}
		dst = append(dst, `"value":`...)
		dst = c.Value.AppendJSON(dst)
		comma = true
	}
	if c.HasFormat {
		if comma {
			dst = append(dst, ',')
		}
		dst = append(dst, `"format":`...)
		dst = AppendString(dst, c.Format)
	}
	return dst
}

// AppendNumber appends f as JSON the way JavaScript prints numbers, so
// both engines write the same bytes: plain decimal, with an exponent only
// below 1e-6 or from 1e21, and -0 as 0.
func AppendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	// Whole numbers below 2^53 print as integers; most cells hold one,
	// and integer formatting is several times cheaper.
	if i := int64(f); float64(i) == f && i > -1<<53 && i < 1<<53 {
		if i < 0 {
			dst = append(dst, '-')
			i = -i
		}
		return appendUint(dst, uint64(i))
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 where JavaScript writes e-7.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as in encoding/json, so the output is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript source.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendUint appends n in decimal. Every entry writes two or three
// integers (row, column, most values): digits into a small array, then
// one append, costs less than strconv's general path. Below 10,000 (most
// rows and columns) the digits are appended one by one: appending the
// array's tail is a call to memmove, which costs more than the digits.
func appendUint(dst []byte, n uint64) []byte {
	switch {
	case n < 10:
		return append(dst, byte('0'+n))
	case n < 100:
		return append(dst, byte('0'+n/10), byte('0'+n%10))
	case n < 1000:
		return append(dst, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10))
	case n < 10000:
		return append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
	}
	var b [20]byte
	i := len(b)
	for n >= 10 {
		q := n / 10
		i--
		b[i] = byte('0' + n - q*10)
		n = q
	}
	i--
	b[i] = byte('0' + n)
	return append(dst, b[i:]...)
}
