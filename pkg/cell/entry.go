package cell

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/sheetlog/sheetlog/internal/jsonscan"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// EntryType is the type tag of the only spreadsheet entry.
const EntryType = "SetCellValueAndFormat"

// MaxCoord is the largest valid row or column.
const MaxCoord = 1<<31 - 1

// Entry is a SetCellValueAndFormat log entry: it replaces the cell at
// (Row, Column). An entry whose Cell is empty clears the cell.
type Entry struct {
	Row    uint32
	Column uint32
	Cell
}

// AppendJSON appends the entry's log body.
func (e Entry) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":"SetCellValueAndFormat","row":`...)
	dst = appendUint(dst, uint64(e.Row))
	dst = append(dst, `,"column":`...)
	dst = appendUint(dst, uint64(e.Column))
	dst = e.Cell.appendMembers(dst, true)
	return append(dst, '}')
}

// Validate checks the coordinates.
func (e Entry) Validate() error {
	if e.Row > MaxCoord || e.Column > MaxCoord {
		return errs.Validation("row and column must be in 0..%d", MaxCoord)
	}
	return nil
}

func init() {
	// Replaying a log decodes these strings millions of times; interned,
	// they cost no allocation.
	jsonscan.Intern("type", "row", "column", "value", "format", "pending", "snapshot", "history", EntryType, "CellError")
	jsonscan.Intern(ErrorCodes...)
}

// Mode selects how DecodeEntry treats members it does not know.
type Mode uint8

const (
	// Strict is for what clients send: exactly the members of the
	// format, each once, and nothing else.
	Strict Mode = iota
	// Lenient is for what the log holds: unknown members are ignored
	// (they must survive a round trip, and newer writers may add some).
	Lenient
)

// ErrUnknownType is wrapped by the ValidationError of an entry whose type
// is not EntryType, so that readers can skip entry types they do not know.
var ErrUnknownType = errors.New("unknown entry type")

type unknownTypeError struct {
	errs.ValidationError
}

func (e *unknownTypeError) Unwrap() []error { return []error{&e.ValidationError, ErrUnknownType} }

// DecodeEntry decodes a SetCellValueAndFormat body. Every error is an
// *errs.ValidationError whose message says what is wrong.
func DecodeEntry(body []byte, mode Mode) (Entry, error) {
	if e, ok := decodePlain(body); ok {
		return e, nil
	}
	return decodeEntry(body, mode)
}

// decodeEntry is DecodeEntry on the scanner, for every shape.
func decodeEntry(body []byte, mode Mode) (Entry, error) {
	var (
		e                Entry
		seen             uint8
		typ              string
		s                = jsonscan.New(body)
		haveRow, haveCol bool
		haveType         bool
	)
	const (
		bType = 1 << iota
		bRow
		bCol
		bValue
		bFormat
	)
	once := func(bit uint8, key string) error {
		if seen&bit != 0 && mode == Strict {
			return fmt.Errorf("member %q appears twice", key)
		}
		seen |= bit
		return nil
	}
	err := s.Object(func(key string) error {
		var err error
		switch key {
		case "type":
			if err = once(bType, key); err == nil {
				typ, err = s.String()
				haveType = true
			}
		case "row":
			if err = once(bRow, key); err == nil {
				e.Row, err = coordinate(s, key)
				haveRow = true
			}
		case "column":
			if err = once(bCol, key); err == nil {
				e.Column, err = coordinate(s, key)
				haveCol = true
			}
		case "value":
			if err = once(bValue, key); err == nil {
				e.Value, err = decodeValue(s, mode)
			}
		case "format":
			if err = once(bFormat, key); err == nil {
				e.Format, e.HasFormat, err = decodeFormat(s)
			}
		case "pending", "snapshot", "history":
			if mode == Strict {
				return fmt.Errorf("member %q is metadata that only the server sets", key)
			}
			err = s.Skip()
		default:
			if mode == Strict {
				return fmt.Errorf("unknown member %q", key)
			}
			err = s.Skip()
		}
		return err
	})
	if err == nil {
		err = s.End()
	}
	switch {
	case err != nil:
		return Entry{}, errs.Validation("invalid SetCellValueAndFormat entry: %v", err)
	case !haveType:
		return Entry{}, errs.Validation(`invalid entry: no "type" member`)
	case typ != EntryType:
		return Entry{}, &unknownTypeError{errs.ValidationError{Message: fmt.Sprintf("entry type %q is not %q", typ, EntryType)}}
	case !haveRow || !haveCol:
		return Entry{}, errs.Validation(`invalid SetCellValueAndFormat entry: "row" and "column" are required`)
	}
	return e, nil
}

