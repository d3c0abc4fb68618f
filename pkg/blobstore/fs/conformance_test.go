//go:build unix

package fsblob_test

import (
	"fmt"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/blobstoretest"
	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
)

// TestConformance runs the shared suite with page sizes 1, 2 and the
// default. fsync changes no answer, only durability, so it is on for one
// of them only (page size 2, the one with the most writes per entry).
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		size int
		sync bool
	}{{1, false}, {2, true}, {fsblob.DefaultPageSize, false}} {
		t.Run(fmt.Sprintf("PageSize%d/Sync=%v", c.size, c.sync), func(t *testing.T) {
			blobstoretest.Run(t, func(t *testing.T) blobstore.Store {
				return openAt(t, memDir(t), fsblob.Options{PageSize: c.size, NoSync: !c.sync})
			}, blobstoretest.Options{PageSize: c.size})
		})
	}
}
