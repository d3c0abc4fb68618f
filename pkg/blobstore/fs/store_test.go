//go:build unix

package fsblob_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

func sheet(t testing.TB, s *fsblob.Store, id string, path ...string) blobstore.BlobDir {
	t.Helper()
	d, err := s.Sheet(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range path {
		if d, err = d.GetDir(context.Background(), n); err != nil {
			t.Fatalf("GetDir(%q): %v", n, err)
		}
	}
	return d
}

func write(t testing.TB, d blobstore.BlobDir, name, data string) {
	t.Helper()
	if err := d.WriteBlob(context.Background(), name, []byte(data)); err != nil {
		t.Fatalf("WriteBlob(%q): %v", name, err)
	}
}

func wantBlob(t testing.TB, d blobstore.BlobDir, name, want string) {
	t.Helper()
	got, err := d.ReadBlob(context.Background(), name)
	if err != nil || string(got) != want {
		t.Errorf("ReadBlob(%q) = %q, %v; want %q", name, got, err, want)
	}
}

func list(t testing.TB, d blobstore.BlobDir) (blobs, dirs []string) {
	t.Helper()
	tok := ""
	for {
		p, err := d.Query(context.Background(), tok)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		blobs, dirs = append(blobs, p.Blobs...), append(dirs, p.Dirs...)
		if tok = p.Continuation; tok == "" {
			return blobs, dirs
		}
	}
}

// files lists the regular files under dir, relative, with their contents.
func files(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLayoutOnDisk(t *testing.T) {
	dir := diskDir(t)
	s := openAt(t, dir, fsblob.Options{})
	write(t, sheet(t, s, "s", "snap", "42"), "index", "i")
	write(t, sheet(t, s, "Sheet1"), "0-0-100-100", "tile")
	write(t, sheet(t, s, "s", "Dir"), "a b", "escaped")
	long := strings.Repeat("é", 100)
	write(t, sheet(t, s, "s"), long, "long")
	got := files(t, filepath.Join(dir, "sheets"))
	longPath := ""
	for p := range got {
		if strings.HasPrefix(p, "s/~") {
			longPath = p
		}
	}
	want := map[string]string{
		"s/snap/42/index":        "i",
		"^sheet1/0-0-100-100":    "tile",
		"s/^dir/a%20b":           "escaped",
		filepath.Clean(longPath): "long",
	}
	if len(got) != len(want) {
		t.Errorf("files under sheets/: %q, want %q", got, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("file %s = %q, want %q (all: %q)", p, got[p], w, got)
		}
	}
	if n := strings.Count(longPath, "/~"); n != 4 {
		t.Errorf("100 × é is stored at %s, want 4 continuation directories", longPath)
	}
	for _, f := range []string{"format", "key", "lock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("store file %s: %v", f, err)
		}
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Errorf("tmp/ holds %d entries after successful writes", len(es))
	}
}

func TestOpenRefusesAForeignDirectory(t *testing.T) {
	dir := diskDir(t)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "precious"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := fsblob.Open(dir, fsblob.Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a non-empty directory that holds no store succeeded")
	}
	want := map[string]string{"notes.txt": "mine", "tmp/precious": "keep"}
	if got := files(t, dir); !equalMaps(got, want) {
		t.Errorf("after the refused Open the directory holds %q, want %q", got, want)
	}
	// A directory that does not exist yet is created, parents included.
	s := openAt(t, filepath.Join(dir, "a", "b"), fsblob.Options{})
	write(t, sheet(t, s, "s"), "x", "1")
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestOpenLocksTheStore(t *testing.T) {
	dir := diskDir(t)
	s, err := fsblob.Open(dir, fsblob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := fsblob.Open(dir, fsblob.Options{}); err == nil {
		s2.Close()
		t.Fatal("a second Open of an open store succeeded")
	}
	s.Close()
	s2 := openAt(t, dir, fsblob.Options{})
	write(t, sheet(t, s2, "s"), "x", "after reopening")
}

func TestOpenRemovesStaleTemporaryFiles(t *testing.T) {
	dir := diskDir(t)
	s, err := fsblob.Open(dir, fsblob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, sheet(t, s, "s", "d"), "b", "kept")
	s.Close()
	// What a crash mid-write or mid-copy leaves.
	for _, n := range []string{"w-0123456789abcdef", "c-feed"} {
		if err := os.WriteFile(filepath.Join(dir, "tmp", n), []byte("half a blo"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp", "junk", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir, fsblob.Options{})
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Errorf("tmp/ holds %d entries after Open, want none", len(es))
	}
	wantBlob(t, sheet(t, s, "s", "d"), "b", "kept")
}

func TestTokensSurviveARestart(t *testing.T) {
	dir := diskDir(t)
	s, err := fsblob.Open(dir, fsblob.Options{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := sheet(t, s, "s")
	for _, n := range []string{"a", "b", "c"} {
		write(t, d, n, n)
	}
	p, err := d.Query(t.Context(), "")
	if err != nil || p.Continuation == "" {
		t.Fatalf("Query: %+v, %v", p, err)
	}
	s.Close()
	s = openAt(t, dir, fsblob.Options{PageSize: 1})
	p2, err := sheet(t, s, "s").Query(t.Context(), p.Continuation)
	if err != nil || !slices.Equal(p2.Blobs, []string{"b"}) {
		t.Errorf("Query(token from before the restart) = %+v, %v; want page [b]", p2, err)
	}
	// Another store has another key.
	other := openAt(t, diskDir(t), fsblob.Options{PageSize: 1})
	for _, n := range []string{"a", "b", "c"} {
		write(t, sheet(t, other, "s"), n, n)
	}
	if _, err := sheet(t, other, "s").Query(t.Context(), p.Continuation); !isErr[*errs.NoContinuationError](err) {
		t.Errorf("token of another store: %v, want a NoContinuationError", err)
	}
}

func isErr[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

func TestFailedWritesLeaveTheOldBlobAndNoTemporaryFile(t *testing.T) {
	dir := diskDir(t)
	s := openAt(t, dir, fsblob.Options{})
	d := sheet(t, s, "s")
	write(t, d, "b", "old")
	write(t, sheet(t, s, "s", "dir"), "x", "x")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.WriteBlob(ctx, "b", []byte("new")); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteBlob with a cancelled context: %v", err)
	}
	if err := d.WriteBlob(t.Context(), "dir", []byte("new")); !isErr[*errs.BlobWrongKindError](err) {
		t.Errorf("WriteBlob onto a directory: %v", err)
	}
	stale := sheet(t, s, "s", "b2")
	write(t, d, "b2", "a blob where the handle's directory was")
	if err := stale.WriteBlob(t.Context(), "x", []byte("new")); !isErr[*errs.BlobWrongKindError](err) {
		t.Errorf("WriteBlob below a blob: %v", err)
	}
	if err := blobstore.Copy(t.Context(), d, "dir", d, "b"); !isErr[*errs.BlobWrongKindError](err) {
		t.Errorf("Copy onto a directory: %v", err)
	}
	// A deadline that expires while the temporary file is written: the
	// write is refused before the rename.
	big := make([]byte, 8<<20)
	ctx, cancel = context.WithCancel(t.Context())
	go cancel()
	err := d.WriteBlob(ctx, "b", big)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("WriteBlob cancelled during the write: %v", err)
	}
	if err != nil {
		wantBlob(t, d, "b", "old")
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Errorf("tmp/ holds %d entries after failed writes, want none", len(es))
	}
}

// TestCrashLeftovers checks what the tree may hold after a crash, or
// while a writer is between its mkdir and its rename: empty directories
// (which do not exist for the contract) and entries that are not the
// store's.
func TestCrashLeftovers(t *testing.T) {
	dir := memDir(t)
	s := openAt(t, dir, fsblob.Options{PageSize: 2})
	root := sheet(t, s, "s")
	write(t, root, "keep", "k")
	sd := filepath.Join(dir, "sheets", "s")
	for _, p := range []string{"empty/deeper/still", "e2", "x"} {
		if err := os.MkdirAll(filepath.Join(sd, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{".DS_Store", "UPPER", "a b", "%41", "~x", "e2/Foo"} {
		if err := os.WriteFile(filepath.Join(sd, p), []byte("foreign"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("keep", filepath.Join(sd, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(sd, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	blobs, dirs := list(t, root)
	if !slices.Equal(blobs, []string{"keep"}) || len(dirs) != 0 {
		t.Errorf("Query = blobs %q dirs %q, want only the blob keep", blobs, dirs)
	}
	if _, err := root.ReadBlob(t.Context(), "empty"); !isNotFound(err) {
		t.Errorf("ReadBlob(empty directory): %v, want a 404", err)
	}
	if _, err := root.ReadBlob(t.Context(), "fifo"); err == nil || errs.TypeOf(err) != errs.TypeStorage {
		t.Errorf("ReadBlob(fifo): %v, want a StorageError", err)
	}
	if err := root.RemoveBlob(t.Context(), "x"); err != nil {
		t.Errorf("RemoveBlob(empty directory): %v, want success", err)
	}
	write(t, root, "empty", "now a blob")
	wantBlob(t, root, "empty", "now a blob")
	write(t, sheet(t, s, "s", "e2"), "y", "y")
	blobs, dirs = list(t, root)
	if !slices.Equal(blobs, []string{"empty", "keep"}) || !slices.Equal(dirs, []string{"e2"}) {
		t.Errorf("Query = blobs %q dirs %q, want [empty keep] [e2]", blobs, dirs)
	}
	// A directory that holds only foreign files is not the store's to
	// remove: a blob cannot take its place.
	if err := os.Mkdir(filepath.Join(sd, "f"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sd, "f", "A"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := root.WriteBlob(t.Context(), "f", []byte("x")); !isErr[*errs.BlobWrongKindError](err) {
		t.Errorf("WriteBlob over a directory of foreign files: %v, want a BlobWrongKindError", err)
	}
}

func isNotFound(err error) bool {
	var se *errs.StorageError
	return errors.As(err, &se) && se.StatusCode == 404
}

// TestWriteAfterItsDirectoriesWerePruned removes the directories a write
// has just made, between its mkdir and its rename, as a concurrent
// RemoveBlob's pruning would: the write must make them again.
func TestWriteAfterItsDirectoriesWerePruned(t *testing.T) {
	dir := memDir(t)
	s := openAt(t, dir, fsblob.Options{})
	sd := filepath.Join(dir, "sheets", "s")
	calls := 0
	fsblob.SetBeforeRename(s, func() {
		if calls++; calls == 1 {
			for _, p := range []string{"a/b", "a", ""} {
				if err := syscall.Rmdir(filepath.Join(sd, p)); err != nil {
					t.Errorf("rmdir %s: %v", p, err)
				}
			}
		}
	})
	d := sheet(t, s, "s", "a", "b")
	write(t, d, "x", "made it")
	wantBlob(t, d, "x", "made it")
	if n := fsblob.Retries(s); n != 1 || calls != 2 {
		t.Errorf("the write started over %d times (%d renames), want once", n, calls)
	}
}

// TestPruneRacesWithWriters removes the last blob of a directory (which
// prunes it and its parents) while other writers put blobs in it. Every
// write must succeed and stay: a writer whose directory was pruned between
// its mkdir and its rename must make it again.
func TestPruneRacesWithWriters(t *testing.T) {
	s := openAt(t, memDir(t), fsblob.Options{NoSync: true})
	const writers, rounds = 3, 150
	done := make(chan struct{})
	var pruners sync.WaitGroup
	pruners.Go(func() {
		d := sheet(t, s, "s", "a", "b")
		for {
			select {
			case <-done:
				return
			default:
			}
			write(t, d, "churn", "c")
			if err := d.RemoveBlob(t.Context(), "churn"); err != nil {
				t.Errorf("RemoveBlob: %v", err)
				return
			}
			if err := sheet(t, s, "s", "a").RemoveAll(t.Context()); err != nil {
				t.Errorf("RemoveAll: %v", err)
				return
			}
		}
	})
	var g sync.WaitGroup
	for w := range writers {
		g.Go(func() {
			d := sheet(t, s, "s", "a", "b")
			for r := range rounds {
				name := fmt.Sprintf("w%d-%d", w, r)
				if err := d.WriteBlob(t.Context(), name, []byte(name)); err != nil {
					t.Errorf("WriteBlob(%s): %v", name, err)
					return
				}
				// RemoveAll of a/ may take it now, but not before the write
				// returned... unless RemoveAll began first. Read at once and
				// accept only the blob or a 404 that RemoveAll explains.
				got, err := d.ReadBlob(t.Context(), name)
				if err != nil && !isNotFound(err) || err == nil && string(got) != name {
					t.Errorf("ReadBlob(%s) after writing it: %q, %v", name, got, err)
				}
				if err := d.RemoveBlob(t.Context(), name); err != nil {
					t.Errorf("RemoveBlob(%s): %v", name, err)
				}
			}
		})
	}
	g.Wait()
	close(done)
	pruners.Wait()
	t.Logf("%d writes started over after a prune", fsblob.Retries(s))
}

// TestPrunesWithoutLosingWrites is TestPruneRacesWithWriters without
// RemoveAll, so that every write must be readable afterwards.
func TestPrunesWithoutLosingWrites(t *testing.T) {
	s := openAt(t, memDir(t), fsblob.Options{NoSync: true})
	const writers, rounds = 3, 150
	done := make(chan struct{})
	var pruners sync.WaitGroup
	for range 2 {
		pruners.Go(func() {
			d := sheet(t, s, "s", "a", "b", "c")
			for {
				select {
				case <-done:
					return
				default:
				}
				write(t, d, "churn", "c")
				if err := d.RemoveBlob(t.Context(), "churn"); err != nil {
					t.Errorf("RemoveBlob: %v", err)
					return
				}
			}
		})
	}
	var g sync.WaitGroup
	for w := range writers {
		g.Go(func() {
			for r := range rounds {
				d := sheet(t, s, "s", "a", "b", "c")
				name := fmt.Sprintf("w%d-%d", w, r)
				if err := d.WriteBlob(t.Context(), name, []byte(name)); err != nil {
					t.Errorf("WriteBlob(%s): %v", name, err)
					return
				}
				wantBlob(t, d, name, name)
				if err := d.RemoveBlob(t.Context(), name); err != nil {
					t.Errorf("RemoveBlob(%s): %v", name, err)
				}
			}
		})
	}
	g.Wait()
	close(done)
	pruners.Wait()
	t.Logf("%d writes started over after a prune", fsblob.Retries(s))
	if blobs, dirs := list(t, sheet(t, s, "s")); len(blobs)+len(dirs) != 0 {
		t.Errorf("after the race the sheet lists %q %q, want nothing", blobs, dirs)
	}
}

func TestCopyIsAHardLink(t *testing.T) {
	dir := diskDir(t)
	s := openAt(t, dir, fsblob.Options{})
	src, dst := sheet(t, s, "s", "a"), sheet(t, s, "s", "b")
	write(t, src, "x", "content")
	if err := blobstore.Copy(t.Context(), dst, "y", src, "x"); err != nil {
		t.Fatal(err)
	}
	a, err := os.Stat(filepath.Join(dir, "sheets", "s", "a", "x"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Stat(filepath.Join(dir, "sheets", "s", "b", "y"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(a, b) {
		t.Errorf("the copy is not a hard link of its source")
	}
	write(t, src, "x", "changed")
	wantBlob(t, dst, "y", "content")
	if err := blobstore.Copy(t.Context(), src, "x", src, "x"); err != nil {
		t.Errorf("Copy onto itself: %v", err)
	}
	wantBlob(t, src, "x", "changed")
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) != 0 {
		t.Errorf("tmp/ holds %d entries after copies, want none", len(es))
	}
}

// TestSymlinksInTheTree plants symbolic links that point out of the store
// and into another sheet, and checks that nothing follows them; the fuzz
// test FuzzNoEscape does the same with arbitrary operations.
func TestSymlinksInTheTree(t *testing.T) {
	w := newWorld(t)
	s := w.store
	root := sheet(t, s, "s")
	ctx := t.Context()
	for _, name := range []string{"lnkfile", "lnkdir", "lnkabs", "other", "Up"} {
		if b, err := root.ReadBlob(ctx, name); err == nil {
			t.Errorf("ReadBlob(%s) through a link = %q, want an error", name, b)
		}
		if d, err := root.GetDir(ctx, name); err == nil {
			if p, err := d.Query(ctx, ""); err == nil && len(p.Blobs)+len(p.Dirs) > 0 {
				t.Errorf("Query(%s/) through a link = %+v, want an error or nothing", name, p)
			}
			if err := d.WriteBlob(ctx, "planted", []byte("x")); err == nil {
				t.Errorf("WriteBlob(%s/planted) through a link succeeded", name)
			}
			if err := d.RemoveAll(ctx); err == nil {
				t.Logf("RemoveAll(%s/) through a link succeeded", name)
			}
			_ = d.RemoveBlob(ctx, "secret")
			_ = d.RemoveBlob(ctx, "t-only")
		}
		if err := blobstore.Copy(ctx, root, "copied", root, name); err == nil {
			b, _ := root.ReadBlob(ctx, "copied")
			t.Errorf("Copy from link %s succeeded: %q", name, b)
		}
	}
	evil := sheet(t, s, "evil")
	if err := evil.WriteBlob(ctx, "planted", []byte("x")); err == nil {
		t.Errorf("WriteBlob in a sheet whose directory links outside succeeded")
	}
	if p, err := evil.Query(ctx, ""); err == nil && len(p.Blobs)+len(p.Dirs) > 0 {
		t.Errorf("Query of a sheet whose directory links outside = %+v", p)
	}
	_ = evil.RemoveAll(ctx)
	_ = evil.RemoveBlob(ctx, "secret")
	// The links themselves are the store's to replace or remove.
	write(t, root, "lnkfile", "replaced the link")
	wantBlob(t, root, "lnkfile", "replaced the link")
	if err := root.RemoveBlob(ctx, "lnkdir"); err != nil {
		t.Errorf("RemoveBlob(link): %v", err)
	}
	if err := root.RemoveAll(ctx); err != nil {
		t.Errorf("RemoveAll of the sheet: %v", err)
	}
	w.check(t)
}
