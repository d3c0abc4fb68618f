//go:build unix

package fsblob

import (
	"os"
	"strings"
	"syscall"
)

// A new blob is durable once the entry that names it and the entry of
// every directory above it, up to sheets/, are on disk: each directory
// on the way must have been fsynced after the entry below it was made.
// Doing all of that for every blob costs one fsync per level; this file
// keeps it to about one fsync of the blob's own directory, shared by the
// writers that land there together, without weakening the guarantee.
//
// # Durable directories
//
// A directory is durable when its entry in its parent, and its parent's,
// up to sheets/, were fsynced after they were made. A writer that lands
// in a durable directory only fsyncs that directory; one that lands in a
// new one fsyncs upwards until it meets a durable ancestor (or sheets/),
// then records every level it synced as durable. The records are paths
// (a sheet's directory name and the segments below it), so they must
// never outlive the directory they were made for: a directory removed
// and made again at the same path has an entry nobody synced yet.
//
// The argument. Directories are never renamed, only made (mkdir) and
// removed (rmdir, Root.RemoveAll), and every removal in the package runs
// between beginRemoval and endRemoval, which name its target: the
// directory and everything below it may go. beginRemoval drops the
// records under the target before the first rmdir, and marks every write
// in flight below it as spoiled; a write that starts while a removal
// covering its directory is in flight is spoiled from the start.
//
//   - A record is only added by a write that was not spoiled: no removal
//     touched its directory or any above it from before the write opened
//     the sheet until the record is added. So the directories it synced
//     (by path, after its rename, when all of them existed since its blob
//     was in them) are the ones at those paths when the record is added,
//     and each was synced after the entry below it was made.
//   - A record is dropped before the directory it names can be removed,
//     so while a record exists its path holds the directory it was made
//     for, whose chain is on disk (only a removal takes an entry away).
//   - A writer reads the records after its rename: its blob then pins its
//     directory and every one above it (rmdir only removes an empty
//     directory), so a record it finds is about the very directories its
//     blob is in.
//
// A stale sync cannot make a record: a write whose directory was pruned
// and made again by another writer meanwhile was spoiled by the pruning.
// A removal that fails (the directory was not empty) drops records for
// nothing, which only costs the next writer a few fsyncs; prune checks a
// directory is empty before it tries, so that the common failing prune
// of a RemoveBlob drops nothing. The records cost memory only for
// directories that exist: every removal drops the records below it.
//
// # Group commit
//
// Writers that land in one directory at once share its fsync. A writer
// needs an fsync that started after its rename: it joins the round that
// has not started yet, which runs when the one in flight (if any) ends,
// by whichever of its writers gets there first, and serves all of them.
// A round is keyed by the directory's device and inode, not its path, so
// it never serves a writer whose directory is another one at the same
// path; the inode cannot be reused while a writer holds it open. A writer
// gets the round's error, and also the error of the round that was in
// flight when it arrived (its entry may have been half caught in that
// one): conservative, since a failed fsync of a directory may not be
// reported again. A directory's state goes when it has no writer.

// fileID names a directory for group commit: its device and inode.
type fileID struct{ dev, ino uint64 }

// syncGroup is the group commit of one directory: cur is the fsync in
// flight, next the one its arrivals wait for; users counts the writers
// holding the group, which goes when none does.
type syncGroup struct {
	cur, next *syncRound
	users     int
}

// syncRound is one fsync; err is set before done is closed.
type syncRound struct {
	done chan struct{}
	err  error
}

func (r *syncRound) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// sheetDurability is the state of one sheet's directories (paths are
// joinPath of the segments below the sheet's directory, "." for it).
type sheetDurability struct {
	durable  map[string]struct{}   // directories whose chain is on disk
	writes   map[*placing]struct{} // writes that may add records
	removing map[string]int        // targets of removals in flight
}

// placing is a write in flight to the directory at path.
type placing struct {
	path    string
	spoiled bool // a removal covering path overlapped the write
}

// covers reports whether removing target may remove the directory at path.
func covers(target, path string) bool {
	return target == "." || path == target || strings.HasPrefix(path, target+"/")
}

// sheetState returns the state of the sheet, making it. Call with dmu held.
func (s *Store) sheetState(enc string) *sheetDurability {
	st := s.durable[enc]
	if st == nil {
		st = &sheetDurability{durable: map[string]struct{}{}, writes: map[*placing]struct{}{}, removing: map[string]int{}}
		s.durable[enc] = st
	}
	return st
}

