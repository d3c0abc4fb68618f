//go:build unix

package fsblob_test

import (
	"os"
	"testing"

	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
)

// memDir returns a fresh directory in memory (tmpfs /dev/shm) where there
// is one, else on disk. The conformance suite makes thousands of small
// files; on a disk file system shared with other jobs, each creation can
// wait for the journal, which makes the suite ten times slower without
// testing anything more. The tests of durability use the disk (diskDir).
func memDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "fsblob-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// diskDir returns a fresh directory in the usual temporary directory.
func diskDir(t testing.TB) string { return t.TempDir() }

// openAt opens a store in dir, closed at the end of the test.
func openAt(t testing.TB, dir string, opts fsblob.Options) *fsblob.Store {
	t.Helper()
	s, err := fsblob.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
