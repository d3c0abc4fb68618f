//go:build !unix

package fsblob

import (
	"errors"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// Store is a blob store in one directory tree. On this system Open always
// fails: the store needs the *at system calls of Unix.
type Store struct{}

var _ blobstore.Store = (*Store)(nil)

// Open fails on this system.
func Open(path string, opts Options) (*Store, error) {
	return nil, errors.New("fsblob: the filesystem blob store needs a Unix system")
}

// Close does nothing.
func (s *Store) Close() error { return nil }

// Dir returns "".
func (s *Store) Dir() string { return "" }

// Sheet fails on this system.
func (s *Store) Sheet(string) (blobstore.BlobDir, error) {
	return nil, errors.New("fsblob: the filesystem blob store needs a Unix system")
}
