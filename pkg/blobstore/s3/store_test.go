package s3blob

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

var ctx = context.Background()

func sheet(t *testing.T, s *Store, id string) blobstore.BlobDir {
	t.Helper()
	d, err := s.Sheet(id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func subdir(t *testing.T, d blobstore.BlobDir, names ...string) blobstore.BlobDir {
	t.Helper()
	for _, n := range names {
		var err error
		if d, err = d.GetDir(ctx, n); err != nil {
			t.Fatalf("GetDir(%q): %v", n, err)
		}
	}
	return d
}

func write(t *testing.T, d blobstore.BlobDir, name, data string) {
	t.Helper()
	if err := d.WriteBlob(ctx, name, []byte(data)); err != nil {
		t.Fatalf("WriteBlob(%q): %v", name, err)
	}
}

func read(t *testing.T, d blobstore.BlobDir, name string) string {
	t.Helper()
	b, err := d.ReadBlob(ctx, name)
	if err != nil {
		t.Fatalf("ReadBlob(%q): %v", name, err)
	}
	return string(b)
}

// listAll pages through d and returns its sorted blob and dir names.
func listAll(t *testing.T, d blobstore.BlobDir) (blobs, dirs []string) {
	t.Helper()
	tok := ""
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("Query does not terminate")
		}
		p, err := d.Query(ctx, tok)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		blobs = append(blobs, p.Blobs...)
		dirs = append(dirs, p.Dirs...)
		if p.Continuation == "" {
			break
		}
		tok = p.Continuation
	}
	slices.Sort(blobs)
	slices.Sort(dirs)
	return blobs, dirs
}

func is404(err error) bool {
	var se *errs.StorageError
	return errors.As(err, &se) && se.StatusCode == 404
}

func isWrongKind(err error) bool {
	var e *errs.BlobWrongKindError
	return errors.As(err, &e)
}

func isNoContinuation(err error) bool {
	var e *errs.NoContinuationError
	return errors.As(err, &e)
}

