package blobstoretest

import (
	"fmt"
	"maps"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// isolationSheets have ids that are prefixes of each other or differ only
// in case, to catch key-prefix and case-folding mistakes.
var isolationSheets = []string{"iso", "iso0", "ISO", "iso.d", "iso-", "i"}

// seedSheets writes the same paths, with contents naming the sheet, into
// every sheet, and returns what each should hold.
func (f *fixture) seedSheets(ids []string) map[string]map[string]string {
	f.t.Helper()
	want := map[string]map[string]string{}
	for _, id := range ids {
		want[id] = map[string]string{}
		for _, p := range []string{"x", "d/x", "d/e/x", "iso/x", "i/x"} {
			f.writeAt(f.sheet(id), p, id+":"+p)
			want[id][p] = id + ":" + p
		}
	}
	return want
}

func (f *fixture) wantSheets(want map[string]map[string]string, after string) {
	f.t.Helper()
	for id, w := range want {
		f.wantSnapshot(f.sheet(id), w, "sheet "+id+" after "+after)
	}
}

var isolationTests = []test{
	{"SheetsDoNotShareBlobs", func(t *testing.T, f *fixture) {
		want := f.seedSheets(isolationSheets)
		f.wantSheets(want, "writing the same paths in every sheet")
		f.wantList(f.sheet("iso-x"), nil, nil)
	}},
	{"WriteAndRemoveStayInTheirSheet", func(t *testing.T, f *fixture) {
		want := f.seedSheets(isolationSheets)
		for _, id := range isolationSheets {
			root := f.sheet(id)
			f.write(root, "x", "changed "+id)
			f.writeAt(root, "d/new", "new "+id)
			if err := f.dir(root, "d", "e").RemoveBlob(f.ctx, "x"); err != nil {
				t.Fatal(err)
			}
			want[id]["x"] = "changed " + id
			want[id]["d/new"] = "new " + id
			delete(want[id], "d/e/x")
			f.wantSheets(want, "changes in sheet "+id)
		}
	}},
	{"RemoveAllStaysInItsSheet", func(t *testing.T, f *fixture) {
		want := f.seedSheets(isolationSheets)
		for _, id := range isolationSheets {
			if err := f.dir(f.sheet(id), "d").RemoveAll(f.ctx); err != nil {
				t.Fatal(err)
			}
			maps.DeleteFunc(want[id], func(p string, _ string) bool { return len(p) > 2 && p[:2] == "d/" })
			f.wantSheets(want, "RemoveAll of /d in sheet "+id)
		}
		for _, id := range isolationSheets {
			if err := f.sheet(id).RemoveAll(f.ctx); err != nil {
				t.Fatal(err)
			}
			want[id] = map[string]string{}
			f.wantSheets(want, "RemoveAll of the root of sheet "+id)
		}
	}},
}

var removeAllTests = []test{
	{"SubdirectoryAndNothingElse", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		want := map[string]string{}
		for _, p := range []string{
			"a/x", "a/y/z", "a/y/w/v", // removed
			"ab/x", "a.b/x", "a-/x", "aa", "a0", "b/a/x", "b/a0", "ab0/a/x", // survive: names with prefix "a", and "a" elsewhere
		} {
			f.writeAt(root, p, "content of "+p)
			want[p] = "content of " + p
		}
		if err := f.dir(root, "a").RemoveAll(f.ctx); err != nil {
			t.Fatalf("RemoveAll: %v", err)
		}
		for p := range want {
			if len(p) > 2 && p[:2] == "a/" {
				delete(want, p)
			}
		}
		f.wantSnapshot(root, want, "RemoveAll of /a")
		f.wantList(f.dir(root, "a"), nil, nil)
	}},
	{"NestedSubdirectory", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "a/x", "1")
		f.writeAt(root, "a/y/z", "2")
		f.writeAt(root, "a/yy/z", "3")
		if err := f.dir(root, "a", "y").RemoveAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.wantSnapshot(root, map[string]string{"a/x": "1", "a/yy/z": "3"}, "RemoveAll of /a/y")
		if err := f.dir(root, "a").RemoveBlob(f.ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if err := f.dir(root, "a", "yy").RemoveAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.wantList(root, nil, nil) // a emptied, so it is gone too
	}},
	{"Root", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "x", "1")
		f.writeAt(root, "d/e/f", "2")
		f.writeAt(f.sheet("s0"), "x", "other sheet")
		if err := root.RemoveAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.wantList(root, nil, nil)
		f.wantList(f.sheet("s"), nil, nil)
		f.wantMissing(root, "x")
		f.wantSnapshot(f.sheet("s0"), map[string]string{"x": "other sheet"}, "the other sheet")
		f.writeAt(root, "d/again", "3")
		f.wantSnapshot(f.sheet("s"), map[string]string{"d/again": "3"}, "writing after RemoveAll of the root")
	}},
	{"UsableAfterwards", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		d := f.dir(root, "d")
		f.writeAt(d, "e/x", "1")
		f.write(d, "y", "2")
		if err := d.RemoveAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.wantList(d, nil, nil)
		f.wantMissing(d, "y")
		if err := d.RemoveAll(f.ctx); err != nil {
			t.Errorf("RemoveAll of an empty directory: %v", err)
		}
		f.write(d, "y", "again")
		f.writeAt(d, "e/x", "again")
		f.wantSnapshot(root, map[string]string{"d/y": "again", "d/e/x": "again"}, "writing after RemoveAll")
		f.wantList(root, nil, []string{"d"})
	}},
	{"NeverWrittenDirectory", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		f.writeAt(root, "ghost0/x", "1")
		f.writeAt(root, "ghos", "2")
		for _, d := range []blobstore.BlobDir{f.dir(root, "ghost"), f.dir(root, "ghost", "deeper"), f.sheet("empty")} {
			if err := d.RemoveAll(f.ctx); err != nil {
				t.Errorf("RemoveAll of a directory never written: %v", err)
			}
		}
		f.wantSnapshot(root, map[string]string{"ghost0/x": "1", "ghos": "2"}, "RemoveAll of never-written directories")
	}},
	{"ManyPagesOfContent", func(t *testing.T, f *fixture) {
		// Stores that delete in batches (S3 DeleteObjects) must not stop
		// after the first batch.
		root := f.sheet("s")
		d := f.dir(root, "d")
		f.fill(d, "b", 2*f.pageSize+1)
		for i := range f.pageSize + 1 {
			f.fill(f.dir(d, "sub", fmt.Sprintf("s%04d", i)), "c", 2)
		}
		f.write(root, "keep", "k")
		if err := d.RemoveAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.wantSnapshot(root, map[string]string{"keep": "k"}, "RemoveAll of a large directory")
	}},
}
