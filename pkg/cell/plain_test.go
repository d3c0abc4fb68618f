package cell

import (
	"reflect"
	"testing"
)

var plainSeeds = []string{
	`{"type":"SetCellValueAndFormat","row":3,"column":2,"value":true,"format":"0.00"}`,
	`{"type":"SetCellValueAndFormat","row":0,"column":0}`,
	`{"type":"SetCellValueAndFormat","row":2147483647,"column":12,"value":-0}`,
	`{"type":"SetCellValueAndFormat","row":2147483648,"column":12,"value":1}`,
	`{"type":"SetCellValueAndFormat","row":01,"column":1,"value":1}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":01}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":123456789012345}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":1234567890123456}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":1.5}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":1e3}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":"a b","format":""}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":"a\"b"}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":null,"value":1}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"format":"x","value":1}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":false}x`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":nul}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":{"type":"CellError","value":"#N/A"}}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":-1}`,
	`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":-}`,
}

// FuzzDecodePlain checks the fast path against the scanner: whatever
// decodePlain reads, the scanner reads the same way in both modes.
func FuzzDecodePlain(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodePlain(body)
		if !ok {
			return
		}
		for _, mode := range []Mode{Strict, Lenient} {
			slow, err := decodeEntry(body, mode)
			if err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: decodePlain %+v, decodeEntry (mode %d) %+v, %v", body, fast, mode, slow, err)
			}
		}
	})
}

// The bodies the engine writes for numbers, plain strings, literals and
// plain formats take the fast path.
func TestDecodePlainTakesEngineBodies(t *testing.T) {
	for _, e := range []Entry{
		{Row: 0, Column: 0},
		{Row: 999, Column: 39, Cell: Cell{Value: mustNum(1038)}},
		{Row: 1, Column: 2, Cell: Cell{Value: mustNum(-42)}.WithFormat("0.00")},
		{Row: MaxCoord, Column: MaxCoord, Cell: Cell{Value: StringValue("total")}},
		{Row: 5, Column: 5, Cell: Cell{Value: BoolValue(false)}},
		{Row: 5, Column: 5, Cell: Cell{Value: NullValue()}},
		{Row: 5, Column: 5, Cell: Cell{}.WithFormat("#,##0")},
	} {
		body := e.AppendJSON(nil)
		got, ok := decodePlain(body)
		if !ok || got != e {
			t.Errorf("%s: decodePlain %+v, %v", body, got, ok)
		}
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	body := Entry{Row: 999, Column: 39, Cell: Cell{Value: mustNum(1038)}}.AppendJSON(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEntry(body, Lenient); err != nil {
			b.Fatal(err)
		}
	}
}