// tidySheet drops the sheet's state when it holds nothing. Call with dmu held.
func (s *Store) tidySheet(enc string, st *sheetDurability) {
	if len(st.durable) == 0 && len(st.writes) == 0 && len(st.removing) == 0 {
		delete(s.durable, enc)
	}
}

// beginPlace registers a write to the directory at segs of the sheet,
// before the write opens anything. Call endPlace when done.
func (s *Store) beginPlace(enc string, segs []string) *placing {
	p := &placing{path: joinPath(segs)}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	st := s.sheetState(enc)
	for t := range st.removing {
		if covers(t, p.path) {
			p.spoiled = true
		}
	}
	st.writes[p] = struct{}{}
	return p
}

// endPlace ends a write, recording the directories at segs[:j], for
// every j in levels, as durable unless a removal spoiled it.
func (s *Store) endPlace(enc string, p *placing, segs []string, levels []int) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	st := s.sheetState(enc)
	if !p.spoiled {
		for _, j := range levels {
			st.durable[joinPath(segs[:j])] = struct{}{}
		}
	}
	delete(st.writes, p)
	s.tidySheet(enc, st)
}

// durableDepth returns the largest j such that the directory at segs[:j]
// of the sheet is durable, or -1. Call it after the rename (see above).
func (s *Store) durableDepth(enc string, segs []string) int {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	st := s.durable[enc]
	if st == nil {
		return -1
	}
	for j := len(segs); j >= 0; j-- {
		if _, ok := st.durable[joinPath(segs[:j])]; ok {
			return j
		}
	}
	return -1
}

// beginRemoval announces that the directory at segs of the sheet, and
// everything below it, may be removed: it drops their records and
// spoils the writes in flight there. Call endRemoval after the last
// rmdir (whether it removed anything or not).
func (s *Store) beginRemoval(enc string, segs []string) {
	t := joinPath(segs)
	s.dmu.Lock()
	defer s.dmu.Unlock()
	st := s.sheetState(enc)
	st.removing[t]++
	for p := range st.durable {
		if covers(t, p) {
			delete(st.durable, p)
		}
	}
	for w := range st.writes {
		if covers(t, w.path) {
			w.spoiled = true
		}
	}
}

func (s *Store) endRemoval(enc string, segs []string) {
	t := joinPath(segs)
	s.dmu.Lock()
	defer s.dmu.Unlock()
	st := s.sheetState(enc)
	if st.removing[t]--; st.removing[t] <= 0 {
		delete(st.removing, t)
	}
	s.tidySheet(enc, st)
}

// removing runs fn, a removal of the directory at segs of the sheet and
// of what is below it, between beginRemoval and endRemoval.
func (s *Store) removing(enc string, segs []string, fn func() error) error {
	s.beginRemoval(enc, segs)
	defer s.endRemoval(enc, segs)
	return fn()
}

// syncDir fsyncs the directory f, sharing the fsync with the callers
// that ask for the same directory at the same time; the fsync that
// serves a caller starts after the call.
func (s *Store) syncDir(f *os.File) error {
	if !s.sync {
		return nil
	}
	id, err := dirID(f)
	if err != nil {
		return err
	}
	s.dmu.Lock()
	g := s.groups[id]
	if g == nil {
		g = &syncGroup{}
		s.groups[id] = g
	}
	g.users++
	r := g.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		g.next = r
	}
	prev := g.cur
	for !r.finished() {
		if g.cur == nil {
			// r has not run (a round is cur until it has finished), so it
			// is still g.next: run it.
			g.cur, g.next = r, nil
			s.dmu.Unlock()
			s.dirSyncs.Add(1)
			if h := s.dirSync; h != nil {
				r.err = h(f)
			} else {
				r.err = f.Sync()
			}
			close(r.done)
			s.dmu.Lock()
			g.cur = nil
			break
		}
		cur := g.cur
		s.dmu.Unlock()
		<-cur.done
		s.dmu.Lock()
	}
	if g.users--; g.users == 0 {
		delete(s.groups, id)
	}
	s.dmu.Unlock()
	if r.err != nil {
		return r.err
	}
	if prev != nil {
		return prev.err // finished: r ran after it
	}
	return nil
}

// dirID returns the device and inode of f.
func dirID(f *os.File) (fileID, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: syscall.ENOTSUP}
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}
