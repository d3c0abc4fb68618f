//go:build unix

package fsblob_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// syncsOf returns the directory fsyncs fn makes.
func syncsOf(s *fsblob.Store, fn func()) int64 {
	before := fsblob.DirSyncs(s)
	fn()
	return fsblob.DirSyncs(s) - before
}

// TestAncestorsAreSyncedOncePerChain counts the directory fsyncs of
// writes and copies: the first blob in a new directory syncs it and
// every directory above it up to one already known durable (or up to
// sheets/), and later ones only their own directory.
func TestAncestorsAreSyncedOncePerChain(t *testing.T) {
	s := openAt(t, memDir(t), fsblob.Options{})
	abc, abd := sheet(t, s, "s", "a", "b", "c"), sheet(t, s, "s", "a", "b", "d")
	for _, c := range []struct {
		what string
		do   func()
		want int64
	}{
		{"first blob in a/b/c: c, b, a, the sheet, sheets/", func() { write(t, abc, "x", "1") }, 5},
		{"second blob in a/b/c", func() { write(t, abc, "y", "2") }, 1},
		{"overwrite in a/b/c", func() { write(t, abc, "y", "3") }, 1},
		{"copy into a/b/c", func() { copyBlob(t, abc, "z", abc, "x") }, 1},
		{"first blob in a/b/d: d, b", func() { copyBlob(t, abd, "x", abc, "x") }, 2},
		{"second blob in a/b/d", func() { write(t, abd, "y", "4") }, 1},
		{"first blob in the sheet's root", func() { write(t, sheet(t, s, "s"), "r", "5") }, 1},
		{"first blob of another sheet", func() { write(t, sheet(t, s, "t"), "r", "6") }, 2},
	} {
		if got := syncsOf(s, c.do); got != c.want {
			t.Errorf("%s: %d directory fsyncs, want %d", c.what, got, c.want)
		}
	}
}

func copyBlob(t testing.TB, dst blobstore.BlobDir, dstName string, src blobstore.BlobDir, srcName string) {
	t.Helper()
	if err := blobstore.Copy(t.Context(), dst, dstName, src, srcName); err != nil {
		t.Fatalf("Copy(%q, %q): %v", dstName, srcName, err)
	}
}

// TestRemovedDirectoriesAreSyncedAgain: a directory removed (pruned, or
// by RemoveAll) and made again is a new entry in its parent, which the
// first blob in it must sync again.
func TestRemovedDirectoriesAreSyncedAgain(t *testing.T) {
	s := openAt(t, memDir(t), fsblob.Options{})
	ab := sheet(t, s, "s", "a", "b")
	write(t, sheet(t, s, "s"), "keep", "k") // the sheet's directory stays
	write(t, ab, "x", "1")
	if err := ab.RemoveBlob(t.Context(), "x"); err != nil { // prunes a/b and a
		t.Fatal(err)
	}
	if got := syncsOf(s, func() { write(t, ab, "x", "2") }); got != 3 {
		t.Errorf("after a prune: %d directory fsyncs, want 3 (b, a, the sheet)", got)
	}
	if err := sheet(t, s, "s", "a").RemoveAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := syncsOf(s, func() { write(t, ab, "x", "3") }); got != 3 {
		t.Errorf("after RemoveAll: %d directory fsyncs, want 3 (b, a, the sheet)", got)
	}
	// A RemoveBlob that leaves its directory non-empty forgets nothing.
	write(t, ab, "y", "4")
	if err := ab.RemoveBlob(t.Context(), "y"); err != nil {
		t.Fatal(err)
	}
	if got := syncsOf(s, func() { write(t, ab, "y", "5") }); got != 1 {
		t.Errorf("after a RemoveBlob that pruned nothing: %d directory fsyncs, want 1", got)
	}
}

// TestAStaleSyncDoesNotMakeADirectoryDurable removes a write's directory
// after the write synced it and before it records it as durable, and
// makes it again the way a concurrent writer would (mkdir, nothing
// synced yet): the next blob there must sync the new chain, not trust
// the stale write's syncs.
func TestAStaleSyncDoesNotMakeADirectoryDurable(t *testing.T) {
	dir := memDir(t)
	s := openAt(t, dir, fsblob.Options{})
	ab := sheet(t, s, "s", "a", "b")
	write(t, sheet(t, s, "s"), "keep", "k")
	var once sync.Once
	fsblob.SetAfterSyncUp(s, func() {
		once.Do(func() {
			if err := ab.RemoveBlob(t.Context(), "x"); err != nil { // prunes a/b and a
				t.Error(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "sheets", "s", "a")); !os.IsNotExist(err) {
				t.Errorf("a was not pruned: %v", err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "sheets", "s", "a", "b"), 0o755); err != nil {
				t.Error(err)
			}
		})
	})
	write(t, ab, "x", "1")
	fsblob.SetAfterSyncUp(s, nil)
	if got := syncsOf(s, func() { write(t, ab, "y", "2") }); got != 3 {
		t.Errorf("a blob in the directory made again: %d directory fsyncs, want 3 (b, a, the sheet)", got)
	}
}

