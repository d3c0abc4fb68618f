package cell

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"pgregory.net/rapid"
)

func mustNum(f float64) Value {
	v, err := NumberValue(f)
	if err != nil {
		panic(err)
	}
	return v
}

func mustErr(code string) Value {
	v, err := ErrorValue(code)
	if err != nil {
		panic(err)
	}
	return v
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{Row: 0, Column: 0},
		{Row: 3, Column: 2, Cell: Cell{Value: BoolValue(true)}.WithFormat("0.00")},
		{Row: MaxCoord, Column: MaxCoord, Cell: Cell{Value: NullValue()}},
		{Row: 1, Column: 1, Cell: Cell{Value: StringValue("quote\" back\\ nl\n tab\t \x01 é 😀 \u2028")}},
		{Row: 1, Column: 1, Cell: Cell{Value: mustNum(-0.5)}},
		{Row: 1, Column: 1, Cell: Cell{Value: mustNum(1e21)}},
		{Row: 1, Column: 1, Cell: Cell{Value: mustNum(1.5e-7)}},
		{Row: 1, Column: 1, Cell: Cell{Value: mustNum(math.MaxFloat64)}},
		{Row: 1, Column: 1, Cell: Cell{Value: mustErr("#DIV/0!")}},
		{Row: 1, Column: 1, Cell: Cell{}.WithFormat("")},
	} {
		body := e.AppendJSON(nil)
		if !json.Valid(body) {
			t.Fatalf("invalid JSON %s", body)
		}
		got, err := DecodeEntry(body, Strict)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got.Row != e.Row || got.Column != e.Column || !got.Cell.Equal(e.Cell) {
			t.Fatalf("%s decoded to %+v, want %+v", body, got, e)
		}
	}
}

