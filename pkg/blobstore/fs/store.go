//go:build unix

package fsblob

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/continuation"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// Files and directories directly in the store's root.
const (
	formatFile = "format" // formatV1; written first, so its presence marks a store
	lockFile   = "lock"   // flock'd while a Store is open
	keyFile    = "key"    // the continuation token key
	sheetsDir  = "sheets" // one directory per sheet
	tmpDir     = "tmp"    // temporary files; emptied at Open
	formatV1   = "sheetlog fsblob store, format 1\n"
	keyLen     = 32
)

// Store is a blob store in one directory tree. It is safe for concurrent
// use by the goroutines of one process; Open locks the tree against other
// processes (and against a second Open in this one).
type Store struct {
	dir      string
	pageSize int
	sync     bool
	log      *slog.Logger
	// tokenKey authenticates continuation tokens (see the package doc).
	tokens continuation.Sealer

	root   *os.Root // the store's directory
	sheets *os.Root // <root>/sheets: sheet directories open under it
	// sheetsDir and tmpDir are <root>/sheets and <root>/tmp, open for the
	// *at calls (rmdir of a sheet, renames out of tmp) and fsync.
	sheetsDir *os.File
	tmpDir    *os.File
	tmpRoot   *os.Root // <root>/tmp again, where temporary files are made
	lock      *os.File

	closeOnce sync.Once
	// retries counts the writes that started over because a directory was
	// pruned under them (for tests).
	retries atomic.Int64
	// beforeRename, if set, runs just before a write's rename (for tests).
	beforeRename func()

	// What makes writes durable with few fsyncs (see durable.go): dmu
	// guards the records of durable directories, by sheet, and the group
	// commits in flight, by directory.
	dmu     sync.Mutex
	durable map[string]*sheetDurability
	groups  map[fileID]*syncGroup
	// dirSyncs counts directory fsyncs (for tests); dirSync, if set,
	// makes them instead of File.Sync (for tests).
	dirSyncs atomic.Int64
	dirSync  func(*os.File) error
	// afterSyncUp, if set, runs after a write's fsyncs, before it records
	// directories as durable (for tests).
	afterSyncUp func()
}

var (
	_ blobstore.Store   = (*Store)(nil)
	_ blobstore.BlobDir = (*dir)(nil)
	_ blobstore.Copier  = (*dir)(nil)
	_ blobstore.Stater  = (*dir)(nil)
)

// Open opens the store in directory path, creating the directory and an
// empty store if needed. An existing directory must be empty or hold a
// store: Open refuses any other, so that a mistyped path never has its
// "tmp" emptied. Open removes the temporary files a crash left behind.
// Call Close when done.
func Open(path string, opts Options) (_ *Store, err error) {
	s := &Store{
		dir: path, pageSize: opts.PageSize, sync: !opts.NoSync, log: opts.Logger,
		durable: map[string]*sheetDurability{}, groups: map[fileID]*syncGroup{},
	}
	if s.pageSize <= 0 {
		s.pageSize = DefaultPageSize
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	fail := func(err error, format string, args ...any) error {
		return fmt.Errorf("fsblob: open %s: %s: %w", path, fmt.Sprintf(format, args...), err)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fail(err, "creating the directory")
	}
	if s.root, err = os.OpenRoot(path); err != nil {
		return nil, fail(err, "opening the directory")
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	isStore, err := s.checkFormat()
	if err != nil {
		return nil, fail(err, "checking the format")
	}
	if s.lock, err = s.root.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fail(err, "opening the lock file")
	}
	if err := flock(s.lock); err != nil {
		return nil, fail(err, "the store is in use (by another process, or already open in this one)")
	}
	if !isStore {
		if err := s.writeFileAtomic(formatFile, []byte(formatV1), 0o644); err != nil {
			return nil, fail(err, "writing %s", formatFile)
		}
	}
	if err := s.loadKey(); err != nil {
		return nil, fail(err, "loading the token key")
	}
	for _, d := range []string{sheetsDir, tmpDir} {
		if err := s.root.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fail(err, "creating %s", d)
		}
	}
	if err := s.cleanTmp(); err != nil {
		return nil, fail(err, "removing stale temporary files")
	}
	if s.sheets, err = s.root.OpenRoot(sheetsDir); err != nil {
		return nil, fail(err, "opening %s", sheetsDir)
	}
	if s.sheetsDir, err = s.root.OpenFile(sheetsDir, os.O_RDONLY|syscall.O_DIRECTORY, 0); err != nil {
		return nil, fail(err, "opening %s", sheetsDir)
	}
	if s.tmpRoot, err = s.root.OpenRoot(tmpDir); err != nil {
		return nil, fail(err, "opening %s", tmpDir)
	}
	// The same directory as tmpRoot: both are opened from it.
	if s.tmpDir, err = s.tmpRoot.OpenFile(".", os.O_RDONLY|syscall.O_DIRECTORY, 0); err != nil {
		return nil, fail(err, "opening %s", tmpDir)
	}
	if err := s.syncPath(s.root, "."); err != nil {
		return nil, fail(err, "syncing the directory")
	}
	return s, nil
}

