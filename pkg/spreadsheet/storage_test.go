// The race detector makes this test's 100,000 edits take over a minute on
// two cores (5 s without), so it is left out of the -race build of make
// test-go and run by make test-storage (in make test) without it.

//go:build !race

package spreadsheet

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// blobBytes sums the sizes of every blob under dir.
func blobBytes(t testing.TB, dir blobstore.BlobDir) int64 {
	t.Helper()
	var n int64
	for _, path := range walk(t, dir, "") {
		b, err := readPath(context.Background(), dir, path)
		if err != nil {
			t.Fatal(err)
		}
		n += int64(len(b))
	}
	return n
}

// TestStorageIsBoundedBySheetSize: 100,000 edits, one a second, to a
// sheet of 40,000 cells (1,000 rows by 40 columns: numbers and short
// strings), written first and then edited at random, with the defaults
// (K = 2, G = 10 minutes, N = 100). Snapshots come every 100 entries and
// each completion is followed by a pass, as in a deployment. Once the
// last grace is over, the blobs take at most 3 times the bytes of one
// snapshot (exactly the newest two remain), and they never took more
// than the snapshots of one grace period and K more.
func TestStorageIsBoundedBySheetSize(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 edits")
	}
	const (
		rows, cols = 1000, 40
		edits      = 100_000
	)
	ctx := context.Background()
	s := newSheet(t, Options{}, 0, 0)
	rng := rand.New(rand.NewPCG(11, 11))
	value := func(i int) cell.Cell {
		if i%2 == 0 {
			return cell.Cell{Value: num(float64(rng.IntN(1_000_000)))}
		}
		return cell.Cell{Value: cell.StringValue("s" + strconv.Itoa(rng.IntN(100_000)))}
	}
	var (
		peak      int64
		peakDirs  int
		snapshots int
	)
	for i := range edits {
		row, col := uint32(i/cols), uint32(i%cols)
		if i >= rows*cols {
			row, col = uint32(rng.IntN(rows)), uint32(rng.IntN(cols))
		}
		res, err := s.host.Append(ctx, eventlog.SequenceID(i), cell.Entry{Row: row, Column: col, Cell: value(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.SnapshotRequested {
			if err := s.worker.RunSnapshot(ctx, res.SequenceID); err != nil {
				t.Fatal(err)
			}
			snapshots++
			if snapshots%50 == 0 {
				peak = max(peak, blobBytes(t, s.root))
				peakDirs = max(peakDirs, len(s.dirs()))
			}
		}
		s.clock.Advance(time.Second)
	}
	// The pass a grace after the last completion (a deployment's timer
	// or delayed message).
	s.clock.Advance(DefaultRetireGrace + statSlack)
	res := s.retire(s.worker)
	total := blobBytes(t, s.root)
	newest := res.Kept[len(res.Kept)-1]
	dir, err := s.root.GetDir(ctx, strconv.FormatUint(uint64(newest), 10))
	if err != nil {
		t.Fatal(err)
	}
	one := blobBytes(t, dir)
	t.Logf("%d edits, %d snapshots: %d bytes of blobs in %v after the last grace, one snapshot %d bytes (%.2fx); peak seen %d bytes in %d directories",
		edits, snapshots, total, s.dirs(), one, float64(total)/float64(one), peak, peakDirs)
	if total > 3*one {
		t.Fatalf("blobs hold %d bytes, more than 3 x one snapshot's %d", total, one)
	}
	if len(res.Kept) != DefaultRetain {
		t.Fatalf("kept %v, want the newest %d", res.Kept, DefaultRetain)
	}
	// One snapshot every 100 s, so a grace of 10 minutes covers 6 of
	// them: at most K + 7 directories at any time.
	if peakDirs > DefaultRetain+7 {
		t.Fatalf("up to %d snapshot directories during the run", peakDirs)
	}
}