// coordinate reads a row or column: a JSON integer (no sign, fraction or
// exponent) in 0..MaxCoord.
func coordinate(s *jsonscan.Scanner, key string) (uint32, error) {
	if c := s.Peek(); c < '0' || c > '9' {
		if c == '-' {
			return 0, fmt.Errorf("%q must not be negative", key)
		}
		return 0, fmt.Errorf("%q must be an integer", key)
	}
	tok, err := s.NumberToken()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(tok), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q must be an integer without fraction or exponent, got %s", key, tok)
	}
	if n > MaxCoord {
		return 0, fmt.Errorf("%q must be at most %d, got %d", key, MaxCoord, n)
	}
	return uint32(n), nil
}

func decodeFormat(s *jsonscan.Scanner) (string, bool, error) {
	switch s.Peek() {
	case '"':
		f, err := s.String()
		return f, err == nil, err
	case 'n':
		if lit, err := s.Literal(); err != nil || lit != "null" {
			return "", false, errors.New(`"format" must be a string or null`)
		}
		return "", false, nil
	}
	return "", false, errors.New(`"format" must be a string or null`)
}

// decodeValue reads a cell value: string, finite number, true, false,
// null or a CellError object.
func decodeValue(s *jsonscan.Scanner, mode Mode) (Value, error) {
	switch c := s.Peek(); {
	case c == '"':
		str, err := s.String()
		return StringValue(str), err
	case c == '-' || '0' <= c && c <= '9':
		f, err := s.Float()
		if err != nil {
			return Value{}, fmt.Errorf(`"value": %w`, err)
		}
		return numberValue(f), nil
	case c == '{':
		return decodeCellError(s, mode)
	case c == 't' || c == 'f' || c == 'n':
		lit, err := s.Literal()
		switch lit {
		case "true":
			return BoolValue(true), nil
		case "false":
			return BoolValue(false), nil
		case "null":
			return NullValue(), nil
		}
		return Value{}, err
	}
	return Value{}, errors.New(`"value" must be a string, a finite number, a boolean, null or a CellError`)
}

func decodeCellError(s *jsonscan.Scanner, mode Mode) (Value, error) {
	var typ, code string
	var haveType, haveCode bool
	err := s.Object(func(key string) error {
		var err error
		switch key {
		case "type":
			if haveType && mode == Strict {
				return errors.New(`CellError member "type" appears twice`)
			}
			typ, err = s.String()
			haveType = true
		case "value":
			if haveCode && mode == Strict {
				return errors.New(`CellError member "value" appears twice`)
			}
			if s.Peek() != '"' {
				return errors.New(`CellError "value" must be an error code string`)
			}
			code, err = s.String()
			haveCode = true
		default:
			if mode == Strict {
				return fmt.Errorf("CellError has unknown member %q; it has exactly \"type\" and \"value\"", key)
			}
			err = s.Skip()
		}
		return err
	})
	if err != nil {
		return Value{}, err
	}
	if typ != "CellError" || !haveCode {
		return Value{}, errors.New(`an object "value" must be {"type":"CellError","value":CODE}`)
	}
	return ErrorValue(code)
}

// DecodeCell decodes a tile's cell object {"value":V,"format":F}. Unknown
// members are ignored; {} is an empty cell.
func DecodeCell(s *jsonscan.Scanner) (Cell, error) {
	var c Cell
	err := s.Object(func(key string) error {
		var err error
		switch key {
		case "value":
			c.Value, err = decodeValue(s, Lenient)
		case "format":
			c.Format, c.HasFormat, err = decodeFormat(s)
		default:
			err = s.Skip()
		}
		return err
	})
	return c, err
}
