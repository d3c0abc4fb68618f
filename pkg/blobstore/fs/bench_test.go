//go:build unix

package fsblob_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"

	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
)

// BenchmarkWriteBlob writes 4 KiB blobs two directories deep, with and
// without fsync.
func BenchmarkWriteBlob(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("NoSync=%v", noSync), func(b *testing.B) {
			s := openAt(b, diskDir(b), fsblob.Options{NoSync: noSync})
			root, _ := s.Sheet("bench")
			d, _ := root.GetDir(b.Context(), "snap")
			d, _ = d.GetDir(b.Context(), "42")
			data := make([]byte, 4096)
			b.ResetTimer()
			for i := range b.N {
				if err := d.WriteBlob(b.Context(), fmt.Sprint(i%100), data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadBlob reads a 4 KiB blob two directories deep.
func BenchmarkReadBlob(b *testing.B) {
	s := openAt(b, diskDir(b), fsblob.Options{NoSync: true})
	d := sheet(b, s, "bench", "snap", "42")
	write(b, d, "x", string(make([]byte, 4096)))
	b.ResetTimer()
	for range b.N {
		if _, err := d.ReadBlob(b.Context(), "x"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopyBlob copies a 1 MiB blob within a sheet (a hard link),
// with fsync, one at a time: dirsyncs/op is the directory fsyncs a copy
// costs.
func BenchmarkCopyBlob(b *testing.B) {
	s := openAt(b, diskDir(b), fsblob.Options{})
	src, dst := sheet(b, s, "bench", "snap", "41"), sheet(b, s, "bench", "snap", "42")
	write(b, src, "x", string(make([]byte, 1<<20)))
	syncs := fsblob.DirSyncs(s)
	b.ResetTimer()
	for i := range b.N {
		if err := blobstore.Copy(b.Context(), dst, fmt.Sprint(i%100), src, "x"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fsblob.DirSyncs(s)-syncs)/float64(b.N), "dirsyncs/op")
}

// BenchmarkSnapshotCopies is the blob side of a snapshot that changed
// nothing: an op copies 100 tiles into a new directory <seq>/tiles, 8 at
// a time (the engine's WriteConcurrency), with fsync, then removes the
// snapshot 3 before it (retention). dirsyncs/blob is the directory
// fsyncs per copied tile.
func BenchmarkSnapshotCopies(b *testing.B) {
	const tiles, workers, keep = 100, 8, 3
	s := openAt(b, diskDir(b), fsblob.Options{})
	names := make([]string, tiles)
	src := sheet(b, s, "bench", "0", "tiles")
	for i := range names {
		names[i] = fmt.Sprintf("%d-0-100-100", i*100)
		write(b, src, names[i], string(make([]byte, 4096)))
	}
	syncs := fsblob.DirSyncs(s)
	b.ResetTimer()
	for op := range b.N {
		seq := op + 1
		dst := sheet(b, s, "bench", fmt.Sprint(seq), "tiles")
		var next atomic.Int64
		var g sync.WaitGroup
		for range workers {
			g.Go(func() {
				for i := next.Add(1) - 1; i < tiles; i = next.Add(1) - 1 {
					if err := blobstore.Copy(b.Context(), dst, names[i], src, names[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		g.Wait()
		if old := seq - keep; old > 0 {
			if err := sheet(b, s, "bench", fmt.Sprint(old)).RemoveAll(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(fsblob.DirSyncs(s)-syncs)/float64(b.N*tiles), "dirsyncs/blob")
	b.ReportMetric(float64(b.N*tiles)/b.Elapsed().Seconds(), "blobs/s")
}

// BenchmarkQuery lists a directory of 1,000 blobs and 100 directories,
// in pages of 1,000.
func BenchmarkQuery(b *testing.B) {
	s := openAt(b, memDir(b), fsblob.Options{NoSync: true})
	d := sheet(b, s, "bench", "tiles")
	for i := range 1000 {
		write(b, d, fmt.Sprintf("0-%d-100-100", i*100), "t")
	}
	for i := range 100 {
		write(b, sheet(b, s, "bench", "tiles", fmt.Sprint("d", i)), "x", "t")
	}
	b.ResetTimer()
	for range b.N {
		if blobs, dirs := list(b, d); len(blobs) != 1000 || len(dirs) != 100 {
			b.Fatalf("listed %d blobs and %d directories", len(blobs), len(dirs))
		}
	}
}
