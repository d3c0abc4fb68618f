package fsblob

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

func TestEncodingExamples(t *testing.T) {
	for _, c := range []struct{ name, enc string }{
		{"index", "index"},
		{"0-0-100-100", "0-0-100-100"},
		{"42", "42"},
		{"v1.json", "v1.json"},
		{"a_b", "a_b"},
		{"...", "..."},
		{".hidden", ".hidden"},
		{"Sheet1", "^sheet1"},
		{"A", "^a"},
		{"a b", "a%20b"},
		{"é", "%c3%a9"},
		{"e\u0301", "e%cc%81"},
		{"%", "%25"},
		{"^", "%5e"},
		{"~", "%7e"},
		{"a%2Fb", "a%252^fb"},
		{"\\", "%5c"},
		{":", "%3a"},
	} {
		if got := encodeName(c.name); got != c.enc {
			t.Errorf("encodeName(%q) = %q, want %q", c.name, got, c.enc)
		}
		if got, ok := nameOf([]string{c.enc}); !ok || got != c.name {
			t.Errorf("nameOf(%q) = %q, %v; want %q", c.enc, got, ok, c.name)
		}
	}
}

func TestLongNamesUseContinuationDirectories(t *testing.T) {
	for _, c := range []struct {
		name string
		want []int // segment lengths
	}{
		{strings.Repeat("a", 100), []int{100}},
		{strings.Repeat("A", 64), []int{128}},
		{strings.Repeat("A", 65), []int{3, 128}},                  // "~" + 2, then 128
		{strings.Repeat("é", 100), []int{92, 128, 128, 128, 128}}, // 600 bytes: 91+127*3 after "~"s, then 128
		{strings.Repeat("𝄞", 100), []int{57, 128, 128, 128, 128, 128, 128, 128, 128, 128}},
	} {
		segs := segments(c.name)
		var lens []int
		for _, s := range segs {
			lens = append(lens, len(s))
		}
		if !slices.Equal(lens, c.want) {
			t.Errorf("segments(%.10q...) lengths = %v, want %v", c.name, lens, c.want)
		}
		if got, ok := nameOf(segs); !ok || got != c.name {
			t.Errorf("nameOf(segments(%.10q...)) = %.10q, %v", c.name, got, ok)
		}
	}
}

func TestNameOfRejectsWhatEncodeNeverMakes(t *testing.T) {
	for _, segs := range [][]string{
		{""}, {"."}, {".."}, {"A"}, {"%41"}, {"%61"}, {"%2E"}, {"%2e"}, {"^A"}, {"^"}, {"^1"}, {"%"}, {"%2"}, {"%zz"},
		{"~a"}, {"~"}, {"a~"}, {"a b"}, {"é"}, {"%2f"}, {"%00"}, {"%1b"}, {"%c3"}, {"%ff"},
		{"~" + strings.Repeat("a", 10), "b"}, // continuation where none is needed
		{"x", "y"},                           // no "~"
		{"~", strings.Repeat("a", 128)},      // empty continuation
		{"~" + strings.Repeat("a", 1), strings.Repeat("a", 127)}, // last segment short
		{strings.Repeat("a", 129)},
		{"~" + strings.Repeat("%5e", 40) + "x", strings.Repeat("^a", 64)}, // chunks split differently
		{".DS_Store"},
	} {
		if name, ok := nameOf(segs); ok {
			t.Errorf("nameOf(%q) = %q, want rejection", segs, name)
		}
	}
}

// validName draws valid names biased toward awkward ones: upper case,
// escapes, multi-byte characters, and lengths near the segment limits.
func validName() *rapid.Generator[string] {
	alphabet := []rune("aZ0.-_~^%/ \x00\x7féé𝄞\u0301\u00a0\ufeff")
	return rapid.Custom(func(t *rapid.T) string {
		for {
			var b strings.Builder
			n := rapid.IntRange(1, blobstore.MaxNameLen).Draw(t, "len")
			for range n {
				if rapid.Bool().Draw(t, "from alphabet") {
					b.WriteRune(rapid.SampledFrom(alphabet).Draw(t, "rune"))
				} else {
					b.WriteRune(rapid.Rune().Draw(t, "any rune"))
				}
			}
			if s := b.String(); blobstore.ValidateName(s) == nil {
				return s
			}
		}
	})
}

func TestEncodingProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		name := validName().Draw(t, "name")
		segs := segments(name)
		for i, s := range segs {
			if len(s) == 0 || len(s) > maxSegment || s == "." || s == ".." {
				t.Fatalf("segment %d of %q is %q", i, name, s)
			}
			if !utf8.ValidString(s) || strings.ContainsAny(s, "/\x00ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
				t.Fatalf("segment %d of %q is %q: not a portable file name", i, name, s)
			}
			if strings.IndexByte(s, contMark) > 0 || (s[0] == contMark) != (i < len(segs)-1) {
				t.Fatalf("segment %d of %q is %q: misplaced %q", i, name, s, contMark)
			}
			for j := 0; j < len(s); j++ {
				if c := s[j]; !plain(c) && !strings.ContainsRune("%^~", rune(c)) {
					t.Fatalf("segment %d of %q holds byte %q", i, name, c)
				}
			}
		}
		got, ok := nameOf(segs)
		if !ok || got != name {
			t.Fatalf("nameOf(segments(%q)) = %q, %v", name, got, ok)
		}
		other := validName().Draw(t, "other")
		if other != name && slices.Equal(segments(other), segs) {
			t.Fatalf("%q and %q share the segments %q", name, other, segs)
		}
	})
}