// barrier makes the first directory fsync wait until n callers are in
// a group commit, so that the n-1 others share the next round.
func barrier(t *testing.T, s *fsblob.Store, n int, sync func(calls int64, f *os.File) error) {
	var calls atomic.Int64
	fsblob.SetDirSync(s, func(f *os.File) error {
		c := calls.Add(1)
		if c == 1 {
			deadline := time.Now().Add(10 * time.Second)
			for fsblob.SyncWaiters(s) < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		return sync(c, f)
	})
	t.Cleanup(func() { fsblob.SetDirSync(s, nil) })
}

// TestConcurrentCopiesShareFsyncs copies n blobs at once into one
// durable directory: the first fsync serves the first copy, and holds
// the others back until all are waiting, so one more serves them all.
func TestConcurrentCopiesShareFsyncs(t *testing.T) {
	const n = 8
	s := openAt(t, memDir(t), fsblob.Options{})
	src, dst := sheet(t, s, "s", "snap", "41"), sheet(t, s, "s", "snap", "42")
	write(t, src, "x", "tile")
	write(t, dst, "index", "i")
	barrier(t, s, n, func(_ int64, f *os.File) error { return f.Sync() })
	got := syncsOf(s, func() {
		var g sync.WaitGroup
		for i := range n {
			g.Go(func() { copyBlob(t, dst, fmt.Sprint("t", i), src, "x") })
		}
		g.Wait()
	})
	if got != 2 {
		t.Errorf("%d concurrent copies into one directory made %d directory fsyncs, want 2", n, got)
	}
	if w := fsblob.SyncWaiters(s); w != 0 {
		t.Errorf("%d callers left in group commits", w)
	}
}

// TestGroupCommitErrors fails one round of a group commit: a writer
// fails when the fsync that served it failed, or the one in flight when
// it arrived (which may have caught its entry half-way).
func TestGroupCommitErrors(t *testing.T) {
	const n = 4
	boom := errors.New("fsync failed")
	for _, c := range []struct {
		name        string
		failRound   int64
		wantFailing int
	}{
		{"first round fails: all", 1, n},
		{"second round fails: all but the first", 2, n - 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openAt(t, memDir(t), fsblob.Options{})
			d := sheet(t, s, "s", "d")
			write(t, d, "first", "f")
			barrier(t, s, n, func(call int64, f *os.File) error {
				if call == c.failRound {
					return boom
				}
				return f.Sync()
			})
			var failing atomic.Int64
			var g sync.WaitGroup
			for i := range n {
				g.Go(func() {
					err := d.WriteBlob(t.Context(), fmt.Sprint("b", i), []byte("x"))
					var se *errs.StorageError
					switch {
					case err == nil:
					case errors.Is(err, boom) && errors.As(err, &se):
						failing.Add(1)
					default:
						t.Errorf("WriteBlob: %v, want a StorageError wrapping %v", err, boom)
					}
				})
			}
			g.Wait()
			if got := failing.Load(); got != int64(c.wantFailing) {
				t.Errorf("%d writes failed, want %d", got, c.wantFailing)
			}
		})
	}
}

// TestSnapshotCopiesFsyncs copies 100 tiles into a new snapshot
// directory, 8 at a time, as the snapshot workers do: only the copies
// in flight before the first one recorded the new directories as
// durable sync the chain.
func TestSnapshotCopiesFsyncs(t *testing.T) {
	const tiles, workers = 100, 8
	s := openAt(t, memDir(t), fsblob.Options{})
	src := sheet(t, s, "s", "41", "tiles")
	for i := range tiles {
		write(t, src, fmt.Sprint("0-", i*100, "-100-100"), "tile")
	}
	dst := sheet(t, s, "s", "42", "tiles")
	got := syncsOf(s, func() {
		var next atomic.Int64
		var g sync.WaitGroup
		for range workers {
			g.Go(func() {
				for i := next.Add(1) - 1; i < tiles; i = next.Add(1) - 1 {
					name := fmt.Sprint("0-", i*100, "-100-100")
					copyBlob(t, dst, name, src, name)
				}
			})
		}
		g.Wait()
	})
	// At most one chain (tiles, 42, the sheet) per worker, then one each.
	if limit := int64(tiles + 2*workers); got > limit {
		t.Errorf("%d copies made %d directory fsyncs, want at most %d", tiles, got, limit)
	}
	t.Logf("%d copies, %d directory fsyncs", tiles, got)
}

// TestDurableRecordsAreBounded writes and retires snapshot directories,
// as retention does for months: the store keeps records only of the
// directories that exist.
func TestDurableRecordsAreBounded(t *testing.T) {
	s := openAt(t, memDir(t), fsblob.Options{})
	root := sheet(t, s, "s")
	const keep = 3
	for i := range 40 {
		write(t, sheet(t, s, "s", fmt.Sprint(i), "tiles"), "0-0-100-100", "t")
		write(t, sheet(t, s, "s", fmt.Sprint(i)), "index", "i")
		if i >= keep {
			old := sheet(t, s, "s", fmt.Sprint(i-keep))
			if err := old.RemoveBlob(t.Context(), "index"); err != nil {
				t.Fatal(err)
			}
			if err := old.RemoveAll(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The sheet's root and each kept snapshot with its tiles.
	if sheets, dirs := fsblob.DurableState(s); sheets != 1 || dirs > 1+2*keep {
		t.Errorf("records of %d sheets and %d directories, want 1 and at most %d", sheets, dirs, 1+2*keep)
	}
	if err := root.RemoveAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if sheets, dirs := fsblob.DurableState(s); sheets != 0 || dirs != 0 {
		t.Errorf("after RemoveAll of the sheet: records of %d sheets and %d directories, want none", sheets, dirs)
	}
	if w := fsblob.SyncWaiters(s); w != 0 {
		t.Errorf("%d callers left in group commits", w)
	}
}
