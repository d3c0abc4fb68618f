package blobstoretest

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

var blobTests = []test{
	{"ReadMissingIs404", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.wantMissing(root, "nothing")
		f.wantMissing(f.dir(root, "no", "such", "dir"), "nothing")
		f.write(root, "other", "x")
		f.wantMissing(root, "nothing")
		f.wantMissing(root, "othe")
		f.wantMissing(root, "other2")
	}},
	{"WriteReadOverwrite", func(t *testing.T, f *fixture) {
		for _, d := range []blobstore.BlobDir{f.sheet("s"), f.dir(f.sheet("s"), "d", "e")} {
			f.write(d, "b", "one")
			f.wantBlob(d, "b", "one")
			f.write(d, "b", "two, longer than one")
			f.wantBlob(d, "b", "two, longer than one")
			f.write(d, "b", "3")
			f.wantBlob(d, "b", "3")
			f.wantList(d, []string{"b"}, nil)
		}
	}},
	{"BinaryContent", func(t *testing.T, f *fixture) {
		d := f.sheet("s")
		all := make([]byte, 512)
		for i := range all {
			all[i] = byte(i)
		}
		f.write(d, "bin", string(all))
		f.wantBlob(d, "bin", string(all))
	}},
	{"ZeroLength", func(t *testing.T, f *fixture) {
		d := f.sheet("s")
		if err := d.WriteBlob(f.ctx, "nil", nil); err != nil {
			t.Fatalf("WriteBlob(nil data): %v", err)
		}
		if err := d.WriteBlob(f.ctx, "empty", []byte{}); err != nil {
			t.Fatalf("WriteBlob(empty data): %v", err)
		}
		f.wantBlob(d, "nil", "")
		f.wantBlob(d, "empty", "")
		f.wantList(d, []string{"nil", "empty"}, nil)
		f.write(d, "shrinks", "not empty")
		f.write(d, "shrinks", "")
		f.wantBlob(d, "shrinks", "")
	}},
	{"OneMiB", func(t *testing.T, f *fixture) {
		d := f.dir(f.sheet("s"), "big")
		data := make([]byte, 1<<20)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if err := d.WriteBlob(f.ctx, "big", data); err != nil {
			t.Fatalf("WriteBlob(1 MiB): %v", err)
		}
		got, err := d.ReadBlob(f.ctx, "big")
		if err != nil {
			t.Fatalf("ReadBlob(1 MiB): %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("ReadBlob(1 MiB) returned %d bytes that differ from the %d written", len(got), len(data))
		}
	}},
	{"WriteKeepsItsOwnCopy", func(t *testing.T, f *fixture) {
		d := f.sheet("s")
		buf := []byte("original")
		if err := d.WriteBlob(f.ctx, "b", buf); err != nil {
			t.Fatal(err)
		}
		copy(buf, "MUTATED!")
		f.wantBlob(d, "b", "original")
		// A slice with spare capacity: appending must not reach the store.
		buf = make([]byte, 4, 64)
		copy(buf, "abcd")
		if err := d.WriteBlob(f.ctx, "c", buf); err != nil {
			t.Fatal(err)
		}
		buf = append(buf, "efgh"...)
		buf[0] = 'X'
		f.wantBlob(d, "c", "abcd")
	}},
	{"ReadReturnsPrivateCopy", func(t *testing.T, f *fixture) {
		d := f.sheet("s")
		f.write(d, "b", "original")
		got, err := d.ReadBlob(f.ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		copy(got, "MUTATED!")
		_ = append(got[:2], "ZZZZ"...)
		f.wantBlob(d, "b", "original")
		again, err := d.ReadBlob(f.ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		if len(again) > 0 && len(got) > 0 && &again[0] == &got[0] {
			t.Errorf("two ReadBlob calls returned the same buffer")
		}
	}},
	{"RemoveBlob", func(t *testing.T, f *fixture) {
		d := f.dir(f.sheet("s"), "d")
		f.write(d, "a", "1")
		f.write(d, "b", "2")
		if err := d.RemoveBlob(f.ctx, "a"); err != nil {
			t.Fatalf("RemoveBlob: %v", err)
		}
		f.wantMissing(d, "a")
		f.wantBlob(d, "b", "2")
		f.wantList(d, []string{"b"}, nil)
		f.write(d, "a", "again")
		f.wantBlob(d, "a", "again")
	}},
	{"RemoveMissingSucceeds", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		for _, d := range []blobstore.BlobDir{root, f.dir(root, "never", "written")} {
			if err := d.RemoveBlob(f.ctx, "missing"); err != nil {
				t.Errorf("RemoveBlob of a missing blob: %v, want success", err)
			}
		}
		f.write(root, "b", "x")
		for range 2 {
			if err := root.RemoveBlob(f.ctx, "b"); err != nil {
				t.Errorf("RemoveBlob: %v, want success", err)
			}
		}
		f.wantList(root, nil, nil)
	}},
}

var wrongKindTests = []test{
	{"BlobOperationsOnADirectory", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "d/x", "direct")
		f.writeAt(root, "deep/only/y", "below") // "deep" holds no blob directly
		want := f.snapshot(root)
		for _, name := range []string{"d", "deep"} {
			for _, d := range []blobstore.BlobDir{root} {
				if _, err := d.ReadBlob(f.ctx, name); !isWrongKind(err) {
					t.Errorf("ReadBlob(directory %q): %v, want a BlobWrongKindError", name, err)
				}
				if err := d.WriteBlob(f.ctx, name, []byte("blob")); !isWrongKind(err) {
					t.Errorf("WriteBlob(directory %q): %v, want a BlobWrongKindError", name, err)
				}
				if err := d.RemoveBlob(f.ctx, name); !isWrongKind(err) {
					t.Errorf("RemoveBlob(directory %q): %v, want a BlobWrongKindError", name, err)
				}
			}
		}
		if _, err := f.dir(root, "deep").ReadBlob(f.ctx, "only"); !isWrongKind(err) {
			t.Errorf("ReadBlob(nested directory): %v, want a BlobWrongKindError", err)
		}
		f.wantSnapshot(root, want, "after wrong-kind operations")
	}},
	{"GetDirOfABlob", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.write(root, "b", "blob")
		f.writeAt(root, "d/c", "nested blob")
		want := f.snapshot(root)
		if _, err := root.GetDir(f.ctx, "b"); !isWrongKind(err) {
			t.Errorf("GetDir(blob): %v, want a BlobWrongKindError", err)
		}
		if _, err := f.dir(root, "d").GetDir(f.ctx, "c"); !isWrongKind(err) {
			t.Errorf("GetDir(nested blob): %v, want a BlobWrongKindError", err)
		}
		f.wantSnapshot(root, want, "after GetDir of blobs")
	}},
	{"ZeroLengthBlobIsStillABlob", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.write(root, "e", "")
		if _, err := root.GetDir(f.ctx, "e"); !isWrongKind(err) {
			t.Errorf("GetDir(zero-length blob): %v, want a BlobWrongKindError", err)
		}
	}},
	{"StaleDirectoryHandle", func(t *testing.T, f *fixture) {
		// d's directory empties, a blob takes its name, and d is used
		// again. The name must stay a blob: a write through d fails, and
		// nothing through d may remove or change the blob.
		root := f.sheet("s")
		d := f.dir(root, "a")
		deeper := f.dir(d, "b")
		f.write(deeper, "x", "x")
		if err := d.RemoveAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.write(root, "a", "the blob")
		f.write(root, "ab", "sibling")
		want := map[string]string{"a": "the blob", "ab": "sibling"}
		for what, h := range map[string]blobstore.BlobDir{"a": d, "a/b": deeper} {
			if err := h.WriteBlob(f.ctx, "y", []byte("y")); !isWrongKind(err) {
				t.Errorf("WriteBlob through stale handle %s: %v, want a BlobWrongKindError", what, err)
			}
			if _, err := h.ReadBlob(f.ctx, "y"); !isWrongKind(err) && !isNotFound(err) {
				t.Errorf("ReadBlob through stale handle %s: %v, want a BlobWrongKindError or a 404", what, err)
			}
			if err := h.RemoveBlob(f.ctx, "y"); err != nil && !isWrongKind(err) {
				t.Errorf("RemoveBlob through stale handle %s: %v, want success or a BlobWrongKindError", what, err)
			}
			if p, err := query(f.ctx, h, ""); err != nil && !isWrongKind(err) {
				t.Errorf("Query through stale handle %s: %v, want an empty page or a BlobWrongKindError", what, err)
			} else if err == nil && (len(p.Blobs)+len(p.Dirs) > 0 || p.Continuation != "") {
				t.Errorf("Query through stale handle %s = %+v, want an empty page", what, p)
			}
			if sub, err := h.GetDir(f.ctx, "z"); err != nil && !isWrongKind(err) {
				t.Errorf("GetDir through stale handle %s: %v, want success or a BlobWrongKindError", what, err)
			} else if err == nil {
				if err := sub.WriteBlob(f.ctx, "w", []byte("w")); !isWrongKind(err) {
					t.Errorf("WriteBlob below stale handle %s: %v, want a BlobWrongKindError", what, err)
				}
			}
			if err := h.RemoveAll(f.ctx); err != nil && !isWrongKind(err) {
				t.Errorf("RemoveAll through stale handle %s: %v, want success or a BlobWrongKindError", what, err)
			}
			f.wantSnapshot(root, want, "after using stale handle "+what)
		}
		if c, ok := d.(blobstore.Copier); ok {
			err := c.CopyBlob(f.ctx, "y", root, "ab")
			if !isWrongKind(err) {
				t.Errorf("CopyBlob into stale handle: %v, want a BlobWrongKindError", err)
			}
		}
		if err := blobstore.Copy(f.ctx, d, "y", root, "ab"); !isWrongKind(err) {
			t.Errorf("Copy into stale handle: %v, want a BlobWrongKindError", err)
		}
		f.wantSnapshot(root, want, "after copies into a stale handle")
		// Once the blob goes, the handle works again.
		if err := root.RemoveBlob(f.ctx, "a"); err != nil {
			t.Fatal(err)
		}
		f.write(deeper, "x", "back")
		f.wantSnapshot(root, map[string]string{"ab": "sibling", "a/b/x": "back"}, "after the blob went")
	}},
}

