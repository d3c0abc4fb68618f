package blobstoretest

import (
	"context"
	"errors"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// plainDir hides every optional capability of a BlobDir, so that
// blobstore.Copy takes its read-and-write fallback, and a store's Copier
// sees a source type it does not know.
type plainDir struct{ blobstore.BlobDir }

// copyPaths are the ways blobstore.Copy can run.
var copyPaths = []struct {
	name string
	wrap func(dst, src blobstore.BlobDir) (blobstore.BlobDir, blobstore.BlobDir)
}{
	{"StoreCopier", func(dst, src blobstore.BlobDir) (blobstore.BlobDir, blobstore.BlobDir) { return dst, src }},
	{"FallbackNoCopier", func(dst, src blobstore.BlobDir) (blobstore.BlobDir, blobstore.BlobDir) { return plainDir{dst}, src }},
	{"FallbackForeignSource", func(dst, src blobstore.BlobDir) (blobstore.BlobDir, blobstore.BlobDir) { return dst, plainDir{src} }},
}

type copyFunc func(dst blobstore.BlobDir, dstName string, src blobstore.BlobDir, srcName string) error

// forEachCopyPath runs fn once for every way blobstore.Copy can run, each
// time on a fresh sheet.
func forEachCopyPath(t *testing.T, f *fixture, fn func(f *fixture, root blobstore.BlobDir, cp copyFunc)) {
	for i, path := range copyPaths {
		t.Run(path.name, func(t *testing.T) {
			f := f.with(t)
			root := f.sheet("copy" + string(rune('a'+i)))
			fn(f, root, func(dst blobstore.BlobDir, dstName string, src blobstore.BlobDir, srcName string) error {
				d, s := path.wrap(dst, src)
				return blobstore.Copy(f.ctx, d, dstName, s, srcName)
			})
		})
	}
}

func (f *fixture) mustCopy(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("Copy: %v", err)
	}
}

