//go:build unix

package fsblob_test

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
)

// A world is a store with traps: next to its directory, a sentinel tree
// ("outside") that nothing may change; in it, a sheet "t" that nothing
// done to other sheets may change; and symbolic links planted in sheet
// "s" (and as the directory of sheet "evil") that point to both.
type world struct {
	base, outside, storeDir string
	store                   *fsblob.Store
	before                  map[string]string
}

// secret marks every byte that a store operation on sheets s and evil
// must never return.
const secret = "SECRET"

// Names of the planted links in sheet s (and of what is there).
var (
	plantedNames = []string{"lnkdir", "lnkfile", "lnkabs", "other", "Up", "d", "lnk", "lnksub", "keep", longLinkName}
	longLinkName = strings.Repeat("é", 100)
)

func newWorld(t testing.TB) *world {
	t.Helper()
	base := memDir(t)
	w := &world{base: base, outside: filepath.Join(base, "outside"), storeDir: filepath.Join(base, "store")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range map[string]string{
		"secret":          secret + " file",
		"zz-outside-only": secret + " 2",
		"sub/deep":        secret + " deep",
		"^up":             secret + " up",
	} {
		must(os.MkdirAll(filepath.Dir(filepath.Join(w.outside, p)), 0o755))
		must(os.WriteFile(filepath.Join(w.outside, p), []byte(content), 0o644))
	}
	must(os.MkdirAll(filepath.Join(w.outside, "empty"), 0o755))
	must(os.Symlink("secret", filepath.Join(w.outside, "link")))

	s, err := fsblob.Open(w.storeDir, fsblob.Options{PageSize: 2, NoSync: true})
	must(err)
	t.Cleanup(func() { s.Close() })
	w.store = s
	write(t, sheet(t, s, "s"), "keep", "keep me")
	write(t, sheet(t, s, "s", "d"), "inner", "inner blob")
	write(t, sheet(t, s, "t"), "zz-t-only", secret+" of sheet t")
	write(t, sheet(t, s, "t", "sub"), "x", secret+" x of sheet t")

	sd := filepath.Join(w.storeDir, "sheets", "s")
	longFirst := strings.SplitN(longPathOf(t), "/", 2)[0]
	for link, target := range map[string]string{
		"lnkdir":   "../../../outside",
		"lnkfile":  "../../../outside/secret",
		"lnkabs":   w.outside,
		"d/lnk":    "../../../../outside",
		"other":    "../t",
		"^up":      "../../../outside/^up",
		longFirst:  "../../../outside",
		"d/^up":    w.outside + "/secret",
		"d/lnksub": "../../t/sub",
	} {
		must(os.Symlink(target, filepath.Join(sd, link)))
	}
	must(os.Symlink("../../outside", filepath.Join(w.storeDir, "sheets", "evil")))
	w.before = w.snapshot(t)
	return w
}

// longPathOf returns where the store keeps longLinkName, relative to the
// sheet's directory, by writing it once in a scratch store.
func longPathOf(t testing.TB) string {
	t.Helper()
	dir := memDir(t)
	s, err := fsblob.Open(dir, fsblob.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write(t, sheet(t, s, "x"), longLinkName, "")
	for p := range files(t, filepath.Join(dir, "sheets", "x")) {
		return p
	}
	t.Fatal("the long name left no file")
	return ""
}

// snapshot describes, byte for byte, everything a store operation on
// sheets s and evil must not change: the tree next to the store, sheet
// t's directory, and the names in the base directory.
func (w *world) snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	top, err := os.ReadDir(w.base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range top {
		names = append(names, e.Name())
	}
	out["<base>"] = strings.Join(names, ",")
	for _, root := range []string{w.outside, filepath.Join(w.storeDir, "sheets", "t")} {
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			desc := fmt.Sprintf("%v %v", fi.Mode(), fi.ModTime().UnixNano())
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				desc += " -> " + target
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				desc += " " + string(b)
			}
			out[p] = desc
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// check fails the test if anything outside the store, or in sheet t,
// changed since newWorld.
func (w *world) check(t testing.TB) {
	t.Helper()
	after := w.snapshot(t)
	if maps.Equal(after, w.before) {
		return
	}
	keys := slices.Sorted(maps.Keys(w.before))
	for k := range after {
		if _, ok := w.before[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if after[k] != w.before[k] {
			t.Errorf("outside the store or in sheet t, %s changed:\n  before: %q\n  after:  %q", k, w.before[k], after[k])
		}
	}
}
