//go:build unix

package fsblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// maxAttempts bounds the retries of a write whose directory keeps being
// pruned under it by concurrent removals.
const maxAttempts = 100

// errRetry asks place to start over: a directory it made or opened was
// removed (pruned) in the meantime.
var errRetry = errors.New("fsblob: retry")

// dir is a directory handle: a sheet and a path of names from its root.
// Its fields are never modified after construction.
type dir struct {
	s     *Store
	sheet string
	enc   string   // the sheet's directory name
	names []string // the path, as names
	segs  []string // the path, as segments below the sheet's directory
	ends  []int    // segs[:ends[i]] is the path of names[:i+1]
}

func (d *dir) String() string {
	return "sheet " + d.sheet + " /" + strings.Join(d.names, "/")
}

func (d *dir) child(name string) *dir {
	segs := appendSegments(slices.Clip(d.segs), name)
	return &dir{
		s: d.s, sheet: d.sheet, enc: d.enc,
		names: cat(d.names, []string{name}),
		segs:  segs,
		ends:  append(slices.Clip(d.ends), len(segs)),
	}
}

// target returns the segments of name in d.
func (d *dir) target(name string) []string {
	return appendSegments(slices.Clip(d.segs), name)
}

func (d *dir) entry(ctx context.Context, op string, names ...string) error {
	if err := ctx.Err(); err != nil {
		return errs.Storage(err, "fs blob store: %s in %s", op, d)
	}
	for _, n := range names {
		if err := blobstore.ValidateName(n); err != nil {
			return err
		}
	}
	return nil
}

func (d *dir) fail(err error, op, name string) error {
	if name == "" {
		return errs.Storage(err, "fs blob store: %s of %s", op, d)
	}
	return errs.Storage(err, "fs blob store: %s %q in %s", op, name, d)
}

func (d *dir) notFound(name string) error {
	return errs.NotFound("blob %q not found in %s", name, d)
}