var copyTests = []test{
	{"WithinASheet", func(t *testing.T, f *fixture) {
		forEachCopyPath(t, f, func(f *fixture, root blobstore.BlobDir, cp copyFunc) {
			a, b := f.dir(root, "a"), f.dir(root, "b", "c")
			f.write(a, "src", "content")
			f.write(root, "empty", "")
			f.mustCopy(cp(a, "same-dir", a, "src"))
			f.mustCopy(cp(b, "other-dir", a, "src"))
			f.mustCopy(cp(root, "up", a, "src"))
			f.mustCopy(cp(a, "zero", root, "empty"))
			f.write(root, "dst", "old, to be replaced")
			f.mustCopy(cp(root, "dst", a, "src"))
			f.mustCopy(cp(a, "src", a, "src")) // onto itself
			f.wantSnapshot(root, map[string]string{
				"a/src": "content", "a/same-dir": "content", "b/c/other-dir": "content", "up": "content",
				"empty": "", "a/zero": "", "dst": "content",
			}, "after copies")
		})
	}},
	{"CopyIsIndependentOfItsSource", func(t *testing.T, f *fixture) {
		forEachCopyPath(t, f, func(f *fixture, root blobstore.BlobDir, cp copyFunc) {
			t := f.t
			f.write(root, "src", "v1")
			f.mustCopy(cp(root, "dst", root, "src"))
			f.write(root, "src", "v2")
			f.wantBlob(root, "dst", "v1")
			f.write(root, "dst", "d2")
			f.wantBlob(root, "src", "v2")
			f.mustCopy(cp(root, "dst2", root, "src"))
			if err := root.RemoveBlob(f.ctx, "src"); err != nil {
				t.Fatal(err)
			}
			f.wantBlob(root, "dst2", "v2")
			b, err := root.ReadBlob(f.ctx, "dst2")
			if err != nil {
				t.Fatal(err)
			}
			copy(b, "XX")
			f.wantBlob(root, "dst2", "v2")
		})
	}},
	{"Errors", func(t *testing.T, f *fixture) {
		forEachCopyPath(t, f, func(f *fixture, root blobstore.BlobDir, cp copyFunc) {
			t := f.t
			f.write(root, "src", "content")
			f.writeAt(root, "dir/x", "x")
			want := f.snapshot(root)
			if err := cp(root, "dst", root, "missing"); !isNotFound(err) {
				t.Errorf("Copy of a missing source: %v, want a StorageError with status 404", err)
			}
			if err := cp(root, "dst", f.dir(root, "nowhere"), "src"); !isNotFound(err) {
				t.Errorf("Copy from a missing directory: %v, want a StorageError with status 404", err)
			}
			if err := cp(root, "dst", root, "dir"); !isWrongKind(err) {
				t.Errorf("Copy of a directory: %v, want a BlobWrongKindError", err)
			}
			if err := cp(root, "dir", root, "src"); !isWrongKind(err) {
				t.Errorf("Copy onto a directory: %v, want a BlobWrongKindError", err)
			}
			f.wantSnapshot(root, want, "after failed copies")
		})
	}},
	{"CopierRefusesOtherSheetsAndForeignSources", func(t *testing.T, f *fixture) {
		root, other := f.sheet("s"), f.sheet("s0")
		c, ok := root.(blobstore.Copier)
		if !ok {
			t.Log("this store does not implement blobstore.Copier: nothing to test")
			return
		}
		f.write(other, "src", "other sheet")
		f.write(root, "src", "this sheet")
		if err := c.CopyBlob(f.ctx, "dst", other, "src"); !errors.Is(err, blobstore.ErrCopyUnsupported) {
			t.Errorf("CopyBlob from another sheet: %v, want ErrCopyUnsupported", err)
		}
		if err := c.CopyBlob(f.ctx, "dst", plainDir{root}, "src"); !errors.Is(err, blobstore.ErrCopyUnsupported) {
			t.Errorf("CopyBlob from a BlobDir type the store does not know: %v, want ErrCopyUnsupported", err)
		}
		f.wantMissing(root, "dst")
		// Another store: refusing is required unless the store can truly
		// copy between the two (say, two prefixes of one bucket).
		st := f.otherStore()
		foreign := f.sheetOf(st, "s")
		f.write(foreign, "src", "other store")
		switch err := c.CopyBlob(f.ctx, "dst", foreign, "src"); {
		case errors.Is(err, blobstore.ErrCopyUnsupported):
			f.wantMissing(root, "dst")
		case err == nil:
			f.wantBlob(root, "dst", "other store")
		default:
			t.Errorf("CopyBlob from another store: %v, want ErrCopyUnsupported or success", err)
		}
		f.wantBlob(other, "src", "other sheet")
		f.wantBlob(foreign, "src", "other store")
	}},
	{"CopyBetweenSheetsFallsBack", func(t *testing.T, f *fixture) {
		// blobstore.Copy with handles to two sheets copies through the
		// caller, who already holds both.
		root, other := f.sheet("s"), f.sheet("s0")
		f.write(other, "src", "other sheet")
		f.mustCopy(blobstore.Copy(f.ctx, root, "dst", other, "src"))
		f.wantBlob(root, "dst", "other sheet")
		f.write(other, "src", "changed")
		f.wantBlob(root, "dst", "other sheet")
		st := f.otherStore()
		f.write(f.sheetOf(st, "s"), "src", "other store")
		f.mustCopy(blobstore.Copy(f.ctx, root, "dst2", f.sheetOf(st, "s"), "src"))
		f.wantBlob(root, "dst2", "other store")
	}},
	{"CancelledContext", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.write(root, "src", "content")
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		for _, path := range copyPaths {
			d, s := path.wrap(root, root)
			if err := blobstore.Copy(ctx, d, "dst", s, "src"); !errors.Is(err, context.Canceled) {
				t.Errorf("%s: Copy with a cancelled context: %v, want context.Canceled", path.name, err)
			}
		}
		if c, ok := root.(blobstore.Copier); ok {
			if err := c.CopyBlob(ctx, "dst", root, "src"); !errors.Is(err, context.Canceled) {
				t.Errorf("CopyBlob with a cancelled context: %v, want context.Canceled", err)
			}
		}
		f.wantMissing(root, "dst")
	}},
}
