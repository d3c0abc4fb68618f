//go:build unix

package connguard

import "syscall"

// RaiseFileLimit raises the soft limit on open files (RLIMIT_NOFILE) to
// the hard limit, so that the connections a server may hold are bounded
// by its own MaxConns rather than by a small default (often 1024), and
// returns the soft limit in force. Go's runtime raises it too on some
// systems; doing it here makes it explicit and gives the figure to size
// MaxConns by.
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= lim.Max {
		return uint64(lim.Cur), nil
	}
	raised := lim
	raised.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		// Some systems cap the soft limit below the hard one (macOS at
		// kern.maxfilesperproc): keep what is in force.
		return uint64(lim.Cur), err
	}
	return uint64(raised.Cur), nil
}
