//go:build unix

package fsblob

import "os"

// Retries returns how many writes started over because a directory was
// pruned under them.
func Retries(s *Store) int64 { return s.retries.Load() }

// SetBeforeRename makes fn run just before every write's rename.
func SetBeforeRename(s *Store, fn func()) { s.beforeRename = fn }

// DirSyncs returns how many directory fsyncs the store has made.
func DirSyncs(s *Store) int64 { return s.dirSyncs.Load() }

// SetDirSync makes every directory fsync call fn instead of File.Sync.
func SetDirSync(s *Store, fn func(*os.File) error) { s.dirSync = fn }

// SetAfterSyncUp makes fn run after a write's fsyncs, before it records
// the directories it made durable.
func SetAfterSyncUp(s *Store, fn func()) { s.afterSyncUp = fn }

// SyncWaiters returns how many callers are in a directory's group commit.
func SyncWaiters(s *Store) int {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	n := 0
	for _, g := range s.groups {
		n += g.users
	}
	return n
}

// DurableState returns how many sheets and durable directories the store
// keeps records of.
func DurableState(s *Store) (sheets, dirs int) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	for _, st := range s.durable {
		dirs += len(st.durable)
	}
	return len(s.durable), dirs
}
