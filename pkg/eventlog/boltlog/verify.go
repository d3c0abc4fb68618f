package boltlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Verify reads the whole file and checks every invariant the store
// relies on: bbolt's own page structure, then for each sheet that its
// entries are dense from its first id to its next id, that every record
// decodes, that the pending and snapshot indexes list exactly the entries
// with those fields set, and that the head names the newest snapshot; and
// that no key belongs to a sheet without a head. It returns a
// StorageError describing the problems found, or nil. It is O(size of the
// file): for tests, and for an operator who suspects the disk.
func (s *Store) Verify(ctx context.Context) error {
	var problems []error
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Errorf(format, args...))
		}
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		problems = nil
		for err := range tx.Check() {
			report("bbolt: %v", err)
		}
		if len(problems) > 0 {
			return nil // the buckets cannot be trusted enough to read on
		}
		heads := map[string]head{}
		err := tx.Bucket(bucketHeads).ForEach(func(k, v []byte) error {
			h, err := decodeHead(v)
			if err != nil {
				report("sheet %s: %v", k, err)
				return nil
			}
			heads[string(k)] = h
			return nil
		})
		if err != nil {
			return err
		}

		// Walk the entries in key order, that is sheet by sheet and id by
		// id, and derive what the indexes and heads must say.
		wantPending := map[string]string{}
		wantSnaps := map[string]bool{}
		newest := map[string]eventlog.SequenceID{}
		seen := map[string]eventlog.SequenceID{} // next expected id per sheet
		err = tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			sheet, id, err := splitKey(k)
			if err != nil {
				report("entries: %v", err)
				return nil
			}
			h, ok := heads[sheet]
			if !ok {
				report("sheet %s: entry %d but no head", sheet, id)
				return nil
			}
			exp, started := seen[sheet]
			if !started {
				exp = h.first
			}
			if id != exp {
				report("sheet %s: entry %d where %d was expected", sheet, id, exp)
			}
			seen[sheet] = id + 1
			if id < h.first || id >= h.next {
				report("sheet %s: entry %d outside [%d, %d)", sheet, id, h.first, h.next)
			}
			_, md, err := decodeRecord(v)
			if err != nil {
				report("sheet %s: entry %d: %v", sheet, id, err)
				return nil
			}
			if md.Pending != "" {
				wantPending[string(k)] = md.Pending
			}
			if md.Snapshot != "" {
				wantSnaps[string(k)] = true
				newest[sheet] = id
			}
			return nil
		})
		if err != nil {
			return err
		}
		for sheet, h := range heads {
			got, started := seen[sheet]
			if !started {
				got = h.first
			}
			if got != h.next {
				report("sheet %s: entries end at %d, the head says next is %d", sheet, got, h.next)
			}
			id, has := newest[sheet]
			if has != h.hasSnap || (has && id != h.snap) {
				report("sheet %s: newest snapshot is %v@%d, the head says %v@%d", sheet, has, id, h.hasSnap, h.snap)
			}
		}
		err = tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			w, ok := wantPending[string(k)]
			switch {
			case !ok:
				report("pending index holds %x, whose entry has no pending workflow", k)
			case w != string(v):
				report("pending index says %q at %x, the entry says %q", v, k, w)
			}
			delete(wantPending, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		for k, w := range wantPending {
			report("pending index misses %x (%q)", k, w)
		}
		err = tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			if !wantSnaps[string(k)] {
				report("snapshot index holds %x, whose entry has no snapshot", k)
			}
			if !bytes.Equal(v, snapshotMark) {
				report("snapshot index value %x at %x", v, k)
			}
			delete(wantSnaps, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		for k := range wantSnaps {
			report("snapshot index misses %x", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return errs.Storage(errors.Join(problems...), "event log file %s fails verification", s.path)
	}
	return nil
}
