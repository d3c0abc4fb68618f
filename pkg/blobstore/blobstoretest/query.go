package blobstoretest

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// fill writes n blobs named prefix000... into d and returns their names.
func (f *fixture) fill(d blobstore.BlobDir, prefix string, n int) []string {
	f.t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("%s%04d", prefix, i)
		f.write(d, name, name)
		names = append(names, name)
	}
	return names
}

// token returns the continuation token of d's first page; d must hold more
// than a page.
func (f *fixture) token(d blobstore.BlobDir) (blobstore.Page, string) {
	f.t.Helper()
	p, err := query(f.ctx, d, "")
	if err != nil {
		f.t.Fatalf("Query: %v", err)
	}
	if p.Continuation == "" {
		f.t.Fatalf("Query of a directory with more than %d entries returned no continuation token (page: %d blobs, %d dirs)",
			f.pageSize, len(p.Blobs), len(p.Dirs))
	}
	return p, p.Continuation
}

func pageNames(p blobstore.Page) []string {
	var out []string
	for _, b := range p.Blobs {
		out = append(out, "blob "+b)
	}
	for _, d := range p.Dirs {
		out = append(out, "dir "+d)
	}
	slices.Sort(out)
	return out
}

func samePage(a, b blobstore.Page) bool {
	return slices.Equal(pageNames(a), pageNames(b)) && (a.Continuation == "") == (b.Continuation == "")
}

