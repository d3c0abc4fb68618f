//go:build unix

package fsblob_test

import (
	"fmt"
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
// with fsync.
func BenchmarkCopyBlob(b *testing.B) {
	s := openAt(b, diskDir(b), fsblob.Options{})
	src, dst := sheet(b, s, "bench", "snap", "41"), sheet(b, s, "bench", "snap", "42")
	write(b, src, "x", string(make([]byte, 1<<20)))
	b.ResetTimer()
	for i := range b.N {
		if err := blobstore.Copy(b.Context(), dst, fmt.Sprint(i%100), src, "x"); err != nil {
			b.Fatal(err)
		}
	}
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
