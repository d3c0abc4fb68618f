//go:build unix

package fsblob

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The store resolves directories with os.Root, which keeps every path
// inside the root even through symbolic links, and then acts on the last
// component with the *at system calls below, relative to the directory's
// descriptor. Those take a single component (never "..", never with a
// "/"), so they cannot leave the directory either; they exist because
// os.Root has no call that only unlinks a file, only removes an empty
// directory, or renames and links between two of its descriptors.

// withFd runs fn with the descriptor of f.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != syscall.EINTR {
			return err
		}
	}
}

// unlinkAt removes the file (never a directory) name in dir.
func unlinkAt(dir *os.File, name string) error {
	return withFd(dir, func(fd int) error {
		return pathErr("unlinkat", dir, name, retryEINTR(func() error { return unix.Unlinkat(fd, name, 0) }))
	})
}

// rmdirAt removes name in dir if it is an empty directory.
func rmdirAt(dir *os.File, name string) error {
	return withFd(dir, func(fd int) error {
		return pathErr("rmdirat", dir, name, retryEINTR(func() error { return unix.Unlinkat(fd, name, unix.AT_REMOVEDIR) }))
	})
}

// renameAt renames fromDir/from to toDir/to, replacing a file (or
// symbolic link) there, as rename(2) does.
func renameAt(fromDir *os.File, from string, toDir *os.File, to string) error {
	return withFd(fromDir, func(ffd int) error {
		return withFd(toDir, func(tfd int) error {
			return pathErr("renameat", toDir, to, retryEINTR(func() error { return unix.Renameat(ffd, from, tfd, to) }))
		})
	})
}

// linkAt makes toDir/to a hard link to fromDir/from, which is not
// followed if it is a symbolic link.
func linkAt(fromDir *os.File, from string, toDir *os.File, to string) error {
	return withFd(fromDir, func(ffd int) error {
		return withFd(toDir, func(tfd int) error {
			return pathErr("linkat", fromDir, from, retryEINTR(func() error { return unix.Linkat(ffd, from, tfd, to, 0) }))
		})
	})
}

// lstatAt returns the type of name in dir, not following a symbolic link.
func lstatAt(dir *os.File, name string) (fs.FileMode, error) {
	var st unix.Stat_t
	err := withFd(dir, func(fd int) error {
		return pathErr("fstatat", dir, name, retryEINTR(func() error { return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }))
	})
	if err != nil {
		return 0, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return 0, nil
	case unix.S_IFDIR:
		return fs.ModeDir, nil
	case unix.S_IFLNK:
		return fs.ModeSymlink, nil
	}
	return fs.ModeIrregular, nil
}

// flock takes an exclusive advisory lock on f without waiting.
func flock(f *os.File) error {
	err := withFd(f, func(fd int) error {
		return retryEINTR(func() error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
	})
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

var errLocked = errors.New("locked by another user")

func pathErr(op string, dir *os.File, name string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: dir.Name() + "/" + name, Err: err}
}

// isDirNotEmpty reports whether err is rmdir's or rename's answer for a
// directory that is not empty (POSIX allows either errno).
func isDirNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// isDirTarget reports whether err is unlink's or rename's answer for a
// directory where a file was expected: EISDIR (Linux), EPERM (unlink on
// macOS and the BSDs), or a non-empty directory.
func isDirTarget(err error) bool {
	return errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EPERM) || isDirNotEmpty(err)
}

// cannotLink reports whether linkat failed because the file system does
// not do hard links here, so that copying the bytes is the way.
func cannotLink(err error) bool {
	for _, e := range []error{syscall.EXDEV, syscall.EPERM, syscall.EMLINK, syscall.ENOTSUP, syscall.EOPNOTSUPP, syscall.EACCES} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// readDir lists the directory f. A File opened in an os.Root lstats every
// entry as ReadDir reads it; a duplicate of its descriptor, opened as a
// plain File, uses the types the directory itself records (d_type), and
// only lstats where the file system records none.
func readDir(f *os.File) ([]os.DirEntry, error) {
	var dup int
	err := withFd(f, func(fd int) error {
		var err error
		dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	df := os.NewFile(uintptr(dup), f.Name())
	defer df.Close()
	return df.ReadDir(-1)
}
