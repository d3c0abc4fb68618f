//go:build unix

package fsblob_test

import (
	"fmt"
	"testing"

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
