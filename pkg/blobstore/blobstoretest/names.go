package blobstoretest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

var sheetTests = []test{
	{"InvalidIDsAreValidationErrors", func(t *testing.T, f *fixture) {
		for _, id := range []string{"", ".", "..", "a/b", "/a", "a\\b", "a b", "a\x00", "é", strings.Repeat("a", 65)} {
			d, err := f.store.Sheet(id)
			if !isErr[*errs.ValidationError](err) {
				t.Errorf("Sheet(%q) = %v, %v; want a ValidationError", id, d, err)
			}
		}
	}},
	{"ValidIDs", func(t *testing.T, f *fixture) {
		for _, id := range []string{"a", "A", "0", "a.b", "-", "_", "...", "a-b_c.D9", strings.Repeat("z", 64)} {
			d := f.sheet(id)
			f.write(d, "x", id)
			f.wantBlob(f.sheet(id), "x", id)
		}
	}},
	{"HandlesOfOneSheetShareData", func(t *testing.T, f *fixture) {
		f.write(f.sheet("s"), "x", "1")
		f.wantBlob(f.sheet("s"), "x", "1")
		f.write(f.dir(f.sheet("s"), "d"), "y", "2")
		f.wantBlob(f.dir(f.sheet("s"), "d"), "y", "2")
	}},
}

// invalidNames break the naming rules of blob-store.md.
var invalidNames = []struct{ why, name string }{
	{"empty", ""},
	{"101 ASCII characters", strings.Repeat("a", 101)},
	{"101 two-byte characters", strings.Repeat("é", 101)},
	{"101 four-byte characters", strings.Repeat("𝄞", 101)},
	{"slash alone", "/"},
	{"leading slash", "/a"},
	{"trailing slash", "a/"},
	{"inner slash", "a/b"},
	{"dot", "."},
	{"dot dot", ".."},
	{"NUL", "\x00"},
	{"inner NUL", "a\x00b"},
	{"tab", "a\tb"},
	{"newline", "a\n"},
	{"carriage return", "\ra"},
	{"escape", "\x1b[0m"},
	{"unit separator", "\x1f"},
	{"DEL", "a\x7f"},
	{"C1 control NEL", "a\u0085"},
	{"C1 control CSI", "\u009b"},
	{"invalid UTF-8 byte", "\xff"},
	{"truncated UTF-8", "a\xc3"},
	{"UTF-16 surrogate", "\xed\xa0\x80"},
	{"overlong encoding of slash", "\xc0\xaf"},
}

// awkwardNames are valid, and each is a trap for some backend: encodings,
// shell and URL syntax, file system conventions, prefix scans, case and
// Unicode normalization.
var awkwardNames = []string{
	" ", "a b", " lead", "trail ", "...", "..a", "a..", ".hidden", "a.b", "a.", "-", "-rf", "--x",
	"%2F", "%2e%2e", "a%2Fb", "%00", "%", "+", "a+b", "&x=1", "#", "?", "*", "~", "$", "a$folder$",
	"\\", "a\\b", "'", "\"", "<>", "|", ":", "con", "x.tmp", ".tmp", "_", "=",
	"日本語", "😀", "\u00a0", "\u200b", "\ufeff", "\U0010fffd",
	"é",       // precomposed (NFC)
	"e\u0301", // decomposed (NFD): a different name
	"A", "a",  // case matters
	strings.Repeat("a", 100),
	strings.Repeat("é", 100),
	strings.Repeat("𝄞", 100),
}

