package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// cellState is a cell as snapshot-format.md defines it: an optional value
// (null is a value) and an optional format.
type cellState struct {
	hasValue bool
	value    json.RawMessage
	format   *string
}

func (c cellState) empty() bool { return !c.hasValue && c.format == nil }

type pos struct{ row, col int64 }

// model is the state of a sheet after a sequence of entries.
type model struct {
	cells              map[pos]cellState
	rowCount, colCount int64
}

func newModel() *model { return &model{cells: map[pos]cellState{}} }

func (m *model) apply(e genEntry) {
	m.rowCount = max(m.rowCount, e.row+1)
	m.colCount = max(m.colCount, e.col+1)
	c := cellState{hasValue: e.value != nil, value: e.value, format: e.format}
	if c.empty() {
		delete(m.cells, pos{e.row, e.col})
		return
	}
	m.cells[pos{e.row, e.col}] = c
}

// genEntry is one SetCellValueAndFormat entry the suite appends.
type genEntry struct {
	row, col int64
	value    json.RawMessage // nil: no value
	format   *string
}

func (e genEntry) body() map[string]any {
	b := map[string]any{"type": "SetCellValueAndFormat", "row": e.row, "column": e.col}
	if e.value != nil {
		b["value"] = e.value
	}
	if e.format != nil {
		b["format"] = *e.format
	}
	return b
}

// Cells land in a main block (2 tiles of the default 100x100 grid) and,
// now and then, far away (another tile), so snapshots have several tiles
// and a missing tile in between.
const (
	mainRows, mainCols = 200, 40
	farRow0, farCol0   = 1000, 150
	farRows, farCols   = 50, 20
)

var (
	formats    = []string{"0.00", "yyyy-mm-dd", "@", "#,##0"}
	errorCodes = []string{"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
		"#GETTING_DATA", "#SPILL!", "#UNKNOWN!", "#FIELD!", "#CALC!"}
	texts = []string{"x", "héllo wörld", "quote \" and \\ backslash", "line\nbreak", "日本語", "tab\there", ""}
)

// generate returns n entries from seed: mostly values of every kind, some
// formats, format-only cells, explicit nulls, errors, clears and
// overwrites of the same cells.
func generate(seed uint64, n int) []genEntry {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]genEntry, 0, n)
	for i := range n {
		var e genEntry
		if r.IntN(100) == 0 {
			e.row, e.col = farRow0+int64(r.IntN(farRows)), farCol0+int64(r.IntN(farCols))
		} else {
			e.row, e.col = int64(r.IntN(mainRows)), int64(r.IntN(mainCols))
		}
		raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
		switch k := r.IntN(100); {
		case k < 30:
			e.value = raw(r.IntN(2001) - 1000)
		case k < 40:
			e.value = raw(float64(r.IntN(40001)-20000) / 4) // exact in binary
		case k < 55:
			e.value = raw(fmt.Sprintf("%s-%d", texts[r.IntN(len(texts))], i))
		case k < 62:
			e.value = raw(r.IntN(2) == 0)
		case k < 67:
			e.value = json.RawMessage("null")
		case k < 72:
			e.value = raw(map[string]string{"type": "CellError", "value": errorCodes[r.IntN(len(errorCodes))]})
		case k < 85:
			f := formats[r.IntN(len(formats))]
			e.value, e.format = raw(r.IntN(100)), &f
		case k < 92:
			f := formats[r.IntN(len(formats))]
			e.format = &f
		default:
			// neither: clears the cell
		}
		out = append(out, e)
	}
	return out
}

// colName is the bijective base-26 column name of col (0 = A).
func colName(col int64) string {
	var b []byte
	for n := col + 1; n > 0; {
		n--
		b = append([]byte{byte('A' + n%26)}, b...)
		n /= 26
	}
	return string(b)
}

func ref(row, col int64) string { return colName(col) + strconv.FormatInt(row+1, 10) }

// parseRef parses a canonical A1 reference.
func parseRef(s string) (row, col int64, err error) {
	i := 0
	for i < len(s) && s[i] >= 'A' && s[i] <= 'Z' {
		col = col*26 + int64(s[i]-'A'+1)
		i++
	}
	if i == 0 || i == len(s) || s[i] == '0' {
		return 0, 0, fmt.Errorf("bad reference %q", s)
	}
	r, err := strconv.ParseInt(s[i:], 10, 64)
	if err != nil || r < 1 || strconv.FormatInt(r, 10) != s[i:] {
		return 0, 0, fmt.Errorf("bad reference %q", s)
	}
	return r - 1, col - 1, nil
}

// sameJSON compares two JSON values, numbers by value.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if decodeNum(a, &x) != nil || decodeNum(b, &y) != nil {
		return false
	}
	return sameValue(x, y)
}

func decodeNum(b []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func sameValue(x, y any) bool {
	switch x := x.(type) {
	case json.Number:
		yn, ok := y.(json.Number)
		if !ok {
			return false
		}
		a, err1 := strconv.ParseFloat(string(x), 64)
		b, err2 := strconv.ParseFloat(string(yn), 64)
		return err1 == nil && err2 == nil && a == b
	case map[string]any:
		ym, ok := y.(map[string]any)
		if !ok || len(x) != len(ym) {
			return false
		}
		for k, v := range x {
			if w, ok := ym[k]; !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		yl, ok := y.([]any)
		if !ok || len(x) != len(yl) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], yl[i]) {
				return false
			}
		}
		return true
	default:
		return x == y
	}
}

// decodeCell decodes a {"value":..,"format":..} object of the cells
// endpoint or of a tile.
func decodeCell(raw json.RawMessage) (cellState, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return cellState{}, err
	}
	var c cellState
	for k, v := range m {
		switch k {
		case "value":
			c.hasValue, c.value = true, v
		case "format":
			var f string
			if err := json.Unmarshal(v, &f); err != nil {
				return cellState{}, fmt.Errorf("format %s: %v", v, err)
			}
			c.format = &f
		default:
			return cellState{}, fmt.Errorf("unexpected member %q", k)
		}
	}
	return c, nil
}

func (c cellState) String() string {
	var parts []string
	if c.hasValue {
		parts = append(parts, "value="+string(c.value))
	}
	if c.format != nil {
		parts = append(parts, "format="+*c.format)
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, " ")
}

func (c cellState) equal(d cellState) bool {
	if c.hasValue != d.hasValue || (c.format == nil) != (d.format == nil) {
		return false
	}
	if c.format != nil && *c.format != *d.format {
		return false
	}
	return !c.hasValue || sameJSON(c.value, d.value)
}