var queryTests = []test{
	{"EmptyDirectory", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		for _, d := range []blobstore.BlobDir{root, f.dir(root, "never")} {
			p, err := query(f.ctx, d, "")
			if err != nil {
				t.Fatalf("Query of an empty directory: %v", err)
			}
			if len(p.Blobs)+len(p.Dirs) > 0 || p.Continuation != "" {
				t.Errorf("Query of an empty directory = %+v, want an empty last page", p)
			}
		}
	}},
	{"SmallDirectory", func(t *testing.T, f *fixture) {
		d := f.sheet("s")
		f.write(d, "b", "1")
		f.writeAt(d, "d/x", "2")
		f.wantList(d, []string{"b"}, []string{"d"})
	}},
	{"ExactlyOnePageOrTwo", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		for _, n := range []int{f.pageSize, 2 * f.pageSize, f.pageSize + 1} {
			d := f.dir(root, fmt.Sprint(n))
			names := f.fill(d, "b", n)
			f.wantList(d, names, nil) // no token may be followed by an empty page
		}
	}},
	{"ManyPagesOfBlobsAndDirectories", func(t *testing.T, f *fixture) {
		d := f.dir(f.sheet("s"), "big")
		nb, nd := 2*f.pageSize+3, f.pageSize+2
		var blobs, dirs []string
		// Interleave the names of both kinds, so that neither kind comes
		// first in a sorted listing.
		for i := range nb + nd {
			name := fmt.Sprintf("n%04d", i)
			if i%3 == 1 && len(dirs) < nd || len(blobs) == nb {
				dirs = append(dirs, name)
				if i%2 == 0 {
					f.writeAt(d, name+"/inner/deeper", name) // non-empty only below
				} else {
					f.writeAt(d, name+"/x", name)
				}
			} else {
				blobs = append(blobs, name)
				f.write(d, name, name)
			}
		}
		pages := 0
		token := ""
		for {
			p, err := query(f.ctx, d, token)
			if err != nil {
				t.Fatalf("Query page %d: %v", pages+1, err)
			}
			pages++
			if p.Continuation == "" {
				break
			}
			token = p.Continuation
			if pages > 10*(nb+nd) {
				t.Fatal("Query never ends")
			}
		}
		if minPages := (nb + nd + f.pageSize - 1) / f.pageSize; pages < minPages {
			t.Errorf("Query returned %d pages for %d entries with page size %d, want at least %d", pages, nb+nd, f.pageSize, minPages)
		}
		f.wantList(d, blobs, dirs)
	}},
	{"ListsNoDeeperNames", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "top", "1")
		f.writeAt(root, "d/mid", "2")
		f.writeAt(root, "d/e/low", "3")
		f.writeAt(root, "d/e/f/lowest", "4")
		f.wantList(root, []string{"top"}, []string{"d"})
		f.wantList(f.dir(root, "d"), []string{"mid"}, []string{"e"})
		f.wantList(f.dir(root, "d", "e"), []string{"low"}, []string{"f"})
		f.wantList(f.dir(root, "d", "e", "f"), []string{"lowest"}, nil)
	}},
	{"RepeatedTokenGivesSamePageOrNoContinuation", func(t *testing.T, f *fixture) {
		d := f.sheet("s")
		all := f.fill(d, "b", 3*f.pageSize+1)
		first, tok := f.token(d)
		second, err := query(f.ctx, d, tok)
		if err != nil {
			t.Fatalf("Query(token): %v", err)
		}
		again, err := query(f.ctx, d, tok)
		switch {
		case isNoContinuation(err):
			t.Logf("this store refuses a repeated token")
		case err != nil:
			t.Fatalf("Query(same token again): %v, want the same page or a NoContinuationError", err)
		case !samePage(again, second):
			t.Errorf("Query(same token again) = %q, want the same page %q", pageNames(again), pageNames(second))
		}
		// Whatever the answer, the listing finishes from the first reply.
		seen := append(pageNames(first), pageNames(second)...)
		for tok = second.Continuation; tok != ""; {
			p, err := query(f.ctx, d, tok)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			seen = append(seen, pageNames(p)...)
			tok = p.Continuation
		}
		var want []string
		for _, n := range all {
			want = append(want, "blob "+n)
		}
		slices.Sort(seen)
		slices.Sort(want)
		if d := diffNames(seen, want); d != "" {
			t.Errorf("listing with a repeated token: %s", d)
		}
	}},
	{"TokenFromAnotherDirectory", func(t *testing.T, f *fixture) {
		// Every directory holds the same names, so a token that is not
		// bound to its directory would be accepted somewhere.
		n := f.pageSize + 1
		other := f.otherStore()
		dirs := map[string]blobstore.BlobDir{
			"sheet t1 /":            f.sheet("t1"),
			"sheet t1 /x":           f.dir(f.sheet("t1"), "x"),
			"sheet t1 /y":           f.dir(f.sheet("t1"), "y"),
			"sheet t1 /p/x":         f.dir(f.sheet("t1"), "p", "x"),
			"sheet t1 /x/x":         f.dir(f.sheet("t1"), "x", "x"),
			"sheet t2 /x":           f.dir(f.sheet("t2"), "x"),
			"sheet t1x /x":          f.dir(f.sheet("t1x"), "x"),
			"sheet T1 /x":           f.dir(f.sheet("T1"), "x"),
			"another store, t1 /x":  f.dir(f.sheetOf(other, "t1"), "x"),
			"another store, t1 /":   f.sheetOf(other, "t1"),
			"another store, t2 /x/": f.dir(f.sheetOf(other, "t2"), "x"),
		}
		for _, d := range dirs {
			f.fill(d, "b", n)
		}
		empty := f.dir(f.sheet("t1"), "empty")
		dirs["sheet t1 /empty (empty)"] = empty
		for from, src := range dirs {
			if src == empty {
				continue
			}
			_, tok := f.token(src)
			for to, dst := range dirs {
				if to == from {
					continue
				}
				if p, err := query(f.ctx, dst, tok); !isNoContinuation(err) {
					t.Errorf("token from %s used in %s: %q, %v; want a NoContinuationError", from, to, pageNames(p), err)
				}
			}
		}
	}},
	{"TamperedTokens", func(t *testing.T, f *fixture) {
		d := f.sheet("s")
		f.fill(d, "b", 3*f.pageSize+1)
		_, tok := f.token(d)
		want, err := query(f.ctx, d, tok)
		if err != nil {
			t.Fatalf("Query(token): %v", err)
		}
		variants := map[string]string{
			"truncated by one":    tok[:len(tok)-1],
			"first half":          tok[:len(tok)/2],
			"without first":       tok[1:],
			"appended A":          tok + "A",
			"appended =":          tok + "=",
			"appended NUL":        tok + "\x00",
			"prefixed A":          "A" + tok,
			"doubled":             tok + tok,
			"reversed":            reverse(tok),
			"spaces around":       " " + tok + " ",
			"upper case":          strings.ToUpper(tok),
			"lower case":          strings.ToLower(tok),
			"base64 of the token": base64.StdEncoding.EncodeToString([]byte(tok)),
		}
		for _, i := range spread(len(tok), 24) {
			for _, mask := range []byte{0x01, 0x20, 0x80} {
				b := []byte(tok)
				b[i] ^= mask
				variants[fmt.Sprintf("byte %d xor %#x", i, mask)] = string(b)
			}
		}
		for what, v := range variants {
			if v == tok {
				continue
			}
			p, err := query(f.ctx, d, v)
			// A token that decodes to the very same token (say, base64
			// padding bits) may be honoured: it names the same page.
			if !isNoContinuation(err) && (err != nil || !samePage(p, want)) {
				t.Errorf("tampered token (%s): %q, %v; want a NoContinuationError", what, pageNames(p), err)
			}
		}
	}},
	{"GarbageTokens", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		all := f.fill(root, "b", f.pageSize+1)
		f.writeAt(root, "d/x", "x")
		garbage := []string{
			"x", "0", "1", " ", "\x00", "null", "{}", "[]", "%", "%00", "/", "..", "../x", "b000", "b001", "d",
			"\xff\xfe", "é", strings.Repeat("A", 100_000), "=", "====", "AAAA", "-", "_",
		}
		rng := rand.New(rand.NewPCG(7, 11))
		for n := 1; n <= 96; n += 5 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			garbage = append(garbage, string(b), base64.RawURLEncoding.EncodeToString(b), base64.StdEncoding.EncodeToString(b),
				fmt.Sprintf("%x", b))
		}
		for _, d := range []blobstore.BlobDir{root, f.dir(root, "d"), f.dir(root, "empty")} {
			for _, g := range garbage {
				if p, err := query(f.ctx, d, g); !isNoContinuation(err) {
					t.Errorf("garbage token %s: %q, %v; want a NoContinuationError", short(g), pageNames(p), err)
				}
			}
		}
		// Garbage leaves the store working: a fresh listing is complete.
		f.wantList(root, all, []string{"d"})
	}},
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

// spread returns up to k positions spread over [0, n), including both ends.
func spread(n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	for i := range k {
		out = append(out, i*(n-1)/(k-1))
	}
	return slices.Compact(out)
}