var dirTests = []test{
	{"GetDirCreatesNothing", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		d := f.dir(root, "d")
		f.dir(d, "e", "f")
		f.dir(root, "g")
		f.wantList(root, nil, nil)
		f.wantList(d, nil, nil)
		f.wantMissing(d, "x")
		// An empty directory does not exist, so its name is free for a blob.
		f.write(root, "g", "blob")
		f.wantList(root, []string{"g"}, nil)
	}},
	{"WritingCreatesParents", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "a/b/c/d", "deep")
		f.wantList(root, nil, []string{"a"})
		f.wantList(f.dir(root, "a"), nil, []string{"b"})
		f.wantList(f.dir(root, "a", "b"), nil, []string{"c"})
		f.wantList(f.dir(root, "a", "b", "c"), []string{"d"}, nil)
		f.wantBlob(f.dir(root, "a", "b", "c"), "d", "deep")
	}},
	{"HandlesAreViewsOfOnePath", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		d1 := f.dir(root, "d")
		d2 := f.dir(root, "d")
		f.write(d1, "x", "1")
		f.wantBlob(d2, "x", "1")
		f.write(f.dir(d2, "e"), "y", "2")
		f.wantBlob(f.dir(d1, "e"), "y", "2")
		f.wantList(d1, []string{"x"}, []string{"e"})
	}},
	{"SameNameInDifferentParents", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "x", "root x")
		f.writeAt(root, "p/x", "p x")
		f.writeAt(root, "q/x/x", "q x x")
		f.writeAt(root, "q/p/x", "q p x")
		f.wantSnapshot(root, map[string]string{"x": "root x", "p/x": "p x", "q/x/x": "q x x", "q/p/x": "q p x"}, "tree")
	}},
	{"EmptyDirectoriesAreInvisible", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "d/e/f", "1")
		f.writeAt(root, "d/g", "2")
		f.writeAt(root, "h/i", "3")
		f.wantList(root, nil, []string{"d", "h"})
		if err := f.dir(root, "d", "e").RemoveBlob(f.ctx, "f"); err != nil {
			t.Fatal(err)
		}
		f.wantList(f.dir(root, "d"), []string{"g"}, nil)
		if err := f.dir(root, "d").RemoveBlob(f.ctx, "g"); err != nil {
			t.Fatal(err)
		}
		f.wantList(root, nil, []string{"h"})
		f.wantList(f.dir(root, "d"), nil, nil)
		if err := f.dir(root, "h").RemoveAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.wantList(root, nil, nil)
		// The emptied names are free for blobs.
		f.write(root, "d", "now a blob")
		f.write(root, "h", "also a blob")
		f.wantList(root, []string{"d", "h"}, nil)
	}},
}
