package s3blob

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/internal/awscost"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// TestCostS3 counts the S3 requests of every blob store operation and
// prints them as a table with -v (make bench-aws, make bench-s3). The
// counts are the client's (internal/awscost), the same on any emulator, so
// the in-process one is enough; they are asserted on every run.
func TestCostS3(t *testing.T) {
	c := newRequestCounter()
	cfg, bucket := gofakes3Bucket(t)
	s := storeOn(t, cfg, bucket, Options{PageSize: DefaultPageSize, ClientOptions: []func(*s3.Options){c.clientOption}})
	root := sheet(t, s, "cost")
	write(t, sheet(t, s, "other"), "x", "from another sheet")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var dir blobstore.BlobDir
	var big, deep blobstore.BlobDir
	steps := []struct {
		op   string
		do   func()
		want string
	}{
		{"Sheet", func() { sheet(t, s, "cost") }, ""},
		{"GetDir", func() { dir = subdir(t, root, "d") }, "HeadObject=1"},
		{"WriteBlob (root)", func() { write(t, root, "r", "1") }, "ListObjectsV2=1 PutObject=1"},
		{"WriteBlob (1 level down)", func() { write(t, dir, "a", "1") }, "HeadObject=1 ListObjectsV2=1 PutObject=1"},
		{"(setup: GetDir d/e)", func() { deep = subdir(t, dir, "e") }, ""},
		{"WriteBlob (2 levels down)", func() { write(t, deep, "a", "1") }, "HeadObject=2 ListObjectsV2=1 PutObject=1"},
		{"ReadBlob", func() { read(t, dir, "a") }, "GetObject=1"},
		{"ReadBlob (missing: 404)", func() { _, err := dir.ReadBlob(ctx, "zz"); _ = err }, "GetObject=1 ListObjectsV2=1"},
		{"ReadBlob (a directory)", func() { _, err := root.ReadBlob(ctx, "d"); _ = err }, "GetObject=1 ListObjectsV2=1"},
		{"GetDir (a blob)", func() { _, err := dir.GetDir(ctx, "a"); _ = err }, "HeadObject=1"},
		{"WriteBlob (a directory)", func() { _ = root.WriteBlob(ctx, "d", nil) }, "ListObjectsV2=1"},
		{"(setup: remove d/e)", func() { must(deep.RemoveAll(ctx)) }, ""},
		{"CopyBlob (same sheet, into root)", func() { must(blobstore.Copy(ctx, root, "b", dir, "a")) }, "CopyObject=1 ListObjectsV2=1"},
		{"CopyBlob (same sheet, 1 level down)", func() { must(blobstore.Copy(ctx, dir, "b", root, "b")) }, "CopyObject=1 HeadObject=1 ListObjectsV2=1"},
		{"Copy (other sheet: read + write)", func() { must(blobstore.Copy(ctx, root, "c", sheet(t, s, "other"), "x")) }, "GetObject=1 ListObjectsV2=1 PutObject=1"},
		{"CopyBlob (missing source)", func() { _ = blobstore.Copy(ctx, root, "b", dir, "zz") }, "CopyObject=1 ListObjectsV2=2"},
		{"RemoveBlob", func() { must(root.RemoveBlob(ctx, "b")) }, "DeleteObject=1 HeadObject=1"},
		{"(setup: remove c)", func() { must(root.RemoveBlob(ctx, "c")) }, ""},
		{"RemoveBlob (missing)", func() { must(root.RemoveBlob(ctx, "b")) }, "HeadObject=1 ListObjectsV2=1"},
		{"Query (one page)", func() { _, err := root.Query(ctx, ""); must(err) }, "ListObjectsV2=1"},
		{"RemoveAll (1 key)", func() { must(dir.RemoveAll(ctx)) }, "DeleteObjects=1 ListObjectsV2=1"},
		{"RemoveAll (empty)", func() { must(dir.RemoveAll(ctx)) }, "ListObjectsV2=1"},
		// Pages and batches of 10 instead of 1000, to stay fast.
		{"(setup: 25 keys)", func() {
			s.pageSize, s.removeBatch = 10, 10
			big = subdir(t, root, "big")
			for i := range 25 {
				write(t, big, fmt.Sprint(i), "")
			}
		}, ""},
		{"Query (25 keys, pages of 10)", func() { listAll(t, big) }, "ListObjectsV2=3"},
		{"RemoveAll (25 keys, batches of 10)", func() { must(big.RemoveAll(ctx)) }, "DeleteObjects=3 ListObjectsV2=3"},
		{"(setup: back to 1000)", func() { s.pageSize, s.removeBatch = DefaultPageSize, maxBatch }, ""},
	}
	tab := &awscost.Table{Title: "S3: requests per blob store operation (counted by the SDK client; pages of 1000)"}
	row := func(name string, u awscost.Usage, note string) {
		tab.Add(awscost.Row{Name: name, Usage: u, Writes: u.Of("PutObject", "CopyObject", "DeleteObject", "DeleteObjects"), Note: note})
	}
	for _, st := range steps {
		c.take()
		st.do()
		u := c.takeUsage()
		if strings.HasPrefix(st.op, "(setup") {
			continue
		}
		if got := usageString(u); got != st.want {
			t.Errorf("%s: %q, want %q", st.op, got, st.want)
		}
		row(st.op, u, "")
	}

	// One snapshot of a sheet with 10 tiles after a change inside one
	// tile, done as the snapshot writer does: list the previous
	// snapshot's tiles, write the changed tile and the index, copy the 9
	// others server-side.
	prev := subdir(t, root, "5", "tiles")
	for i := range 10 {
		write(t, prev, fmt.Sprintf("%d-0-100-100", i*100), "{}")
	}
	c.take()
	prevTiles := subdir(t, root, "5", "tiles")
	next := subdir(t, root, "105")
	nextTiles := subdir(t, next, "tiles")
	p, err := prevTiles.Query(ctx, "")
	must(err)
	must(next.WriteBlob(ctx, "index", []byte("{}")))
	for _, tile := range p.Blobs {
		if tile == "0-0-100-100" {
			must(nextTiles.WriteBlob(ctx, tile, []byte(`{"A1":{"value":1}}`)))
			continue
		}
		must(blobstore.Copy(ctx, nextTiles, tile, prevTiles, tile))
	}
	u := c.takeUsage()
	if got, want := usageString(u), "CopyObject=9 HeadObject=25 ListObjectsV2=12 PutObject=2"; got != want {
		t.Errorf("snapshot of a 1-tile change on a 10-tile sheet: %q, want %q", got, want)
	}
	row("snapshot, 1 of 10 tiles changed", u, "4 GetDir, list old tiles, write tile + index, copy 9 tiles")
	var out strings.Builder
	tab.Print(&out)
	t.Log("\n" + out.String())
}
