package blobstoretest

import (
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// optionalTests cover the optional capabilities (blobstore.Stater,
// blobstore.FreshWriter) of the stores that have them; a store without one
// skips its tests, since the helpers fall back to the plain calls.
var optionalTests = []test{
	{"StatBlob", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		st, ok := root.(blobstore.Stater)
		if !ok {
			t.Log("the store has no StatBlob: nothing to check")
			return
		}
		d := f.dir(root, "d", "e")
		stat := func(dir blobstore.BlobDir, name string) (blobstore.BlobInfo, error) {
			return dir.(blobstore.Stater).StatBlob(f.ctx, name)
		}
		// Stores keep times to a second at worst (S3), and clocks of a
		// store and its client differ a little: allow both.
		const slack = 2 * time.Second
		before := time.Now()
		f.write(d, "b", "twelve bytes")
		after := time.Now()
		info, err := stat(d, "b")
		if err != nil {
			t.Fatalf("StatBlob: %v", err)
		}
		if info.Size != 12 {
			t.Errorf("StatBlob size %d, want 12", info.Size)
		}
		if info.ModTime.Before(before.Add(-slack)) || info.ModTime.After(after.Add(slack)) {
			t.Errorf("StatBlob time %v, written between %v and %v", info.ModTime, before, after)
		}
		f.write(d, "b", "")
		if info, err = stat(d, "b"); err != nil || info.Size != 0 {
			t.Errorf("StatBlob after an overwrite with nothing: %+v, %v", info, err)
		}
		if _, err := st.StatBlob(f.ctx, "missing"); !isNotFound(err) {
			t.Errorf("StatBlob(missing): %v, want a StorageError with status 404", err)
		}
		if _, err := st.StatBlob(f.ctx, "d"); !isWrongKind(err) {
			t.Errorf("StatBlob(directory): %v, want a BlobWrongKindError", err)
		}
		if _, err := st.StatBlob(f.ctx, "a/b"); !isInvalidName(err) {
			t.Errorf("StatBlob(a/b): %v, want an InvalidBlobNameError", err)
		}
		if err := d.RemoveBlob(f.ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := stat(d, "b"); !isNotFound(err) {
			t.Errorf("StatBlob(removed): %v, want a StorageError with status 404", err)
		}
	}},
	{"FreshWrites", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		if _, ok := root.(blobstore.FreshWriter); !ok {
			t.Log("the store has no fresh writes: nothing to check")
			return
		}
		// In a layout without conflicts, fresh writes and copies do what
		// the checked ones do.
		snap := f.dir(root, "7")
		tiles := f.dir(snap, "tiles")
		if err := blobstore.WriteFresh(f.ctx, tiles, "0-0-100-100", []byte("tile")); err != nil {
			t.Fatalf("WriteFresh: %v", err)
		}
		if err := blobstore.WriteFresh(f.ctx, snap, "index", []byte("index")); err != nil {
			t.Fatalf("WriteFresh: %v", err)
		}
		next := f.dir(root, "8", "tiles")
		if err := blobstore.CopyFresh(f.ctx, next, "0-0-100-100", tiles, "0-0-100-100"); err != nil {
			t.Fatalf("CopyFresh: %v", err)
		}
		if err := blobstore.CopyFresh(f.ctx, next, "0-0-100-100", next, "0-0-100-100"); err != nil {
			t.Fatalf("CopyFresh onto itself: %v", err)
		}
		other := f.dir(f.sheet("other"), "tiles")
		f.write(other, "x", "from another sheet")
		if err := blobstore.CopyFresh(f.ctx, next, "x", other, "x"); err != nil {
			t.Fatalf("CopyFresh from another sheet: %v", err)
		}
		if err := blobstore.CopyFresh(f.ctx, next, "y", tiles, "missing"); !isNotFound(err) {
			t.Errorf("CopyFresh of a missing blob: %v, want a StorageError with status 404", err)
		}
		f.wantSnapshot(root, map[string]string{
			"7/tiles/0-0-100-100": "tile", "7/index": "index",
			"8/tiles/0-0-100-100": "tile", "8/tiles/x": "from another sheet",
		}, "after fresh writes")
	}},
}
