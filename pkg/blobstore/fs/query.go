//go:build unix

package fsblob

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// listed is one name found in a directory.
type listed struct {
	name  string
	isDir bool
	path  []string // its segments below the sheet's directory
}

// errStop ends a scan early.
var errStop = errors.New("fsblob: stop scan")

// scan calls fn for every blob and directory of the store directly in the
// directory at segs, following continuation directories. Entries that
// are not exactly the encoding of a valid name (foreign files, symbolic
// links, anything planted) are skipped. A directory removed meanwhile
// holds nothing.
func (s *Store) scan(sr *os.Root, segs []string, fn func(listed) error) error {
	return s.scanIn(sr, segs, len(segs), 0, fn)
}

// scanIn scans the directory at segs, which is dirLen segments of
// directory and then continuation segments carrying contLen encoded bytes.
func (s *Store) scanIn(sr *os.Root, segs []string, dirLen, contLen int, fn func(listed) error) error {
	f, err := openDir(sr, segs)
	if err != nil {
		if notExist(err) && len(segs) > dirLen {
			return nil // a continuation directory pruned meanwhile
		}
		return err
	}
	entries, err := readDir(f)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range entries {
		n, t := e.Name(), e.Type()
		if n[0] == contMark {
			if t.IsDir() && len(n) >= 2 && len(n) <= maxSegment && contLen+len(n)-1+maxSegment <= maxEncodedLen {
				if err := s.scanIn(sr, cat(segs, []string{n}), dirLen, contLen+len(n)-1, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !t.IsDir() && !t.IsRegular() {
			continue
		}
		path := cat(segs, []string{n})
		name, ok := nameOf(path[dirLen:])
		if !ok {
			continue
		}
		if err := fn(listed{name: name, isDir: t.IsDir(), path: path}); err != nil {
			return err
		}
	}
	return nil
}

// hasBlob reports whether the directory at segs holds a blob, directly or
// below: whether it exists for the contract.
func (s *Store) hasBlob(sr *os.Root, segs []string) (bool, error) {
	err := s.scan(sr, segs, func(e listed) error {
		if !e.isDir {
			return errStop
		}
		ok, err := s.hasBlob(sr, e.path)
		if err != nil {
			return err
		}
		if ok {
			return errStop
		}
		return nil
	})
	switch {
	case err == errStop:
		return true, nil
	case err == nil, notExist(err), notDir(err):
		return false, nil
	}
	return false, err
}

// Query lists the directory sorted by name, PageSize entries a page. Each
// page reads the whole directory, which is fine for the directories of a
// sheet (thousands of entries, not millions).
func (d *dir) Query(ctx context.Context, continuation string) (blobstore.Page, error) {
	if err := d.entry(ctx, "Query"); err != nil {
		return blobstore.Page{}, err
	}
	after, err := d.openToken(continuation)
	if err != nil {
		return blobstore.Page{}, err
	}
	sr, err := d.s.openSheet(d.enc, false)
	if err != nil {
		if notExist(err) {
			return blobstore.Page{}, nil
		}
		return blobstore.Page{}, d.fail(err, "Query", "")
	}
	defer sr.Close()
	var all []listed
	err = d.s.scan(sr, d.segs, func(e listed) error {
		if continuation == "" || e.name > after {
			all = append(all, e)
		}
		return nil
	})
	switch {
	case err == nil:
	case notExist(err):
		return blobstore.Page{}, nil
	case notDir(err):
		return blobstore.Page{}, d.blocked(sr, "")
	default:
		return blobstore.Page{}, d.fail(err, "Query", "")
	}
	slices.SortFunc(all, func(a, b listed) int { return strings.Compare(a.name, b.name) })
	var page blobstore.Page
	n, last := 0, ""
	for _, e := range all {
		if e.isDir {
			// Empty directories are invisible: left by a crash, or being
			// made by a writer whose blob has not arrived yet.
			ok, err := d.s.hasBlob(sr, e.path)
			if err != nil {
				return blobstore.Page{}, d.fail(err, "Query", e.name)
			}
			if !ok {
				continue
			}
		}
		if n == d.s.pageSize {
			// One more entry exists, so a token is worth giving.
			page.Continuation = d.sealToken(last)
			break
		}
		if e.isDir {
			page.Dirs = append(page.Dirs, e.name)
		} else {
			page.Blobs = append(page.Blobs, e.name)
		}
		n, last = n+1, e.name
	}
	return page, nil
}

// A continuation token is the last name of its page, after an HMAC (keyed
// by the store's persistent key) over the sheet, the directory's path and
// that name: stateless, valid across restarts, and refused in any other
// directory, sheet or store, or when altered.

func (d *dir) tokenScope() []string { return append([]string{d.sheet}, d.names...) }

func (d *dir) sealToken(after string) string { return d.s.tokens.Seal(d.tokenScope(), after) }

func (d *dir) openToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	return d.s.tokens.Open(d.tokenScope(), token)
}