func TestBasics(t *testing.T) {
	forEach(t, func(t *testing.T, em emulator) {
		s := newStore(t, em, Options{})
		root := sheet(t, s, "sheet-1")

		if _, err := root.ReadBlob(ctx, "missing"); !is404(err) {
			t.Fatalf("ReadBlob(missing) = %v, want 404", err)
		}
		buf := []byte("hello")
		if err := root.WriteBlob(ctx, "a", buf); err != nil {
			t.Fatal(err)
		}
		buf[0] = 'J'
		if got := read(t, root, "a"); got != "hello" {
			t.Fatalf("read %q after changing the caller's buffer", got)
		}
		write(t, root, "a", "overwritten")
		if got := read(t, root, "a"); got != "overwritten" {
			t.Fatalf("read %q", got)
		}
		write(t, root, "empty", "")
		if got := read(t, root, "empty"); got != "" {
			t.Fatalf("empty blob read as %q", got)
		}
		write(t, subdir(t, root, "d", "e"), "x", "deep")
		if got := read(t, subdir(t, root, "d", "e"), "x"); got != "deep" {
			t.Fatalf("read %q", got)
		}
		// Kind rules, both ways and on every operation.
		if _, err := root.GetDir(ctx, "a"); !isWrongKind(err) {
			t.Errorf("GetDir(blob) = %v, want BlobWrongKindError", err)
		}
		if _, err := root.ReadBlob(ctx, "d"); !isWrongKind(err) {
			t.Errorf("ReadBlob(dir) = %v, want BlobWrongKindError", err)
		}
		if err := root.WriteBlob(ctx, "d", nil); !isWrongKind(err) {
			t.Errorf("WriteBlob(dir) = %v, want BlobWrongKindError", err)
		}
		if err := root.RemoveBlob(ctx, "d"); !isWrongKind(err) {
			t.Errorf("RemoveBlob(dir) = %v, want BlobWrongKindError", err)
		}
		if _, err := subdir(t, root, "d").ReadBlob(ctx, "e"); !isWrongKind(err) {
			t.Errorf("ReadBlob(dir with only a sub-dir) = %v, want BlobWrongKindError", err)
		}
		// An empty directory is nothing: a blob may take its name.
		subdir(t, root, "ghost")
		write(t, root, "ghost", "now a blob")

		blobs, dirs := listAll(t, root)
		if want := []string{"a", "empty", "ghost"}; !slices.Equal(blobs, want) {
			t.Errorf("blobs %q, want %q", blobs, want)
		}
		if want := []string{"d"}; !slices.Equal(dirs, want) {
			t.Errorf("dirs %q, want %q", dirs, want)
		}

		if err := root.RemoveBlob(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := root.RemoveBlob(ctx, "a"); err != nil {
			t.Fatalf("removing a missing blob: %v", err)
		}
		if _, err := root.ReadBlob(ctx, "a"); !is404(err) {
			t.Fatalf("ReadBlob(removed) = %v, want 404", err)
		}
		if err := subdir(t, root, "d").RemoveAll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, dirs := listAll(t, root); len(dirs) != 0 {
			t.Fatalf("dirs %q after RemoveAll", dirs)
		}
		// Gone as a directory, so usable as a blob name.
		write(t, root, "d", "blob now")
	})
}

func TestInvalidNames(t *testing.T) {
	s := newStore(t, emulator{name: "gofakes3", fresh: gofakes3Bucket}, Options{})
	root := sheet(t, s, "s")
	for _, name := range []string{"", ".", "..", "a/b", "../x", "x\x00", "tab\t", strings.Repeat("é", 101), "\xff"} {
		var e *errs.InvalidBlobNameError
		if err := root.WriteBlob(ctx, name, nil); !errors.As(err, &e) {
			t.Errorf("WriteBlob(%q) = %v", name, err)
		}
		if _, err := root.ReadBlob(ctx, name); !errors.As(err, &e) {
			t.Errorf("ReadBlob(%q) = %v", name, err)
		}
		if err := root.RemoveBlob(ctx, name); !errors.As(err, &e) {
			t.Errorf("RemoveBlob(%q) = %v", name, err)
		}
		if _, err := root.GetDir(ctx, name); !errors.As(err, &e) {
			t.Errorf("GetDir(%q) = %v", name, err)
		}
		if err := blobstore.Copy(ctx, root, name, root, "x"); !errors.As(err, &e) {
			t.Errorf("Copy to %q = %v", name, err)
		}
	}
	for _, id := range []string{"", "..", "a/b", "sheets/x", "a b"} {
		var e *errs.ValidationError
		if _, err := s.Sheet(id); !errors.As(err, &e) {
			t.Errorf("Sheet(%q) = %v, want ValidationError", id, err)
		}
	}
	if _, err := New(aws.Config{}, "b", Options{PageSize: 1001}); err == nil {
		t.Error("page size 1001 accepted")
	}
}

// Keys are stored under the sheet's prefix, with the name as it is.
func TestKeyLayout(t *testing.T) {
	cfg, bucket := gofakes3Bucket(t)
	s := storeOn(t, cfg, bucket, Options{})
	write(t, subdir(t, sheet(t, s, "sh"), "7", "tiles"), "0-0-100-100", "{}")
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || *out.Contents[0].Key != awsschema.BlobPrefix("sh")+"7/tiles/0-0-100-100" {
		t.Fatalf("keys %v", out.Contents)
	}
}

func TestSheetsAreIsolated(t *testing.T) {
	forEach(t, func(t *testing.T, em emulator) {
		s := newStore(t, em, Options{})
		a, ab := sheet(t, s, "a"), sheet(t, s, "ab")
		write(t, a, "x", "from a")
		write(t, ab, "x", "from ab")
		write(t, subdir(t, ab, "d"), "y", "y")
		if got := read(t, a, "x"); got != "from a" {
			t.Fatalf("read %q", got)
		}
		if blobs, dirs := listAll(t, a); !slices.Equal(blobs, []string{"x"}) || len(dirs) != 0 {
			t.Fatalf("sheet a lists %q %q", blobs, dirs)
		}
		if err := a.RemoveAll(ctx); err != nil {
			t.Fatal(err)
		}
		if got := read(t, ab, "x"); got != "from ab" {
			t.Fatalf("sheet ab's blob after removing sheet a: %q", got)
		}
	})
}

// RemoveAll of "a" must not touch "ab", "a b", "a-", nor the blob "a0"
// next to it: the prefix it deletes ends in "/".
func TestRemoveAllPrefixSafety(t *testing.T) {
	forEach(t, func(t *testing.T, em emulator) {
		s := newStore(t, em, Options{})
		c := newRequestCounter()
		root := sheet(t, s, "s")
		for _, n := range []string{"a", "ab", "a b", "a-", "a.x"} {
			write(t, subdir(t, root, n), "f", n)
		}
		write(t, root, "a0", "blob")
		d := subdir(t, root, "a")
		for i := range 6 {
			write(t, subdir(t, d, "n"), string(rune('p'+i)), "x")
		}
		write(t, d, "top", "x")

		// Batches of 3 keys over 8 keys: 3 DeleteObjects.
		s.removeBatch = 3
		s.client = s3.New(s.client.Options(), c.clientOption)
		if err := d.RemoveAll(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.take(); got != "DeleteObjects=3 ListObjectsV2=3" {
			t.Errorf("requests of RemoveAll over 8 keys in batches of 3: %s", got)
		}
		blobs, dirs := listAll(t, root)
		if want := []string{"a b", "a-", "a.x", "ab"}; !slices.Equal(dirs, want) {
			t.Errorf("dirs %q, want %q", dirs, want)
		}
		if want := []string{"a0"}; !slices.Equal(blobs, want) {
			t.Errorf("blobs %q, want %q", blobs, want)
		}
		if err := d.RemoveAll(ctx); err != nil {
			t.Fatalf("RemoveAll of an empty dir: %v", err)
		}
		// The removed directory stays usable.
		write(t, d, "again", "x")
		if got := read(t, d, "again"); got != "x" {
			t.Fatal(got)
		}
	})
}

// Names with characters that mean something in URLs, XML or S3 copy
// sources come back as they went in: as keys, in listings and in copies.
func TestAwkwardNames(t *testing.T) {
	names := []string{
		"a b", "100%", "%20", "a+b", "+", "é", "日本語", "🙂", "q?x=1", "#frag", "a&b",
		"<tag>", `"quoted"`, "back\\slash", "~tilde", "*", "a;b", "a,b", "a=b", "a@b:c", "...",
		" lead", "trail ", "\u00a0nbsp", "'", "a%2Fb", "%", strings.Repeat("ü", 100),
	}
	forEach(t, func(t *testing.T, em emulator) {
		s := newStore(t, em, Options{PageSize: 7})
		root := sheet(t, s, "awk")
		src, dst := subdir(t, root, "src"), subdir(t, root, "dst")
		for _, n := range names {
			write(t, src, n, "v:"+n)
		}
		for _, n := range names {
			if got := read(t, src, n); got != "v:"+n {
				t.Errorf("ReadBlob(%q) = %q", n, got)
			}
			if err := blobstore.Copy(ctx, dst, n, src, n); err != nil {
				t.Errorf("Copy(%q): %v", n, err)
			} else if got := read(t, dst, n); got != "v:"+n {
				t.Errorf("copy of %q reads %q", n, got)
			}
			write(t, subdir(t, root, "dirs", n), "x", "in "+n)
		}
		want := slices.Sorted(slices.Values(names))
		if blobs, dirs := listAll(t, src); !slices.Equal(blobs, want) || len(dirs) != 0 {
			t.Errorf("listing:\n got %q\nwant %q\ndirs %q", blobs, want, dirs)
		}
		if blobs, dirs := listAll(t, subdir(t, root, "dirs")); !slices.Equal(dirs, want) || len(blobs) != 0 {
			t.Errorf("dir listing:\n got %q\nwant %q\nblobs %q", dirs, want, blobs)
		}
		for _, n := range names {
			if got := read(t, subdir(t, root, "dirs", n), "x"); got != "in "+n {
				t.Errorf("blob in dir %q reads %q", n, got)
			}
			if err := dst.RemoveBlob(ctx, n); err != nil {
				t.Errorf("RemoveBlob(%q): %v", n, err)
			}
		}
		if blobs, _ := listAll(t, dst); len(blobs) != 0 {
			t.Errorf("left after removing: %q", blobs)
		}
	})
}

func TestContinuationTokens(t *testing.T) {
	forEach(t, func(t *testing.T, em emulator) {
		cfg, bucket := em.fresh(t)
		s := storeOn(t, cfg, bucket, Options{PageSize: 2})
		one, two := sheet(t, s, "one"), sheet(t, s, "two")
		d1, d2 := subdir(t, one, "d"), subdir(t, one, "e")
		for _, d := range []blobstore.BlobDir{one, two, d1, d2} {
			for _, n := range []string{"a", "b", "c", "d0", "e0"} {
				write(t, d, n, "x")
			}
		}
		first, err := d1.Query(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		tok := first.Continuation
		if tok == "" {
			t.Fatal("no continuation with page size 2")
		}
		// Repeating a token gives the same page.
		p1, err := d1.Query(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := d1.Query(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p1.Blobs, p2.Blobs) || !slices.Equal(p1.Dirs, p2.Dirs) || p1.Continuation != p2.Continuation {
			t.Errorf("same token, different pages: %+v then %+v", p1, p2)
		}
		// Another directory, another sheet, the same path in another
		// sheet, the sheet's root: all refused.
		sameNameOther := subdir(t, two, "d")
		for name, d := range map[string]blobstore.BlobDir{"sibling": d2, "parent": one, "other sheet": two, "same path in other sheet": sameNameOther} {
			if _, err := d.Query(ctx, tok); !isNoContinuation(err) {
				t.Errorf("token used in %s: %v, want NoContinuationError", name, err)
			}
		}
		// Another store on the same bucket with another key refuses it;
		// with the same (default) key it accepts it.
		if _, err := storeOn(t, cfg, bucket, Options{TokenKey: []byte("other")}).mustDir(t, "one", "d").Query(ctx, tok); !isNoContinuation(err) {
			t.Errorf("token used with another key: %v", err)
		}
		if _, err := storeOn(t, cfg, bucket, Options{}).mustDir(t, "one", "d").Query(ctx, tok); err != nil {
			t.Errorf("token used by another process with the same key: %v", err)
		}
		// Any change is detected.
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		for i := range raw {
			bad := bytes.Clone(raw)
			bad[i] ^= 0x01
			if _, err := d1.Query(ctx, base64.RawURLEncoding.EncodeToString(bad)); !isNoContinuation(err) {
				t.Errorf("token with byte %d flipped: %v", i, err)
			}
		}
		for _, bad := range []string{"x", "!!!", tok[:len(tok)-1], tok + "A", base64.RawURLEncoding.EncodeToString(raw[:17])} {
			if _, err := d1.Query(ctx, bad); !isNoContinuation(err) {
				t.Errorf("token %q: %v", bad, err)
			}
		}
		// A forged token with a valid MAC (the default key is derivable
		// from the bucket) still lists nothing outside the directory.
		forged := d1.(*dir).sealToken(base64.URLEncoding.EncodeToString([]byte(awsschema.BlobPrefix("two") + "a")))
		if p, err := d1.Query(ctx, forged); err == nil {
			for _, n := range append(p.Blobs, p.Dirs...) {
				if !slices.Contains([]string{"a", "b", "c", "d0", "e0"}, n) {
					t.Errorf("forged token listed %q", n)
				}
			}
		} else if !isNoContinuation(err) && !is404(err) {
			var se *errs.StorageError
			if !errors.As(err, &se) {
				t.Errorf("forged token: %v", err)
			}
		}
	})
}

func (s *Store) mustDir(t *testing.T, sheetID string, names ...string) blobstore.BlobDir {
	return subdir(t, sheet(t, s, sheetID), names...)
}

// Pages of 2 over blobs and directories interleaved in key order list
// everything exactly once (a page may end on a common prefix).
func TestPaging(t *testing.T) {
	forEach(t, func(t *testing.T, em emulator) {
		for _, size := range []int{1, 2, 3} {
			s := newStore(t, em, Options{PageSize: size})
			root := sheet(t, s, "p")
			var wantBlobs, wantDirs []string
			for i, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
				if i%2 == 0 {
					for j := range 3 {
						write(t, subdir(t, root, n), string(rune('x'+j)), "v")
					}
					wantDirs = append(wantDirs, n)
				} else {
					write(t, root, n, "v")
					wantBlobs = append(wantBlobs, n)
				}
			}
			blobs, dirs := listAll(t, root)
			if !slices.Equal(blobs, wantBlobs) || !slices.Equal(dirs, wantDirs) {
				t.Errorf("page size %d: blobs %q dirs %q, want %q %q", size, blobs, dirs, wantBlobs, wantDirs)
			}
		}
	})
}

func TestCopy(t *testing.T) {
	forEach(t, func(t *testing.T, em emulator) {
		c := newRequestCounter()
		cfg, bucket := em.fresh(t)
		s := storeOn(t, cfg, bucket, Options{ClientOptions: []func(*s3.Options){c.clientOption}})
		a, b := sheet(t, s, "a"), sheet(t, s, "b")
		write(t, subdir(t, a, "5"), "index", "idx")
		c.take()
		if err := blobstore.Copy(ctx, subdir(t, a, "9"), "index", subdir(t, a, "5"), "index"); err != nil {
			t.Fatal(err)
		}
		// 2 GetDir, then the copy: is "9/index" a directory, is "9" a blob.
		if got := c.take(); got != "CopyObject=1 HeadObject=3 ListObjectsV2=1" {
			t.Errorf("requests of a copy: %s, want no GetObject nor PutObject", got)
		}
		if got := read(t, subdir(t, a, "9"), "index"); got != "idx" {
			t.Fatalf("copied blob reads %q", got)
		}
		// Overwrites, within one directory too.
		write(t, a, "x", "new")
		write(t, a, "y", "old")
		if err := blobstore.Copy(ctx, a, "y", a, "x"); err != nil {
			t.Fatal(err)
		}
		if got := read(t, a, "y"); got != "new" {
			t.Fatalf("read %q", got)
		}
		c.take()
		if err := blobstore.Copy(ctx, a, "m", a, "missing"); !is404(err) {
			t.Errorf("copy of a missing blob: %v, want 404", err)
		}
		if err := blobstore.Copy(ctx, a, "m", a, "5"); !isWrongKind(err) {
			t.Errorf("copy of a directory: %v, want BlobWrongKindError", err)
		}
		if err := blobstore.Copy(ctx, a, "5", a, "x"); !isWrongKind(err) {
			t.Errorf("copy onto a directory: %v, want BlobWrongKindError", err)
		}
		if got := c.take(); strings.Contains(got, "GetObject") || strings.Contains(got, "PutObject") {
			t.Errorf("failed copies fell back to read/write: %s", got)
		}
		if _, err := a.ReadBlob(ctx, "m"); !is404(err) {
			t.Errorf("failed copy wrote something: %v", err)
		}
		// Another sheet, or another store (even on the same bucket), is
		// refused before any request; blobstore.Copy falls back to read
		// and write.
		other := storeOn(t, cfg, bucket, Options{})
		for what, src := range map[string]blobstore.BlobDir{"another sheet": a, "another store": sheet(t, other, "a")} {
			c.take()
			if err := b.(blobstore.Copier).CopyBlob(ctx, "z", src, "x"); !errors.Is(err, blobstore.ErrCopyUnsupported) {
				t.Errorf("CopyBlob from %s: %v", what, err)
			}
			if got := c.take(); got != "" {
				t.Errorf("refused CopyBlob from %s sent %s", what, got)
			}
			if err := blobstore.Copy(ctx, b, "z", src, "x"); err != nil {
				t.Fatal(err)
			}
			if got := read(t, b, "z"); got != "new" {
				t.Fatalf("read %q", got)
			}
			write(t, b, "z", "reset")
		}
	})
}
