package jsonscan

import (
	"encoding/json"
	"testing"
)

func TestValidAgrees(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `1`, `-0`, `-0.5e+3`, `"a\u00e9\n"`, `{"a":[1,true,null,{"b":"c"}]}`,
		`01`, `1.`, `.5`, `-`, `1e`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `"\x"`, "\"\x01\"", `tru`, `{} {}`,
		`"\ud800"`, "\"\xff\"", ` {"a" : 1 } `,
	} {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

func TestDeepNestingRefused(t *testing.T) {
	deep := make([]byte, 0, 2*(MaxDepth+10))
	for i := 0; i < MaxDepth+10; i++ {
		deep = append(deep, '[')
	}
	for i := 0; i < MaxDepth+10; i++ {
		deep = append(deep, ']')
	}
	if Valid(deep) {
		t.Fatal("nesting beyond MaxDepth accepted")
	}
}

func TestStringsDecodeLikeStdlib(t *testing.T) {
	for _, s := range []string{`"plain"`, `"esc\"aped\\"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, "\"caf\xc3\xa9\"", "\"bad\xff\""} {
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		got, err := New([]byte(s)).String()
		if err != nil || got != want {
			t.Errorf("String(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
}

func FuzzAgainstStdlib(f *testing.F) {
	for _, s := range []string{`{"type":"SetCellValueAndFormat","row":1,"column":2,"value":{"type":"CellError","value":"#N/A"}}`, `[1,2,"x"]`, `"\u0041"`, `-1.5e-7`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			// The only intended difference: nesting beyond MaxDepth.
			if !(want && !got) || depth(b) <= MaxDepth {
				t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
			}
		}
	})
}

func depth(b []byte) int {
	d, m := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			d++
			m = max(m, d)
		case ']', '}':
			d--
		}
	}
	return m
}

func TestInternedStringsAllocateNothing(t *testing.T) {
	Intern("type", "row", "SetCellValueAndFormat")
	doc := []byte(`{"type":"SetCellValueAndFormat","row":"other"}`)
	var keys, values []string
	allocs := testing.AllocsPerRun(100, func() {
		keys, values = keys[:0], values[:0]
		s := Scanner{data: doc}
		_ = s.Object(func(key string) error {
			keys = append(keys, key)
			if key == "type" {
				v, err := s.String()
				values = append(values, v)
				return err
			}
			return s.Skip()
		})
	})
	if allocs != 0 || len(keys) != 2 || keys[0] != "type" || keys[1] != "row" || values[0] != "SetCellValueAndFormat" {
		t.Fatalf("%v allocations; keys %q values %q", allocs, keys, values)
	}
	// Strings that are not registered are still read, each its own copy.
	got, err := New([]byte(`"rows"`)).String()
	if err != nil || got != "rows" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestObjectKeys(t *testing.T) {
	doc := []byte(`{"A1":1,"B2":{"x":[1]},"C\u0033":"v"}`)
	var keys []string
	err := New(doc).ObjectKeys(func(key []byte) error {
		keys = append(keys, string(key))
		return nil
	})
	if err == nil {
		t.Fatal("a member whose value the callback leaves unread was accepted")
	}
	keys = keys[:0]
	s := New(doc)
	if err := s.ObjectKeys(func(key []byte) error {
		keys = append(keys, string(key))
		return s.Skip()
	}); err != nil || s.End() != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0] != "A1" || keys[1] != "B2" || keys[2] != "C3" {
		t.Fatalf("keys %q", keys)
	}
	// Plain keys are not copied.
	plain := []byte(`{"A1":1,"ZZ999":2}`)
	allocs := testing.AllocsPerRun(100, func() {
		s := New(plain)
		_ = s.ObjectKeys(func(key []byte) error { return s.Skip() })
	})
	if allocs != 0 {
		t.Fatalf("%v allocations reading plain keys", allocs)
	}
	for _, bad := range []string{`{"A1" 1}`, `{A1:1}`, `{"A1":1,}`, `["A1"]`, `{"\x"}`} {
		s := New([]byte(bad))
		if err := s.ObjectKeys(func([]byte) error { return s.Skip() }); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// Float agrees with strconv on every number, the integers it reads by
// itself included.
func TestFloatAgreesWithStrconv(t *testing.T) {
	for _, s := range []string{"0", "-0", "7", "-7", "123456789012345", "-123456789012345", "1234567890123456",
		"99999999999999999999", "1.5", "-0.25", "1e3", "1E-2", "10", "-10"} {
		got, err := New([]byte(s)).Float()
		var want float64
		if err2 := json.Unmarshal([]byte(s), &want); err != nil || err2 != nil || got != want || (got == 0 && (1/got < 0) != (1/want < 0)) {
			t.Errorf("Float(%s) = %v, %v; encoding/json reads %v (%v)", s, got, err, want, err2)
		}
	}
}

// An array's elements as Array and Value split it are what encoding/json
// splits it into, byte for byte, and malformed arrays are refused.
func TestArrayValuesAgreeWithStdlib(t *testing.T) {
	for _, s := range []string{`[]`, ` [ ] `, `[1]`, `[ {"a":[1,2]} , "x" ,null,true, -1.5e3 ,[[]]]`, `["\u00e9\"",{}]`} {
		var want []json.RawMessage
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		sc := New([]byte(s))
		var got [][]byte
		err := sc.Array(func() error {
			v, err := sc.Value()
			got = append(got, v)
			return err
		})
		if err == nil {
			err = sc.End()
		}
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: %d elements, %v; want %d", s, len(got), err, len(want))
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Errorf("%s: element %d is %s, want %s", s, i, got[i], want[i])
			}
		}
	}
	for _, s := range []string{`[1,]`, `[,1]`, `[1 2]`, `[1`, `{}`, `"[]"`, `[1]]`} {
		sc := New([]byte(s))
		err := sc.Array(func() error { _, err := sc.Value(); return err })
		if err == nil {
			err = sc.End()
		}
		if err == nil {
			t.Errorf("%s accepted", s)
		}
	}
}
