// Package jsonscan is a small pull parser for JSON documents of known
// shape. The hot paths of the engine (replaying log entries, loading
// snapshot tiles) decode millions of tiny objects; encoding/json's
// reflection costs several times more than walking the bytes once. It is
// strict: it accepts exactly RFC 8259 JSON, and FuzzAgainstStdlib checks
// that it agrees with encoding/json on what is valid.
package jsonscan

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// MaxDepth bounds nesting when skipping values, so hostile input cannot
// exhaust the stack.
const MaxDepth = 64

// internedSet is a copy-on-write set of strings that documents repeat,
// by length: a handful of names share a length, so finding one is a few
// comparisons (cheaper than hashing it).
type internedSet struct {
	byLen [][]string
}

func (in *internedSet) find(b []byte) (string, bool) {
	if len(b) >= len(in.byLen) {
		return "", false
	}
	for _, s := range in.byLen[len(b)] {
		if s == string(b) {
			return s, true
		}
	}
	return "", false
}

var (
	internMu sync.Mutex
	interned atomic.Pointer[internedSet]
)

// Intern registers strings that the documents of a hot path repeat, such
// as member names and type tags: String (and so Object's member names)
// returns the registered copy of an equal string instead of allocating a
// new one. Packages register their names once, in an init function.
func Intern(names ...string) {
	internMu.Lock()
	defer internMu.Unlock()
	var byLen [][]string
	if old := interned.Load(); old != nil {
		for _, l := range old.byLen {
			byLen = append(byLen, slices.Clone(l))
		}
	}
	for _, n := range names {
		for len(byLen) <= len(n) {
			byLen = append(byLen, nil)
		}
		if !slices.Contains(byLen[len(n)], n) {
			byLen[len(n)] = append(byLen[len(n)], n)
		}
	}
	interned.Store(&internedSet{byLen: byLen})
}

// SyntaxError reports malformed JSON at a byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// Scanner reads one JSON document from a byte slice.
type Scanner struct {
	data []byte
	pos  int
}

// New returns a scanner over data.
func New(data []byte) *Scanner { return &Scanner{data: data} }

// Reset makes s scan data from the start.
func (s *Scanner) Reset(data []byte) { s.data, s.pos = data, 0 }

func (s *Scanner) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf(format, args...)}
}

func (s *Scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// Peek returns the first byte of the next value after white space, or 0
// at the end of input.
func (s *Scanner) Peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// End checks that only white space remains.
func (s *Scanner) End() error {
	s.ws()
	if s.pos != len(s.data) {
		return s.errorf("unexpected data after the value")
	}
	return nil
}

// Object reads an object, calling member for each key with the scanner
// positioned at the member's value; member must consume the value (read it
// or Skip it). Duplicate keys are the callback's business.
func (s *Scanner) Object(member func(key string) error) error {
	return s.object(func() error {
		key, err := s.String()
		if err != nil {
			return err
		}
		if err := s.colon(); err != nil {
			return err
		}
		return member(key)
	})
}

// ObjectKeys is Object with each key as bytes that alias the input (or,
// for a key with escapes, a fresh copy): valid only during the call, and
// never allocated for a plain key. For objects with many distinct keys
// (a snapshot tile's cell references) that are parsed, not kept.
func (s *Scanner) ObjectKeys(member func(key []byte) error) error {
	return s.object(func() error {
		raw, plain, err := s.stringToken()
		if err != nil {
			return err
		}
		key := raw[1 : len(raw)-1]
		if !plain {
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return s.errorf("bad string: %v", err)
			}
			key = []byte(v)
		}
		if err := s.colon(); err != nil {
			return err
		}
		return member(key)
	})
}

// colon reads the ':' after a member name.
func (s *Scanner) colon() error {
	if s.Peek() != ':' {
		return s.errorf("expected ':' after member name")
	}
	s.pos++
	return nil
}

// object reads an object's braces and commas; key reads one member.
func (s *Scanner) object(key func() error) error {
	if s.Peek() != '{' {
		return s.errorf("expected an object")
	}
	s.pos++
	if s.Peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.Peek() != '"' {
			return s.errorf("expected a member name")
		}
		if err := key(); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or '}' in object")
		}
	}
}

// String reads a string value (or member name). A string registered
// with Intern is returned as the registered copy, without allocating.
func (s *Scanner) String() (string, error) {
	raw, plain, err := s.stringToken()
	if err != nil {
		return "", err
	}
	if plain {
		b := raw[1 : len(raw)-1]
		if in := interned.Load(); in != nil {
			if v, ok := in.find(b); ok {
				return v, nil
			}
		}
		return string(b), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", s.errorf("bad string: %v", err)
	}
	return v, nil
}

