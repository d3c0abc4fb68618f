package memory_test

import (
	"fmt"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/blobstoretest"
	"github.com/sheetlog/sheetlog/pkg/blobstore/memory"
)

func TestConformance(t *testing.T) {
	for _, size := range []int{1, 2, 1000} {
		t.Run(fmt.Sprintf("PageSize%d", size), func(t *testing.T) {
			blobstoretest.Run(t, func(*testing.T) blobstore.Store {
				return memory.New(memory.Options{PageSize: size})
			}, blobstoretest.Options{PageSize: size})
		})
	}
}
