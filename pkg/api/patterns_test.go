package api

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// The patterns of openapi.yaml must accept exactly what the handler
// accepts, so that a request the document allows is never refused for
// its form (schemathesis checks the same against a running server).

func docPattern(t *testing.T, pattern string) *regexp.Regexp {
	t.Helper()
	if pattern == "" {
		t.Fatal("no pattern")
	}
	return regexp.MustCompile(pattern)
}

func queryPattern(t *testing.T, path, name string) string {
	t.Helper()
	op := loadSpec(t).Paths.Value(path).Get
	return op.Parameters.GetByInAndName("query", name).Schema.Value.Pattern
}

// agree draws strings and fails on the first one that the pattern and
// the handler's check judge differently.
func agree(t *testing.T, re *regexp.Regexp, gen *rapid.Generator[string], fixed []string, accepts func(string) bool) {
	t.Helper()
	check := func(t interface{ Fatalf(string, ...any) }, s string) {
		if got, want := re.MatchString(s), accepts(s); got != want {
			t.Fatalf("%q: the document says %v, the handler %v", s, got, want)
		}
	}
	for _, s := range fixed {
		check(t, s)
	}
	rapid.Check(t, func(t *rapid.T) { check(t, gen.Draw(t, "s")) })
}

func stringOf(alphabet []string, maxLen int) *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		parts := rapid.SliceOfN(rapid.SampledFrom(alphabet), 0, maxLen).Draw(t, "parts")
		return strings.Join(parts, "")
	})
}

func TestPatternSheetID(t *testing.T) {
	re := docPattern(t, loadSpec(t).Components.Schemas["SheetId"].Value.Pattern)
	fixed := []string{"", ".", "..", "...", "..a", ".a", "a.", "a..", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"." + strings.Repeat("a", 63), ".." + strings.Repeat("a", 62), ".." + strings.Repeat(".", 62), "a b", "é", "a\n"}
	agree(t, re, stringOf([]string{"a", "Z", "0", ".", "_", "-", " ", "/", "é", "%", "\n"}, 70), fixed,
		func(s string) bool { return sheetid.Validate(s) == nil })
}

func TestPatternBlobName(t *testing.T) {
	re := docPattern(t, loadSpec(t).Components.Schemas["BlobName"].Value.Pattern)
	fixed := []string{"", ".", "..", "...", "..a", ".a", "a/b", "/", "\x00", "a\x1f", "\x7f", "\u0085", "\u00a0", "é", "😀",
		strings.Repeat("n", 100), strings.Repeat("n", 101), strings.Repeat("é", 100), strings.Repeat("😀", 100), strings.Repeat("😀", 101),
		".." + strings.Repeat("n", 98), ".." + strings.Repeat("n", 99), "index", "0-0-100-100", "a%41", "a?b", "%", "?", "a\uFFFDb"}
	agree(t, re, stringOf([]string{"a", ".", "/", "\x00", "\x1f", " ", "\x7f", "\u0085", "\u009f", "\u00a0", "é", "😀", "%", "?", "\uFFFD", "\n"}, 104), fixed,
		func(s string) bool { return blobstore.ValidateAPIName(s) == nil })
}

func TestPatternSequenceID(t *testing.T) {
	const max = "18446744073709551615"
	fixed := []string{"", "0", "00", "007", max, "0" + max, "18446744073709551616", "18446744073709551620", "99999999999999999999",
		"100000000000000000000", "1844674407370955161", "-1", "+1", "1.0", " 1", "start", "snapshot", "end"}
	digits := stringOf([]string{"0", "1", "4", "5", "6", "7", "8", "9"}, 22)
	near := rapid.Custom(func(t *rapid.T) string { // around the largest id
		n := rapid.IntRange(1, len(max)).Draw(t, "n")
		tail := digits.Draw(t, "tail")
		return max[:n] + tail[:min(len(tail), len(max)-n+1)]
	})
	gen := rapid.OneOf(digits, near, rapid.SampledFrom(fixed))
	id := func(s string) bool { _, ok := parseID(s); return ok }

	agree(t, docPattern(t, loadSpec(t).Components.Schemas["SequenceId"].Value.Pattern), gen, fixed, id)
	agree(t, docPattern(t, queryPattern(t, "/v1/sheets/{sheet}/log", "start")), gen, fixed,
		func(s string) bool { return s == "start" || s == "snapshot" || id(s) })
	agree(t, docPattern(t, queryPattern(t, "/v1/sheets/{sheet}/log", "end")), gen, fixed,
		func(s string) bool { return s == "end" || id(s) })
}

// TestPatternRange: the pattern bounds the corners to the grid; the
// number of cells is the a1-range format's, checked by the handler
// (and by the schemathesis hooks' strategy).
func TestPatternRange(t *testing.T) {
	re := docPattern(t, queryPattern(t, "/v1/sheets/{sheet}/cells", "range"))
	last := a1.Ref(cell.MaxCoord, cell.MaxCoord)
	fixed := []string{"A1", "B2:A1", last, "FXSHRXY1", "FXSHRXX2147483649", "A2147483648", "A2147483649", "A0", "A01", "a1",
		"A1:", ":A1", "A1:B2:C3", "$A$1", "AAAAAAAA1", "ZZZZZZ1", "A99999999999", "A1:" + last}
	letters := rapid.Custom(func(t *rapid.T) string {
		if rapid.Bool().Draw(t, "near") {
			p := "FXSHRXX"[:rapid.IntRange(0, 7).Draw(t, "n")]
			return p + stringOf([]string{"A", "W", "X", "Y", "Z"}, 8-len(p)).Draw(t, "rest")
		}
		return stringOf([]string{"A", "B", "Z"}, 8).Draw(t, "l")
	})
	number := rapid.Custom(func(t *rapid.T) string {
		if rapid.Bool().Draw(t, "near") {
			n := rapid.Int64Range(2147483600, 2147483700).Draw(t, "n")
			return strconv.FormatInt(n, 10)
		}
		return stringOf([]string{"0", "1", "2", "9"}, 11).Draw(t, "d")
	})
	ref := rapid.Custom(func(t *rapid.T) string { return letters.Draw(t, "c") + number.Draw(t, "r") })
	gen := rapid.Custom(func(t *rapid.T) string {
		if rapid.Bool().Draw(t, "single") {
			return ref.Draw(t, "a")
		}
		return ref.Draw(t, "a") + ":" + ref.Draw(t, "b")
	})
	agree(t, re, gen, fixed, func(s string) bool {
		r, err := a1.ParseRange(s)
		return err == nil && r.Row1 <= cell.MaxCoord && r.Col1 <= cell.MaxCoord
	})
}

func TestPatternContinuation(t *testing.T) {
	p := loadSpec(t).Components.Parameters["Continuation"].Value.Schema.Value
	if p.MaxLength == nil || *p.MaxLength != MaxContinuationBytes {
		t.Fatalf("maxLength %v, the handler's bound is %d", p.MaxLength, MaxContinuationBytes)
	}
	// Every token a store issues matches.
	f := errorFixture(t)
	tok, _ := f.get("/v1/sheets/s1/blobs/dir/")["continuation"].(string)
	if !docPattern(t, p.Pattern).MatchString(tok) {
		t.Fatalf("token %q does not match %s", tok, p.Pattern)
	}
	// A longer one is refused unread.
	r := f.do("GET", "/v1/sheets/s1/blobs/dir/?continuation="+strings.Repeat("A", MaxContinuationBytes+1), "")
	if r.status != 400 || r.json(t)["type"] != "NoContinuationError" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}