var nameTests = []test{
	{"InvalidOnEveryOperation", func(t *testing.T, f *fixture) {
		root := f.sheet("names")
		sub := f.dir(root, "sub")
		f.write(sub, "keep", "k")
		ops := []struct {
			name string
			call func(d blobstore.BlobDir, n string) error
		}{
			{"ReadBlob", func(d blobstore.BlobDir, n string) error { _, err := d.ReadBlob(f.ctx, n); return err }},
			{"WriteBlob", func(d blobstore.BlobDir, n string) error { return d.WriteBlob(f.ctx, n, []byte("x")) }},
			{"RemoveBlob", func(d blobstore.BlobDir, n string) error { return d.RemoveBlob(f.ctx, n) }},
			{"GetDir", func(d blobstore.BlobDir, n string) error { _, err := d.GetDir(f.ctx, n); return err }},
			{"CopyDst", func(d blobstore.BlobDir, n string) error { return blobstore.Copy(f.ctx, d, n, sub, "keep") }},
			{"CopySrc", func(d blobstore.BlobDir, n string) error { return blobstore.Copy(f.ctx, sub, "copy", d, n) }},
		}
		for _, op := range ops {
			for _, tc := range invalidNames {
				for _, d := range []blobstore.BlobDir{root, sub} {
					if err := op.call(d, tc.name); !isInvalidName(err) {
						t.Errorf("%s(%s %q): %v, want an InvalidBlobNameError", op.name, tc.why, tc.name, err)
					}
				}
			}
		}
		if c, ok := sub.(blobstore.Copier); ok {
			for _, tc := range invalidNames {
				if err := c.CopyBlob(f.ctx, tc.name, sub, "keep"); !isInvalidName(err) {
					t.Errorf("CopyBlob(dst %s %q): %v, want an InvalidBlobNameError", tc.why, tc.name, err)
				}
				if err := c.CopyBlob(f.ctx, "copy", sub, tc.name); !isInvalidName(err) {
					t.Errorf("CopyBlob(src %s %q): %v, want an InvalidBlobNameError", tc.why, tc.name, err)
				}
			}
		}
		f.wantSnapshot(root, map[string]string{"sub/keep": "k"}, "after invalid names")
	}},
	{"LengthCountsCharactersNotBytes", func(t *testing.T, f *fixture) {
		d := f.sheet("len")
		for _, ch := range []string{"a", "é", "€", "𝄞"} {
			ok, bad := strings.Repeat(ch, 100), strings.Repeat(ch, 101)
			if err := d.WriteBlob(f.ctx, ok, []byte(ch)); err != nil {
				t.Errorf("WriteBlob(100 × %q): %v, want success", ch, err)
			}
			if err := d.WriteBlob(f.ctx, bad, []byte(ch)); !isInvalidName(err) {
				t.Errorf("WriteBlob(101 × %q): %v, want an InvalidBlobNameError", ch, err)
			}
			if _, err := d.GetDir(f.ctx, bad); !isInvalidName(err) {
				t.Errorf("GetDir(101 × %q): %v, want an InvalidBlobNameError", ch, err)
			}
			f.write(f.dir(d, "dirs", ok), "x", ch)
		}
		blobs, _ := f.list(d)
		if len(blobs) != 4 {
			t.Errorf("Query listed %d blobs, want the 4 names of 100 characters", len(blobs))
		}
		_, dirs := f.list(f.dir(d, "dirs"))
		if len(dirs) != 4 {
			t.Errorf("Query listed %d directories, want the 4 names of 100 characters", len(dirs))
		}
	}},
	{"AwkwardNamesRoundTripAsBlobs", func(t *testing.T, f *fixture) {
		d := f.dir(f.sheet("awkward"), "blobs")
		names, odd := f.s.addressable(awkwardNames)
		for i, n := range names {
			f.write(d, n, fmt.Sprintf("blob %d", i))
		}
		for _, n := range odd {
			_ = d.WriteBlob(f.ctx, n, []byte("unaddressable")) // may be refused
		}
		for i, n := range names {
			f.wantBlob(d, n, fmt.Sprintf("blob %d", i))
		}
		f.wantUnaddressable(d, odd)
		f.wantList(d, names, nil)
		for i, n := range names {
			if i%2 == 0 {
				if err := d.RemoveBlob(f.ctx, n); err != nil {
					t.Errorf("RemoveBlob(%q): %v", n, err)
				}
			}
		}
		var rest []string
		for i, n := range names {
			if i%2 == 1 {
				rest = append(rest, n)
				f.wantBlob(d, n, fmt.Sprintf("blob %d", i))
			} else {
				f.wantMissing(d, n)
			}
		}
		f.wantList(d, rest, nil)
	}},
	{"AwkwardNamesRoundTripAsDirectories", func(t *testing.T, f *fixture) {
		d := f.dir(f.sheet("awkward"), "dirs")
		names, odd := f.s.addressable(awkwardNames)
		for i, n := range names {
			f.write(f.dir(d, n), "x", fmt.Sprintf("in dir %d", i))
		}
		f.wantUnaddressable(d, odd)
		f.wantList(d, nil, names)
		for i, n := range names {
			sub := f.dir(d, n)
			f.wantBlob(sub, "x", fmt.Sprintf("in dir %d", i))
			f.wantList(sub, []string{"x"}, nil)
		}
		// Each name's directory holds only its own blob: no escaping or
		// normalization merged two names.
		f.wantSnapshot(f.dir(d, "A"), map[string]string{"x": fmt.Sprintf("in dir %d", indexOf(names, "A"))}, "directory A")
		if err := f.dir(d, "a").RemoveAll(f.ctx); err != nil {
			t.Fatalf("RemoveAll(a): %v", err)
		}
		f.wantBlob(f.dir(d, "A"), "x", fmt.Sprintf("in dir %d", indexOf(names, "A")))
		f.wantBlob(f.dir(d, "a.b"), "x", fmt.Sprintf("in dir %d", indexOf(names, "a.b")))
	}},
	{"NamesAreComparedExactly", func(t *testing.T, f *fixture) {
		d := f.sheet("exact")
		pairs := [][2]string{{"A", "a"}, {"é", "e\u0301"}, {"x", "x "}, {"a.b", "a%2Eb"}, {"%2F", "%2f"}}
		for _, p := range pairs {
			for i, n := range p {
				if _, odd := f.s.addressable([]string{n}); len(odd) == 0 {
					f.write(d, n, fmt.Sprintf("%d %s", i, n))
				}
			}
		}
		for _, p := range pairs {
			for i, n := range p {
				if _, odd := f.s.addressable([]string{n}); len(odd) == 0 {
					f.wantBlob(d, n, fmt.Sprintf("%d %s", i, n))
				} else {
					f.wantUnaddressable(d, []string{n})
				}
			}
		}
	}},
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