// blocked is the error of a path that runs into a blob (ENOTDIR): a
// BlobWrongKindError naming the first name of d's path that is a blob.
func (d *dir) blocked(sr *os.Root, name string) error {
	for i, end := range d.ends {
		fi, err := sr.Lstat(joinPath(d.segs[:end]))
		if err == nil && fi.Mode().IsRegular() {
			return &errs.BlobWrongKindError{
				Name: d.names[i],
				Message: fmt.Sprintf("%q is a blob, so directory /%s of sheet %s does not exist",
					d.names[i], strings.Join(d.names[:i+1], "/"), d.sheet),
			}
		}
	}
	return &errs.BlobWrongKindError{Name: name, Message: fmt.Sprintf("a blob is in the way of %q in %s", name, d)}
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
func notDir(err error) bool   { return errors.Is(err, syscall.ENOTDIR) }

// openDir opens the directory at segs in sr.
func openDir(sr *os.Root, segs []string) (*os.File, error) {
	return sr.OpenFile(joinPath(segs), os.O_RDONLY|syscall.O_DIRECTORY, 0)
}

func (d *dir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	if err := d.entry(ctx, "ReadBlob", name); err != nil {
		return nil, err
	}
	sr, err := d.s.openSheet(d.enc, false)
	if err != nil {
		if notExist(err) {
			return nil, d.notFound(name)
		}
		return nil, d.fail(err, "ReadBlob", name)
	}
	defer sr.Close()
	return d.read(sr, name)
}

func (d *dir) read(sr *os.Root, name string) ([]byte, error) {
	path := d.target(name)
	// O_NONBLOCK: a FIFO planted in the tree must not hang the open.
	f, err := sr.OpenFile(joinPath(path), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	switch {
	case err == nil:
	case notExist(err):
		return nil, d.notFound(name)
	case notDir(err):
		return nil, d.blocked(sr, name)
	default:
		return nil, d.fail(err, "ReadBlob", name)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, d.fail(err, "ReadBlob", name)
	}
	if fi.IsDir() {
		return nil, d.dirInTheWay(sr, path, name)
	}
	if !fi.Mode().IsRegular() {
		return nil, d.fail(fmt.Errorf("%s is not a regular file", fi.Mode().Type()), "ReadBlob", name)
	}
	// A blob file is never changed in place (only replaced), so its size
	// is what will be read.
	var b bytes.Buffer
	b.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := b.ReadFrom(f); err != nil {
		return nil, d.fail(err, "ReadBlob", name)
	}
	return b.Bytes(), nil
}

// StatBlob implements blobstore.Stater: the file's size and modification
// time. A blob written by WriteBlob has the time its temporary file was
// written; a copy shares its source's file (a hard link), and so its time.
func (d *dir) StatBlob(ctx context.Context, name string) (blobstore.BlobInfo, error) {
	if err := d.entry(ctx, "StatBlob", name); err != nil {
		return blobstore.BlobInfo{}, err
	}
	sr, err := d.s.openSheet(d.enc, false)
	if err != nil {
		if notExist(err) {
			return blobstore.BlobInfo{}, d.notFound(name)
		}
		return blobstore.BlobInfo{}, d.fail(err, "StatBlob", name)
	}
	defer sr.Close()
	path := d.target(name)
	fi, err := sr.Stat(joinPath(path)) // as read, which opens the file
	switch {
	case err == nil:
	case notExist(err):
		return blobstore.BlobInfo{}, d.notFound(name)
	case notDir(err):
		return blobstore.BlobInfo{}, d.blocked(sr, name)
	default:
		return blobstore.BlobInfo{}, d.fail(err, "StatBlob", name)
	}
	switch {
	case fi.IsDir():
		return blobstore.BlobInfo{}, d.dirInTheWay(sr, path, name)
	case !fi.Mode().IsRegular():
		return blobstore.BlobInfo{}, d.fail(fmt.Errorf("%s is not a regular file", fi.Mode().Type()), "StatBlob", name)
	}
	return blobstore.BlobInfo{Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// dirInTheWay answers a blob operation on name, a directory on disk: a
// BlobWrongKindError, or a 404 when the directory is empty (which for
// the contract does not exist).
func (d *dir) dirInTheWay(sr *os.Root, path []string, name string) error {
	ok, err := d.s.hasBlob(sr, path)
	switch {
	case err != nil:
		return d.fail(err, "checking directory", name)
	case ok:
		return errs.WrongKind(name, true)
	}
	return d.notFound(name)
}

func (d *dir) WriteBlob(ctx context.Context, name string, data []byte) error {
	if err := d.entry(ctx, "WriteBlob", name); err != nil {
		return err
	}
	tmp, err := d.s.writeTemp(data)
	if err != nil {
		return d.fail(err, "WriteBlob", name)
	}
	defer d.s.dropTemp(tmp)
	return d.place(ctx, "WriteBlob", name, tmp)
}

// writeTemp writes data to a new file in tmp/ and fsyncs it.
func (s *Store) writeTemp(data []byte) (string, error) {
	name := tempName("w-")
	f, err := s.tmpRoot.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil && s.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.dropTemp(name)
		return "", err
	}
	return name, nil
}

// dropTemp removes a temporary file, if it is still there.
func (s *Store) dropTemp(name string) {
	if err := unlinkAt(s.tmpDir, name); err != nil && !notExist(err) {
		s.log.Warn("fsblob: removing a temporary file", "dir", s.dir, "err", err)
	}
}

// place renames tmp/tmp to name in d, making the directories on the way,
// and makes the result durable. A concurrent removal may prune a
// directory between the moment place makes it and the rename; then place
// starts over.
func (d *dir) place(ctx context.Context, op, name, tmp string) error {
	path := d.target(name)
	for range maxAttempts {
		// A done context changes nothing; checked here, after the temporary
		// file (which may be long to write) and before anything is visible.
		if err := ctx.Err(); err != nil {
			return d.fail(err, op, name)
		}
		if err := d.tryPlace(op, name, path, tmp); err != errRetry {
			return err
		}
		d.s.retries.Add(1)
	}
	return d.fail(fmt.Errorf("gave up after %d attempts: its directory kept being removed", maxAttempts), op, name)
}

func (d *dir) tryPlace(op, name string, path []string, tmp string) error {
	parent, last := path[:len(path)-1], path[len(path)-1]
	// Registered before anything is opened: see durable.go.
	p := d.s.beginPlace(d.enc, parent)
	var levels []int
	defer func() { d.s.endPlace(d.enc, p, parent, levels) }()
	sr, err := d.s.openSheet(d.enc, true)
	if err != nil {
		if notExist(err) {
			return errRetry
		}
		return d.fail(err, op, name)
	}
	defer sr.Close()
	pf, err := openDir(sr, parent)
	if notExist(err) {
		if err := d.mkdirs(sr, parent, name); err != nil {
			return err
		}
		pf, err = openDir(sr, parent)
	}
	switch {
	case err == nil:
	case notExist(err):
		return errRetry
	case notDir(err):
		return d.blocked(sr, name)
	default:
		return d.fail(err, op, name)
	}
	defer pf.Close()
	if h := d.s.beforeRename; h != nil {
		h()
	}
	err = renameAt(d.s.tmpDir, tmp, pf, last)
	switch {
	case err == nil:
		if levels, err = d.syncUp(sr, pf, parent); err != nil {
			return d.fail(err, op, name)
		}
		return nil
	case notExist(err):
		// pf was removed (pruned) since it was opened, or the temporary
		// file is gone, which is not worth retrying.
		if _, err := lstatAt(d.s.tmpDir, tmp); err != nil {
			return d.fail(err, op, name)
		}
		return errRetry
	case isDirTarget(err):
		if ok, err := d.s.hasBlob(sr, path); err != nil {
			return d.fail(err, op, name)
		} else if ok {
			return errs.WrongKind(name, true)
		}
		// An empty directory does not exist for the contract, so it
		// gives way (to a writer whose rename then follows), unless it
		// holds something that is not the store's.
		err := d.s.removing(d.enc, path, func() error { return rmdirTree(sr, path) })
		if err != nil && !notExist(err) {
			if isDirNotEmpty(err) {
				return errs.WrongKind(name, true)
			}
			return d.fail(err, op, name)
		}
		return errRetry
	case notDir(err):
		return d.blocked(sr, name)
	}
	return d.fail(err, op, name)
}

// mkdirs makes the directories of segs, the way to name, that are missing.
func (d *dir) mkdirs(sr *os.Root, segs []string, name string) error {
	for i := range segs {
		err := sr.Mkdir(joinPath(segs[:i+1]), 0o755)
		switch {
		case err == nil, errors.Is(err, fs.ErrExist):
			// An existing file here shows up as ENOTDIR on the next step.
		case notExist(err):
			return errRetry
		case notDir(err):
			return d.blocked(sr, name)
		default:
			return d.fail(err, "creating a directory for", name)
		}
	}
	return nil
}

// syncUp makes a new entry in pf (the directory at segs) durable, after
// the rename: it fsyncs pf, and the directories above it up to the first
// one known durable, or up to sheets/ (see durable.go). The ones above
// are synced even if this call did not create them, because the writer
// that did may not have synced them yet when this one returns. It
// returns the levels j whose directory segs[:j] is now durable.
func (d *dir) syncUp(sr *os.Root, pf *os.File, segs []string) ([]int, error) {
	if !d.s.sync {
		return nil, nil
	}
	k := d.s.durableDepth(d.enc, segs)
	if err := d.s.syncDir(pf); err != nil {
		return nil, err
	}
	for j := len(segs) - 1; j >= max(k, 0); j-- {
		f, err := openDir(sr, segs[:j])
		if notExist(err) {
			return nil, nil // pruned meanwhile, and so the blob: nothing to keep
		}
		if err != nil {
			return nil, err
		}
		err = d.s.syncDir(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if k < 0 {
		if err := d.s.syncDir(d.s.sheetsDir); err != nil {
			return nil, err
		}
	}
	var levels []int
	for j := k + 1; j <= len(segs); j++ {
		levels = append(levels, j)
	}
	if h := d.s.afterSyncUp; h != nil {
		h()
	}
	return levels, nil
}

// prune removes the empty directories at segs and above, deepest first,
// up to the sheet's own directory. It only ever removes empty directories
// (rmdir), so it cannot lose a blob that a concurrent writer put there; a
// writer whose directory it removed before the blob arrived retries. It
// stops at the first directory that is not empty, before its rmdir, which
// would forget that the directory is durable for nothing (a blob that
// goes from it later has its own prune).
func (d *dir) prune(sr *os.Root, segs []string) {
	for i := len(segs); i > 0; i-- {
		if !isEmptyDir(sr, segs[:i]) {
			return
		}
		pf, err := openDir(sr, segs[:i-1])
		if err != nil {
			return
		}
		err = d.s.removing(d.enc, segs[:i], func() error { return rmdirAt(pf, segs[i-1]) })
		pf.Close()
		if err != nil {
			return
		}
	}
	if isEmptyDir(sr, nil) {
		_ = d.s.removing(d.enc, nil, func() error { return rmdirAt(d.s.sheetsDir, d.enc) })
	}
}

// isEmptyDir reports whether the directory at segs is there and empty.
func isEmptyDir(sr *os.Root, segs []string) bool {
	f, err := openDir(sr, segs)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == io.EOF
}

// rmdirTree removes the directory at segs and the directories below it,
// if they hold no file at all: rmdir only, so that it can never remove a
// blob, even one written meanwhile (whose directory then stays).
func rmdirTree(sr *os.Root, segs []string) error {
	f, err := openDir(sr, segs)
	if err != nil {
		return err
	}
	entries, err := readDir(f)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := rmdirTree(sr, cat(segs, []string{e.Name()})); err != nil && !notExist(err) {
				return err
			}
		}
	}
	pf, err := openDir(sr, segs[:len(segs)-1])
	if err != nil {
		return err
	}
	defer pf.Close()
	return rmdirAt(pf, segs[len(segs)-1])
}

func (d *dir) RemoveBlob(ctx context.Context, name string) error {
	if err := d.entry(ctx, "RemoveBlob", name); err != nil {
		return err
	}
	sr, err := d.s.openSheet(d.enc, false)
	if err != nil {
		if notExist(err) {
			return nil
		}
		return d.fail(err, "RemoveBlob", name)
	}
	defer sr.Close()
	path := d.target(name)
	parent, last := path[:len(path)-1], path[len(path)-1]
	pf, err := openDir(sr, parent)
	switch {
	case err == nil:
	case notExist(err):
		return nil
	case notDir(err):
		return d.blocked(sr, name)
	default:
		return d.fail(err, "RemoveBlob", name)
	}
	defer pf.Close()
	err = unlinkAt(pf, last)
	switch {
	case err == nil:
	case notExist(err):
		return nil
	case isDirTarget(err):
		mode, serr := lstatAt(pf, last)
		if serr != nil || !mode.IsDir() {
			return d.fail(err, "RemoveBlob", name)
		}
		if err := d.dirInTheWay(sr, path, name); !isNotFound(err) {
			return err
		}
		// An empty directory: nothing to remove, but tidy it away.
		_ = d.s.removing(d.enc, path, func() error { return rmdirTree(sr, path) })
	default:
		return d.fail(err, "RemoveBlob", name)
	}
	if err := d.s.syncDir(pf); err != nil {
		return d.fail(err, "RemoveBlob", name)
	}
	d.prune(sr, parent)
	return nil
}

func isNotFound(err error) bool {
	var se *errs.StorageError
	return errors.As(err, &se) && se.StatusCode == 404
}

func (d *dir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	if err := d.entry(ctx, "GetDir", name); err != nil {
		return nil, err
	}
	sub := d.child(name)
	sr, err := d.s.openSheet(d.enc, false)
	if err != nil {
		if notExist(err) {
			return sub, nil
		}
		return nil, d.fail(err, "GetDir", name)
	}
	defer sr.Close()
	fi, err := sr.Lstat(joinPath(sub.segs))
	switch {
	case err == nil && fi.Mode().IsRegular():
		return nil, errs.WrongKind(name, false)
	case err == nil, notExist(err):
		return sub, nil
	case notDir(err):
		return nil, d.blocked(sr, name)
	}
	return nil, d.fail(err, "GetDir", name)
}

// RemoveAll removes what is in the directory, then the directory. It is
// not atomic: a concurrent reader may see part of the tree gone, and a
// blob written concurrently may survive (as if written just after).
func (d *dir) RemoveAll(ctx context.Context) error {
	if err := d.entry(ctx, "RemoveAll"); err != nil {
		return err
	}
	sr, err := d.s.openSheet(d.enc, false)
	if err != nil {
		if notExist(err) {
			return nil
		}
		return d.fail(err, "RemoveAll", "")
	}
	defer sr.Close()
	// From here on, d and what is below it may go (see durable.go).
	d.s.beginRemoval(d.enc, d.segs)
	defer d.s.endRemoval(d.enc, d.segs)
	dr := sr
	if len(d.segs) > 0 {
		// A Root, so that removal stays inside the directory.
		dr, err = sr.OpenRoot(joinPath(d.segs))
		if err != nil {
			if notExist(err) {
				return nil
			}
			fi, serr := sr.Lstat(joinPath(d.segs))
			switch {
			case notExist(serr):
				return nil
			case notDir(serr), serr == nil && fi.Mode().IsRegular():
				return d.blocked(sr, "")
			}
			return d.fail(err, "RemoveAll", "")
		}
		defer dr.Close()
	}
	if err := d.removeContents(ctx, dr); err != nil {
		return err
	}
	if len(d.segs) == 0 {
		_ = rmdirAt(d.s.sheetsDir, d.enc)
		return d.syncRemoval(d.s.sheetsDir)
	}
	parent, last := d.segs[:len(d.segs)-1], d.segs[len(d.segs)-1]
	pf, err := openDir(sr, parent)
	if err != nil {
		return nil // pruned meanwhile
	}
	defer pf.Close()
	// Only an empty directory goes: a blob written here since cannot.
	if err := rmdirAt(pf, last); err == nil {
		if err := d.syncRemoval(pf); err != nil {
			return err
		}
	}
	d.prune(sr, parent)
	return nil
}

func (d *dir) removeContents(ctx context.Context, dr *os.Root) error {
	f, err := dr.Open(".")
	if err != nil {
		if notExist(err) {
			return nil
		}
		return d.fail(err, "RemoveAll", "")
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		if notExist(err) {
			return nil // removed meanwhile (readdir of a deleted directory)
		}
		return d.fail(err, "RemoveAll", "")
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return d.fail(err, "RemoveAll", "")
		}
		// Root.RemoveAll unlinks a symbolic link, never what it points to.
		// A directory that a concurrent writer has just put a blob in is
		// not empty at the end: that blob was written after this removal.
		if err := dr.RemoveAll(n); err != nil && !notExist(err) && !isDirNotEmpty(err) {
			return d.fail(err, "RemoveAll", "")
		}
	}
	return nil
}

func (d *dir) syncRemoval(f *os.File) error {
	if err := d.s.syncDir(f); err != nil {
		return d.fail(err, "RemoveAll", "")
	}
	return nil
}

// CopyBlob implements blobstore.Copier within one sheet of the store: it
// hard-links the source into tmp/ and renames the link into place, so no
// byte is copied (blob files are never changed in place, so sharing one
// is safe). Where the file system refuses hard links it copies the bytes.
func (d *dir) CopyBlob(ctx context.Context, dstName string, src blobstore.BlobDir, srcName string) error {
	if err := d.entry(ctx, "CopyBlob", dstName, srcName); err != nil {
		return err
	}
	sd, ok := src.(*dir)
	if !ok || sd.s != d.s {
		return fmt.Errorf("fs blob store: source is not in this store: %w", blobstore.ErrCopyUnsupported)
	}
	if sd.sheet != d.sheet {
		return fmt.Errorf("fs blob store: copy from sheet %s to sheet %s: %w", sd.sheet, d.sheet, blobstore.ErrCopyUnsupported)
	}
	tmp, err := sd.linkTemp(srcName)
	if err != nil {
		return err
	}
	defer d.s.dropTemp(tmp)
	// Renaming a link onto the source itself (a copy onto itself) does
	// nothing and leaves the link in tmp/, which dropTemp removes.
	return d.place(ctx, "CopyBlob", dstName, tmp)
}

// linkTemp makes a file in tmp/ with the content of name in d.
func (d *dir) linkTemp(name string) (string, error) {
	sr, err := d.s.openSheet(d.enc, false)
	if err != nil {
		if notExist(err) {
			return "", d.notFound(name)
		}
		return "", d.fail(err, "CopyBlob", name)
	}
	defer sr.Close()
	path := d.target(name)
	parent, last := path[:len(path)-1], path[len(path)-1]
	pf, err := openDir(sr, parent)
	switch {
	case err == nil:
	case notExist(err):
		return "", d.notFound(name)
	case notDir(err):
		return "", d.blocked(sr, name)
	default:
		return "", d.fail(err, "CopyBlob", name)
	}
	defer pf.Close()
	mode, err := lstatAt(pf, last)
	switch {
	case notExist(err):
		return "", d.notFound(name)
	case err != nil:
		return "", d.fail(err, "CopyBlob", name)
	case mode.IsDir():
		return "", d.dirInTheWay(sr, path, name)
	case !mode.IsRegular():
		return "", d.fail(fmt.Errorf("%s is not a regular file", mode.Type()), "CopyBlob", name)
	}
	tmp := tempName("c-")
	err = linkAt(pf, last, d.s.tmpDir, tmp)
	switch {
	case err == nil:
		return tmp, nil
	case notExist(err):
		return "", d.notFound(name)
	case !cannotLink(err):
		return "", d.fail(err, "CopyBlob", name)
	}
	b, err := d.read(sr, name)
	if err != nil {
		return "", err
	}
	if tmp, err = d.s.writeTemp(b); err != nil {
		return "", d.fail(err, "CopyBlob", name)
	}
	return tmp, nil
}