// checkFormat reports whether the root holds a store. A directory that
// holds none must be empty, but for the leftovers of an Open that crashed
// before it wrote the format file.
func (s *Store) checkFormat() (bool, error) {
	b, err := s.root.ReadFile(formatFile)
	if err == nil {
		if string(b) != formatV1 {
			return false, fmt.Errorf("%s holds %q, not %q", formatFile, b, formatV1)
		}
		return true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	f, err := s.root.Open(".")
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if n != lockFile && n != formatFile+".new" {
			return false, fmt.Errorf("the directory is not empty (it holds %q) and is not a blob store", n)
		}
	}
	return false, nil
}

// loadKey reads the token key, creating it on first use. It is kept in
// the store so that tokens stay valid across restarts.
func (s *Store) loadKey() error {
	b, err := s.root.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, keyLen)
		_, _ = rand.Read(b) // never fails (it crashes the program instead)
		err = s.writeFileAtomic(keyFile, b, 0o600)
	}
	if err != nil {
		return err
	}
	if len(b) != keyLen {
		return fmt.Errorf("%s holds %d bytes, not %d", keyFile, len(b), keyLen)
	}
	s.tokens = continuation.NewSealer(b, "sheetlog fs blob store query v1")
	return nil
}

// writeFileAtomic writes a small file in the root by write, fsync, rename.
func (s *Store) writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".new"
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && s.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err == nil {
		err = s.syncPath(s.root, ".")
	}
	return err
}

// cleanTmp empties tmp/. Nothing else uses it while the lock is held, so
// whatever is there was left by a process that died mid-write.
func (s *Store) cleanTmp() error {
	f, err := s.root.Open(tmpDir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := s.root.RemoveAll(tmpDir + "/" + n); err != nil {
			return err
		}
	}
	if len(names) > 0 {
		s.log.Info("fsblob: removed stale temporary files", "dir", s.dir, "count", len(names))
	}
	return nil
}

// Close releases the store's lock and descriptors. Handles fail after it.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		for _, f := range []*os.File{s.sheetsDir, s.tmpDir, s.lock} {
			if f != nil {
				f.Close() // closing the lock file releases the flock
			}
		}
		for _, r := range []*os.Root{s.sheets, s.tmpRoot, s.root} {
			if r != nil {
				r.Close()
			}
		}
	})
	return nil
}

// Dir returns the directory the store was opened in.
func (s *Store) Dir() string { return s.dir }

// Sheet returns the root directory of sheet. The id is checked with
// sheetid.Validate (a *errs.ValidationError). No I/O happens until the
// directory is used.
func (s *Store) Sheet(sheet string) (blobstore.BlobDir, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	// A sheet id is at most 64 characters from A-Z a-z 0-9 . _ -, so its
	// encoded form is one segment of at most 128 bytes.
	return &dir{s: s, sheet: sheet, enc: encodeName(sheet)}, nil
}

// openSheet opens the sheet's directory as a Root, so that no path below
// it leaves it, even through a symbolic link. With create, it makes the
// directory if it is missing.
func (s *Store) openSheet(enc string, create bool) (*os.Root, error) {
	r, err := s.sheets.OpenRoot(enc)
	if !create || !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if err := s.sheets.Mkdir(enc, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return s.sheets.OpenRoot(enc)
}

// syncPath fsyncs the directory at path in r.
func (s *Store) syncPath(r *os.Root, path string) error {
	if !s.sync {
		return nil
	}
	f, err := r.OpenFile(path, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func tempName(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// joinPath turns segments into a path for os.Root ("." for none).
func joinPath(segs []string) string {
	if len(segs) == 0 {
		return "."
	}
	return strings.Join(segs, "/")
}

// cat returns a fresh slice holding a then b.
func cat(a, b []string) []string {
	return append(slices.Clip(a), b...)
}
