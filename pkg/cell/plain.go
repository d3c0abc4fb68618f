package cell

// Replaying a log decodes every entry the engine ever wrote, and nearly
// all of them have the one shape AppendJSON writes: the type, row and
// column, then an optional value that is a number, a plain string or a
// literal, and an optional plain format, without white space.
// decodePlain reads that shape in one pass over the bytes, with no
// callback; anything else (escapes, bytes beyond ASCII, a fraction, a
// CellError, another order) is left to the scanner, which gives errors
// their messages. FuzzDecodePlain checks that both agree.

const plainPrefix = `{"type":"SetCellValueAndFormat","row":`

// decodePlain decodes body if it has the common shape, and reports
// whether it did.
func decodePlain(body []byte) (e Entry, ok bool) {
	if len(body) < len(plainPrefix) || string(body[:len(plainPrefix)]) != plainPrefix {
		return Entry{}, false
	}
	i := len(plainPrefix)
	if e.Row, i = plainCoord(body, i); i < 0 || !hasAt(body, i, `,"column":`) {
		return Entry{}, false
	}
	if e.Column, i = plainCoord(body, i+len(`,"column":`)); i < 0 {
		return Entry{}, false
	}
	if hasAt(body, i, `,"value":`) {
		if e.Value, i = plainValue(body, i+len(`,"value":`)); i < 0 {
			return Entry{}, false
		}
	}
	if hasAt(body, i, `,"format":`) {
		var f string
		if f, i = plainString(body, i+len(`,"format":`)); i < 0 {
			return Entry{}, false
		}
		e.Cell = e.Cell.WithFormat(f)
	}
	if i != len(body)-1 || body[i] != '}' {
		return Entry{}, false
	}
	return e, true
}

func hasAt(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// plainCoord reads a row or column: digits without a leading zero, at
// most MaxCoord. It returns the index after it, or -1.
func plainCoord(b []byte, i int) (uint32, int) {
	start := i
	var n uint64
	for i < len(b) && '0' <= b[i] && b[i] <= '9' && i-start < 10 {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	if i == start || b[start] == '0' && i-start > 1 || n > MaxCoord || i < len(b) && '0' <= b[i] && b[i] <= '9' {
		return 0, -1
	}
	return uint32(n), i
}

// plainValue reads an integer of at most 15 digits (exact in a float64),
// a plain string, true, false or null.
func plainValue(b []byte, i int) (Value, int) {
	if i >= len(b) {
		return Value{}, -1
	}
	switch c := b[i]; {
	case c == '"':
		s, end := plainString(b, i)
		return StringValue(s), end
	case c == '-' || '0' <= c && c <= '9':
		neg := c == '-'
		if neg {
			i++
		}
		start := i
		var n int64
		for i < len(b) && '0' <= b[i] && b[i] <= '9' && i-start < 15 {
			n = n*10 + int64(b[i]-'0')
			i++
		}
		if i == start || b[start] == '0' && i-start > 1 || i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E' || '0' <= b[i] && b[i] <= '9') {
			return Value{}, -1
		}
		f := float64(n)
		if neg {
			f = -f
		}
		return numberValue(f), i
	case hasAt(b, i, "true"):
		return BoolValue(true), i + 4
	case hasAt(b, i, "false"):
		return BoolValue(false), i + 5
	case hasAt(b, i, "null"):
		return NullValue(), i + 4
	}
	return Value{}, -1
}

// plainString reads a string of printable ASCII without escapes.
func plainString(b []byte, i int) (string, int) {
	if i >= len(b) || b[i] != '"' {
		return "", -1
	}
	start := i + 1
	for i = start; i < len(b) && b[i] != '"'; i++ {
		if b[i] < 0x20 || b[i] >= 0x7f || b[i] == '\\' {
			return "", -1
		}
	}
	if i >= len(b) {
		return "", -1
	}
	return string(b[start:i]), i + 1
}