func TestNumbersPrintLikeJavaScript(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0", 1: "1", -0.5: "-0.5", 100000000: "100000000", 1e20: "100000000000000000000",
		1e21: "1e+21", 1.5e-7: "1.5e-7", 0.000001: "0.000001", 123.456: "123.456",
	} {
		if got := string(AppendNumber(nil, f)); got != want {
			t.Errorf("AppendNumber(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestStrictRejects(t *testing.T) {
	for _, tc := range []struct{ body, why string }{
		{`[]`, "expected an object"},
		{`{"row":1,"column":1}`, "no \"type\""},
		{`{"type":"Other","row":1,"column":1}`, "is not"},
		{`{"type":"SetCellValueAndFormat","column":1}`, "required"},
		{`{"type":"SetCellValueAndFormat","row":1}`, "required"},
		{`{"type":"SetCellValueAndFormat","row":1.0,"column":1}`, "without fraction"},
		{`{"type":"SetCellValueAndFormat","row":1e2,"column":1}`, "without fraction"},
		{`{"type":"SetCellValueAndFormat","row":-1,"column":1}`, "negative"},
		{`{"type":"SetCellValueAndFormat","row":"1","column":1}`, "integer"},
		{`{"type":"SetCellValueAndFormat","row":2147483648,"column":1}`, "at most"},
		{`{"type":"SetCellValueAndFormat","row":99999999999999999999999,"column":1}`, "without fraction"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":1e400}`, "range"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":[1]}`, "must be a string"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":{"type":"CellError","value":"#BAD!"}}`, "unknown cell error"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":{"type":"CellError","value":"#N/A","x":1}}`, "exactly"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":{"type":"Other","value":"#N/A"}}`, "CellError"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"value":{"value":"#N/A"}}`, "CellError"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"format":1}`, "format"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"extra":1}`, "unknown member"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"pending":"snapshot"}`, "only the server"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"snapshot":"1"}`, "only the server"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1,"history":"h"}`, "only the server"},
		{`{"type":"SetCellValueAndFormat","row":1,"row":2,"column":1}`, "twice"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1} x`, "after the value"},
		{`{"type":"SetCellValueAndFormat","row":1,"column":1`, "invalid"},
	} {
		_, err := DecodeEntry([]byte(tc.body), Strict)
		var ve *errs.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: got %v, want a ValidationError", tc.body, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: error %q does not mention %q", tc.body, err, tc.why)
		}
	}
}

func TestLenientKeepsGoing(t *testing.T) {
	e, err := DecodeEntry([]byte(`{"type":"SetCellValueAndFormat","row":1,"column":2,"future":{"a":[1,2]},"value":{"type":"CellError","value":"#N/A","detail":"x"},"format":null}`), Lenient)
	if err != nil || e.Row != 1 || e.Column != 2 || !e.Value.Equal(mustErr("#N/A")) || e.HasFormat {
		t.Fatalf("got %+v, %v", e, err)
	}
	_, err = DecodeEntry([]byte(`{"type":"InsertRow","at":3}`), Lenient)
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	var ve *errs.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("unknown type is not a ValidationError: %v", err)
	}
}

func TestNullDiffersFromAbsent(t *testing.T) {
	a, _ := DecodeEntry([]byte(`{"type":"SetCellValueAndFormat","row":0,"column":0,"value":null}`), Strict)
	b, _ := DecodeEntry([]byte(`{"type":"SetCellValueAndFormat","row":0,"column":0}`), Strict)
	if a.Value.Kind() != Null || a.Empty() || b.Value.Kind() != Absent || !b.Empty() {
		t.Fatalf("null %+v, absent %+v", a, b)
	}
}

func genValue() *rapid.Generator[Value] {
	return rapid.OneOf(
		rapid.Just(Value{}),
		rapid.Just(NullValue()),
		rapid.Map(rapid.Bool(), BoolValue),
		rapid.Map(rapid.Float64(), func(f float64) Value { return mustNum(f) }),
		rapid.Map(rapid.String(), StringValue),
		rapid.Map(rapid.SampledFrom(ErrorCodes), func(c string) Value { return mustErr(c) }),
	)
}

func TestEntryRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := Entry{
			Row:    rapid.Uint32Range(0, MaxCoord).Draw(t, "row"),
			Column: rapid.Uint32Range(0, MaxCoord).Draw(t, "col"),
			Cell:   Cell{Value: genValue().Draw(t, "value")},
		}
		if rapid.Bool().Draw(t, "hasFormat") {
			e.Cell = e.Cell.WithFormat(rapid.String().Draw(t, "format"))
		}
		body := e.AppendJSON(nil)
		got, err := DecodeEntry(body, Strict)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		// Strings with invalid UTF-8 are written as U+FFFD, like encoding/json.
		want := e
		want.Value.s = strings.ToValidUTF8(want.Value.s, "\uFFFD")
		want.Format = strings.ToValidUTF8(want.Format, "\uFFFD")
		if got.Row != want.Row || got.Column != want.Column || !got.Cell.Equal(want.Cell) {
			t.Fatalf("%s decoded to %+v, want %+v", body, got, want)
		}
		// encoding/json reads the same document.
		var std map[string]any
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte(`{"type":"SetCellValueAndFormat","row":3,"column":2,"value":true,"format":"0.00"}`))
	f.Add([]byte(`{"type":"SetCellValueAndFormat","row":0,"column":0,"value":{"type":"CellError","value":"#N/A"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		strict, errStrict := DecodeEntry(body, Strict)
		lenient, errLenient := DecodeEntry(body, Lenient)
		if errStrict == nil {
			if errLenient != nil || !reflect.DeepEqual(strict, lenient) {
				t.Fatalf("strict accepted %q as %+v but lenient gave %+v, %v", body, strict, lenient, errLenient)
			}
			if !json.Valid(body) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			again, err := DecodeEntry(strict.AppendJSON(nil), Strict)
			if err != nil || !reflect.DeepEqual(again, strict) {
				t.Fatalf("re-encoding %+v does not round-trip: %+v, %v", strict, again, err)
			}
		}
		if errLenient == nil && !json.Valid(body) {
			t.Fatalf("lenient accepted invalid JSON %q", body)
		}
	})
}

func TestMinusZeroIsZero(t *testing.T) {
	negZero := math.Copysign(0, -1)
	if got := string(AppendNumber(nil, negZero)); got != "0" {
		t.Errorf("AppendNumber(-0) = %s, want 0", got)
	}
	if v := mustNum(negZero); math.Signbit(v.NumberVal()) {
		t.Errorf("NumberValue(-0) keeps the sign")
	}
	e, err := DecodeEntry([]byte(`{"type":"SetCellValueAndFormat","row":0,"column":0,"value":-0.0}`), Strict)
	if err != nil || math.Signbit(e.Value.NumberVal()) || string(e.AppendJSON(nil)) != `{"type":"SetCellValueAndFormat","row":0,"column":0,"value":0}` {
		t.Errorf("decoded -0.0 as %v, %v", e, err)
	}
}

func TestValidUTF8MatchesTheEncoding(t *testing.T) {
	for _, s := range []string{"", "plain", "é😀", "a\xffb", "\xff\xfe", "\xe2\x82", "x\xc3"} {
		c := Cell{Value: StringValue(s)}.WithFormat(s)
		back, err := DecodeEntry(Entry{Cell: c}.AppendJSON(nil), Strict)
		if err != nil || !back.Cell.Equal(c.ValidUTF8()) {
			t.Errorf("%q: read back %v, ValidUTF8 gives %v (%v)", s, back.Cell, c.ValidUTF8(), err)
		}
	}
}

func TestAppendUintMatchesStrconv(t *testing.T) {
	for _, n := range []uint64{0, 1, 9, 10, 99, 100, 999, 1000, 12345, MaxCoord, 1<<53 - 1, math.MaxUint64} {
		if got, want := string(appendUint([]byte("x"), n)), "x"+strconv.FormatUint(n, 10); got != want {
			t.Errorf("appendUint(%d) = %s, want %s", n, got, want)
		}
	}
	// Every number of the short paths, and past them.
	for n := range uint64(20_000) {
		if got, want := string(appendUint(nil, n)), strconv.FormatUint(n, 10); got != want {
			t.Fatalf("appendUint(%d) = %s, want %s", n, got, want)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Uint64().Draw(t, "n")
		if got, want := string(appendUint(nil, n)), strconv.FormatUint(n, 10); got != want {
			t.Fatalf("appendUint(%d) = %s, want %s", n, got, want)
		}
	})
}
