package a1

import (
	"encoding/json"
	"os"
	"testing"

	"pgregory.net/rapid"
)

type vector struct {
	Row    uint32 `json:"row"`
	Column uint32 `json:"column"`
	Ref    string `json:"ref"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/a1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Cases []vector }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no vectors")
	}
	return v.Cases
}

func TestVectorsBothWays(t *testing.T) {
	for _, c := range loadVectors(t) {
		if got := Ref(c.Row, c.Column); got != c.Ref {
			t.Errorf("Ref(%d, %d) = %q, want %q", c.Row, c.Column, got, c.Ref)
		}
		r, col, err := Parse(c.Ref)
		if err != nil || r != c.Row || col != c.Column {
			t.Errorf("Parse(%q) = %d, %d, %v; want %d, %d", c.Ref, r, col, err, c.Row, c.Column)
		}
	}
}

func TestColumnBoundaries(t *testing.T) {
	for col, want := range map[uint32]string{
		0: "A", 25: "Z", 26: "AA", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA",
		^uint32(0): "MWLQKWV",
	} {
		if got := string(AppendColumn(nil, col)); got != want {
			t.Errorf("column %d = %q, want %q", col, got, want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{
		"", "A", "1", "A0", "A01", "a1", "A-1", "A+1", "A1 ", " A1", "A1B", "1A",
		"A4294967297", "MWLQKWW1", "AAAAAAAAA1", "A99999999999999999999999",
	} {
		if _, _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	if _, _, err := Parse("MWLQKWV4294967296"); err != nil {
		t.Errorf("largest reference: %v", err)
	}
}

func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		row := rapid.Uint32().Draw(t, "row")
		col := rapid.Uint32().Draw(t, "col")
		ref := Ref(row, col)
		r, c, err := Parse(ref)
		if err != nil || r != row || c != col {
			t.Fatalf("Parse(Ref(%d, %d)=%q) = %d, %d, %v", row, col, ref, r, c, err)
		}
	})
}

func TestParseRange(t *testing.T) {
	r, err := ParseRange("J20:A1")
	if err != nil || r != (Range{0, 0, 19, 9}) || r.Cells() != 200 || r.String() != "A1:J20" {
		t.Fatalf("got %+v %v", r, err)
	}
	r, err = ParseRange("B2")
	if err != nil || r != (Range{1, 1, 1, 1}) || r.String() != "B2" {
		t.Fatalf("got %+v %v", r, err)
	}
	for _, s := range []string{"", ":", "A1:", ":A1", "A1:B2:C3", "A1:B"} {
		if _, err := ParseRange(s); err == nil {
			t.Errorf("ParseRange(%q) succeeded", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"A1", "ZZ99", "AB10", "A0", "MWLQKWV4294967296"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, c, err := Parse(s)
		if err != nil {
			return
		}
		if back := Ref(r, c); back != s {
			t.Fatalf("Parse(%q) = %d, %d but Ref gives %q", s, r, c, back)
		}
	})
}

// ParseBytes agrees with Parse on every reference, good or bad, and
// copies nothing.
func TestParseBytesAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(rapid.StringMatching(`[A-Z]{0,4}[0-9]{0,11}`), rapid.String()).Draw(t, "ref")
		r1, c1, err1 := Parse(s)
		r2, c2, err2 := ParseBytes([]byte(s))
		if r1 != r2 || c1 != c2 || (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("%q: Parse %d %d %v, ParseBytes %d %d %v", s, r1, c1, err1, r2, c2, err2)
		}
	})
	ref := []byte("XFD1048576")
	if n := testing.AllocsPerRun(100, func() { _, _, _ = ParseBytes(ref) }); n != 0 {
		t.Fatalf("ParseBytes allocates %v times", n)
	}
}
