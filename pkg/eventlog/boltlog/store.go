package boltlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// Defaults of Options.
const (
	DefaultPageSize      = 1000
	DefaultPageBytes     = 1 << 20
	DefaultLockTimeout   = 2 * time.Second
	DefaultMaxBatchOps   = 256
	DefaultMaxBatchBytes = 16 << 20
)

// Options tune a Store. Zero or negative values take the defaults.
type Options struct {
	// PageSize is the largest number of entries in one query page.
	PageSize int
	// PageBytes is the largest total body size of one page. A page always
	// holds at least one entry, however large, so that paging progresses.
	PageBytes int
	// LockTimeout is how long Open waits for another process to release
	// the file before it fails.
	LockTimeout time.Duration
	// MaxBatchOps and MaxBatchBytes bound one group commit: how many
	// writes, and how many bytes of records, share one transaction. They
	// bound the memory of a transaction and the latency a write can add to
	// the others in its batch.
	MaxBatchOps   int
	MaxBatchBytes int
	// Logger receives the store's few log lines (open, close, failed
	// commits). Nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.PageSize, DefaultPageSize)
	def(&o.PageBytes, DefaultPageBytes)
	def(&o.MaxBatchOps, DefaultMaxBatchOps)
	def(&o.MaxBatchBytes, DefaultMaxBatchBytes)
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store holds the event logs of every sheet in one bbolt file. It is safe
// for concurrent use by one process; another process opening the same
// file waits for it, then fails (see Options.LockTimeout).
type Store struct {
	path string
	opts Options
	db   *bolt.DB
	c    *committer

	closeOnce sync.Once
	closeErr  error
}

var _ eventlog.Store = (*Store)(nil)

// Open opens the store in the file at path, creating the file (and its
// directory) if it does not exist. Close it to release the file.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errs.Storage(err, "cannot create the directory of event log file %s", path)
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	if created {
		if err := create(path, opts); err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close()
		return nil, errs.Storage(err, "cannot open event log file %s", path)
	}
	opts.Logger.Info("event log opened", "path", path, "created", created)
	return &Store{path: path, opts: opts, db: db, c: newCommitter(db, opts.Logger, opts.MaxBatchOps, opts.MaxBatchBytes)}, nil
}

func openBolt(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The map freelist stays fast as the file fragments; NoSync and
		// NoGrowSync stay false: commits are fsync'd.
		FreelistType: bolt.FreelistMapType,
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, errs.Storage(err, "event log file %s is locked by another process (waited %v); is another server running on this data directory?", path, opts.LockTimeout)
	case err != nil:
		return nil, errs.Storage(err, "cannot open event log file %s", path)
	}
	return db, nil
}

// create makes a new, initialised store file at path atomically: a crash
// half way through bbolt's own initialisation of a fresh file would leave
// a file that no longer opens. The file is built under a temporary name
// and linked into place (link, unlike rename, never replaces a file that
// another process created meanwhile); the directory is then fsync'd,
// since bbolt syncs the file but not the entry that names it.
func create(path string, opts Options) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return errs.Storage(err, "cannot create event log file %s", path)
	}
	tmp := f.Name()
	_ = f.Close()
	defer os.Remove(tmp)
	db, err := openBolt(tmp, opts)
	if err != nil {
		return err
	}
	err = db.Update(initBuckets)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.Link(tmp, path); errors.Is(err, os.ErrExist) {
			return nil // someone else created it first; use theirs
		}
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return errs.Storage(err, "cannot create event log file %s", path)
	}
	return nil
}

func initBuckets(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	switch f := meta.Get(keyFormat); {
	case f == nil:
		if err := meta.Put(keyFormat, formatValue); err != nil {
			return err
		}
	case !bytes.Equal(f, formatValue):
		return fmt.Errorf("the file holds format %q, this build reads %q", f, formatValue)
	}
	for _, name := range [][]byte{bucketHeads, bucketEntries, bucketPending, bucketSnapshots} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close finishes the writes already queued, then closes the file. Calls
// made after Close fail with a StorageError. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.c.close()
		if err := s.db.Close(); err != nil {
			s.closeErr = errs.Storage(err, "closing event log file %s", s.path)
			return
		}
		s.opts.Logger.Info("event log closed", "path", s.path)
	})
	return s.closeErr
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Log returns the log of sheet. Logs exist implicitly: a sheet nobody has
// written to is an empty log whose next id is 0.
func (s *Store) Log(sheet string) (eventlog.EventLog, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	return &sheetLog{s: s, sheet: sheet, key: []byte(sheet), prefix: sheetPrefix(sheet)}, nil
}

func abandoned(err error) error {
	return errs.Storage(err, "event log call abandoned")
}

// view runs a read transaction after checking ctx and the store's health.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return abandoned(err)
	}
	if b := s.c.broken.Load(); b != nil {
		return b
	}
	err := s.db.View(fn)
	if err == nil || errs.TypeOf(err) != "" {
		return err
	}
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		err = errClosed
	}
	return errs.Storage(err, "event log read failed")
}

// update queues a write for the next group commit after checking ctx.
// size estimates the bytes the write adds to the transaction.
func (s *Store) update(ctx context.Context, size int, apply applyFunc) error {
	if err := ctx.Err(); err != nil {
		return abandoned(err)
	}
	if b := s.c.broken.Load(); b != nil {
		return b
	}
	return s.c.submit(ctx, size, apply)
}

// Pending lists every entry whose pending field is set, across all sheets,
// ordered by sheet and then by sequence id. It reads only the pending
// index, never the entries.
func (s *Store) Pending(ctx context.Context) ([]eventlog.PendingEntry, error) {
	var out []eventlog.PendingEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			sheet, id, err := splitKey(k)
			if err != nil {
				return errs.Storage(err, "corrupt pending index")
			}
			out = append(out, eventlog.PendingEntry{Sheet: sheet, SequenceID: id, Workflow: string(v)})
			return nil
		})
	})
	return out, err
}

// Sheets lists the sheets that have ever been written to, in order.
func (s *Store) Sheets(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		return tx.Bucket(bucketHeads).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}
