//go:build unix

package fsblob_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// FuzzNoEscape runs programs of store operations, decoded from the fuzz
// input, on sheets "s" and "evil" of a world (see newWorld): names and
// paths are arbitrary bytes or words from a dictionary that holds the
// planted links, "..", "/", absolute paths, NUL and long Unicode. It fails
// when
//
//   - anything outside the store's directory, or in sheet t, changed
//     (created, modified or removed: the snapshot is byte for byte, with
//     modification times);
//   - a read returned bytes that the program did not write (everything
//     outside and in t holds "SECRET", which the program never writes);
//   - a listing showed a name the program did not write;
//   - an error is not one of the contract's (package errs), or a call
//     panicked.
//
// go test runs the seeds below; go test -fuzz FuzzNoEscape explores.
func FuzzNoEscape(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		w := newWorld(t)
		r := &runner{t: t, w: w, p: &prog{b: input},
			data:  map[string]bool{"keep me": true, "inner blob": true},
			names: map[string]bool{"keep": true, "d": true, "inner": true}}
		for ops := 0; ops < 64 && !r.p.done(); ops++ {
			r.step()
		}
		w.check(t)
	})
}

// dictionary holds the words a program refers to by number, so that the
// fuzzer reaches the traps without guessing their names.
var dictionary = append(slices.Clone(plantedNames),
	"..", ".", "", "/", "/etc/passwd", "../outside", "../../t", "a/b", "x", "y", "~", "^up", "secret", "sub",
	"deep", "empty", "link", "outside", "zz-outside-only", "zz-t-only", "t", "s", "evil", "é", "e\u0301", "A", "a",
	strings.Repeat("a", 100), strings.Repeat("a", 101), strings.Repeat("𝄞", 100), "\x00", "a\x00b", "%2e%2e", "..\x00",
	"\\..\\..", "tmp", "sheets", "key", "lock", "format")

const dictMark = 0xf0

// prog decodes a fuzz input: a string is a length byte then that many
// bytes, or dictMark and more then a dictionary index.
type prog struct {
	b []byte
	i int
}

func (p *prog) done() bool { return p.i >= len(p.b) }

func (p *prog) byte() byte {
	if p.done() {
		return 0
	}
	c := p.b[p.i]
	p.i++
	return c
}

func (p *prog) str() string {
	n := int(p.byte())
	if n >= dictMark {
		return dictionary[int(p.byte())%len(dictionary)]
	}
	end := min(p.i+n, len(p.b))
	s := string(p.b[p.i:end])
	p.i = end
	return s
}

var fuzzSheets = []string{"s", "evil"}

type runner struct {
	t     *testing.T
	w     *world
	p     *prog
	data  map[string]bool // every content written
	names map[string]bool // every name written
}

// checkErr fails on an error that is not one of the contract's.
func (r *runner) checkErr(what string, err error) {
	r.t.Helper()
	if err != nil && errs.TypeOf(err) == "" && !errors.Is(err, blobstore.ErrCopyUnsupported) {
		r.t.Errorf("%s: %v (%T), not an error of package errs", what, err, err)
	}
}

// dir decodes a sheet and a path and walks to it; nil if a GetDir fails.
// The path's names count as written: a write below makes them listable.
func (r *runner) dir() (blobstore.BlobDir, string) {
	sheet := fuzzSheets[int(r.p.byte())%len(fuzzSheets)]
	d, err := r.w.store.Sheet(sheet)
	if err != nil {
		r.t.Fatalf("Sheet(%q): %v", sheet, err)
	}
	n := int(r.p.byte()) % 4
	where := sheet + ":"
	for range n {
		name := r.p.str()
		where += "/" + name
		sub, err := d.GetDir(context.Background(), name)
		r.checkErr("GetDir("+where+")", err)
		if err != nil {
			return nil, where
		}
		r.names[name] = true
		d = sub
	}
	return d, where
}