// stringToken returns the quoted token and whether it needs no unescaping
// (no backslash, valid UTF-8).
func (s *Scanner) stringToken() (raw []byte, plain bool, err error) {
	if s.Peek() != '"' {
		return nil, false, s.errorf("expected a string")
	}
	start := s.pos
	s.pos++
	plain = true
	ascii := true
	for s.pos < len(s.data) {
		// Runs of plain ASCII, the bulk of every string, one table
		// lookup a byte.
		for s.pos < len(s.data) && plainASCII[s.data[s.pos]] {
			s.pos++
		}
		if s.pos >= len(s.data) {
			break
		}
		c := s.data[s.pos]
		switch {
		case c >= 0x20 && c != '"' && c != '\\':
			// The common case first; only a string with bytes beyond
			// ASCII needs its UTF-8 checked.
			ascii = ascii && c < utf8.RuneSelf
			s.pos++
		case c == '"':
			s.pos++
			raw = s.data[start:s.pos]
			if plain && !ascii && !utf8.Valid(raw) {
				plain = false
			}
			return raw, plain, nil
		case c == '\\':
			plain = false
			if s.pos+1 >= len(s.data) {
				return nil, false, s.errorf("unterminated escape")
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					return nil, false, s.errorf("short \\u escape")
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if !isHex(h) {
						return nil, false, s.errorf("bad \\u escape")
					}
				}
				s.pos += 6
			default:
				return nil, false, s.errorf("bad escape")
			}
		default: // c < 0x20
			return nil, false, s.errorf("control character in string")
		}
	}
	return nil, false, s.errorf("unterminated string")
}

// plainASCII marks the bytes a string holds as they are: printable
// ASCII but the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// NumberToken reads a number and returns its text.
func (s *Scanner) NumberToken() ([]byte, error) {
	s.ws()
	start := s.pos
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return nil, s.errorf("expected a number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			return nil, s.errorf("expected a digit after '.'")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			s.pos = i
			return nil, s.errorf("expected a digit in the exponent")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return d[start:i], nil
}

// ErrNotFinite is returned for numbers outside float64's range.
var ErrNotFinite = errors.New("number is out of the range of a 64-bit float")

// Float reads a number as a finite float64.
func (s *Scanner) Float() (float64, error) {
	tok, err := s.NumberToken()
	if err != nil {
		return 0, err
	}
	if f, ok := smallInteger(tok); ok {
		return f, nil
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return 0, ErrNotFinite
	}
	return f, nil
}

// smallInteger reads a number token of at most 15 digits and no fraction
// or exponent (exact in a float64): most numbers of a sheet, read without
// strconv.
func smallInteger(tok []byte) (float64, bool) {
	neg := len(tok) > 0 && tok[0] == '-'
	digits := tok
	if neg {
		digits = tok[1:]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		return -float64(n), true
	}
	return float64(n), true
}

// Literal reads true, false or null and returns it.
func (s *Scanner) Literal() (string, error) {
	s.ws()
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
			s.pos += len(lit)
			return lit, nil
		}
	}
	return "", s.errorf("expected true, false or null")
}

// Skip reads and discards one value of any kind.
func (s *Scanner) Skip() error { return s.skip(0) }

// Value reads one value of any kind and returns its bytes, which alias
// the input: a member or element kept for later decoding without a copy.
func (s *Scanner) Value() ([]byte, error) {
	s.ws()
	start := s.pos
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

// Array reads an array, calling elem with the scanner positioned at each
// element; elem must consume it (read it or Skip it).
func (s *Scanner) Array(elem func() error) error {
	if s.Peek() != '[' {
		return s.errorf("expected an array")
	}
	s.pos++
	if s.Peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or ']' in array")
		}
	}
}

func (s *Scanner) skip(depth int) error {
	if depth > MaxDepth {
		return s.errorf("nesting deeper than %d", MaxDepth)
	}
	switch c := s.Peek(); {
	case c == '{':
		return s.Object(func(string) error { return s.skip(depth + 1) })
	case c == '[':
		return s.Array(func() error { return s.skip(depth + 1) })
	case c == '"':
		_, _, err := s.stringToken()
		return err
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.NumberToken()
		return err
	default:
		_, err := s.Literal()
		return err
	}
}

// Valid reports whether data is exactly one JSON value.
func Valid(data []byte) bool {
	s := New(data)
	return s.Skip() == nil && s.End() == nil
}
