//go:build unix

package fsblob

// Retries returns how many writes started over because a directory was
// pruned under them.
func Retries(s *Store) int64 { return s.retries.Load() }

// SetBeforeRename makes fn run just before every write's rename.
func SetBeforeRename(s *Store, fn func()) { s.beforeRename = fn }