func (r *runner) step() {
	t, ctx := r.t, context.Background()
	op := r.p.byte() % 9
	d, where := r.dir()
	switch op {
	case 0: // WriteBlob
		name, data := r.p.str(), strings.ReplaceAll(r.p.str(), secret, "secret")
		if d == nil {
			return
		}
		r.data[data] = true
		r.names[name] = true
		r.checkErr("WriteBlob("+where+"/"+name+")", d.WriteBlob(ctx, name, []byte(data)))
	case 1: // ReadBlob
		name := r.p.str()
		if d == nil {
			return
		}
		b, err := d.ReadBlob(ctx, name)
		r.checkErr("ReadBlob("+where+"/"+name+")", err)
		if err == nil && !r.data[string(b)] {
			t.Errorf("ReadBlob(%s/%q) returned %q, which was never written", where, name, b)
		}
	case 2: // RemoveBlob
		name := r.p.str()
		if d == nil {
			return
		}
		r.checkErr("RemoveBlob("+where+"/"+name+")", d.RemoveBlob(ctx, name))
	case 3: // GetDir, then list it
		name := r.p.str()
		if d == nil {
			return
		}
		sub, err := d.GetDir(ctx, name)
		r.checkErr("GetDir("+where+"/"+name+")", err)
		if err == nil {
			r.list(sub, where+"/"+name, "")
		}
	case 4: // RemoveAll
		if d == nil {
			return
		}
		r.checkErr("RemoveAll("+where+")", d.RemoveAll(ctx))
	case 5: // Query, every page
		if d == nil {
			return
		}
		r.list(d, where, "")
	case 6, 7: // Copy, within one sheet or from the other
		dname := r.p.str()
		src, swhere := r.dir()
		sname := r.p.str()
		if d == nil || src == nil {
			return
		}
		r.names[dname] = true
		r.checkErr("Copy("+where+"/"+dname+" <- "+swhere+"/"+sname+")", blobstore.Copy(ctx, d, dname, src, sname))
	case 8: // Query with an arbitrary token
		tok := r.p.str()
		if d == nil {
			return
		}
		r.list(d, where, tok)
	}
}

// list walks the pages of d's listing from token.
func (r *runner) list(d blobstore.BlobDir, where, token string) {
	for range 50 {
		p, err := d.Query(context.Background(), token)
		r.checkErr("Query("+where+")", err)
		if err != nil {
			return
		}
		for _, n := range append(p.Blobs, p.Dirs...) {
			if !r.names[n] {
				r.t.Errorf("Query(%s) listed %q, which was never written", where, n)
			}
		}
		if token = p.Continuation; token == "" {
			return
		}
	}
}

// fuzzSeeds aims each kind of operation at each trap.
func fuzzSeeds() [][]byte {
	word := func(w string) []byte {
		i := slices.Index(dictionary, w)
		if i < 0 {
			panic("not in the dictionary: " + w)
		}
		return []byte{dictMark, byte(i)}
	}
	raw := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	// at encodes a sheet (0 s, 1 evil) and a path of dictionary words.
	at := func(sheet byte, path ...string) []byte {
		b := []byte{sheet, byte(len(path))}
		for _, p := range path {
			b = append(b, word(p)...)
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	var seeds [][]byte
	for _, link := range []string{"lnkdir", "lnkfile", "lnkabs", "other", "Up", "lnk", "lnksub", longLinkName} {
		path := []string{link}
		if link == "lnk" || link == "lnksub" {
			path = []string{"d", link}
		}
		seeds = append(seeds, cat(
			[]byte{0}, at(0, path...), word("x"), raw("data"), // write below the link
			[]byte{1}, at(0, path...), word("secret"), // read below it
			[]byte{1}, at(0, path[:len(path)-1]...), word(link), // read the link itself
			[]byte{5}, at(0, path...), // list it
			[]byte{2}, at(0, path...), word("zz-outside-only"), // remove below it
			[]byte{2}, at(0, path...), word("zz-t-only"),
			[]byte{6}, at(0), word("y"), at(0, path[:len(path)-1]...), word(link), // copy the link
			[]byte{6}, at(0, path...), word("y"), at(0), word("keep"), // copy into it
			[]byte{4}, at(0, path...), // remove all below it
			[]byte{0}, at(0, path[:len(path)-1]...), word(link), raw("replaces the link"),
		))
	}
	seeds = append(seeds,
		cat([]byte{0}, at(1), word("x"), raw("in evil"), []byte{5}, at(1), []byte{1}, at(1), word("secret"),
			[]byte{2}, at(1), word("secret"), []byte{4}, at(1), []byte{7}, at(0), word("x"), at(1), word("secret")),
		cat([]byte{0}, at(0, "..", "outside"), word("x"), raw("dotdot"), []byte{3}, at(0), word(".."),
			[]byte{0}, at(0), word("/etc/passwd"), raw("abs"), []byte{0}, at(0), word("a\x00b"), raw("nul")),
		cat([]byte{0}, at(0, longLinkName), word(strings.Repeat("𝄞", 100)), raw("long"), []byte{5}, at(0),
			[]byte{4}, at(0)),
		cat([]byte{8}, at(0), raw("garbage token"), []byte{8}, at(0, "lnkdir"), raw("x")),
	)
	return seeds
}
