package blobstoretest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// The model test drives a store with random operations on a small
// alphabet of names, so that blobs and directories of one name collide
// often, and compares every answer with a map from path to content.
// Directory handles are cached and reused, so stale handles (whose
// directory a blob has since replaced) are exercised too.

var modelNames = []string{"a", "b", "ab"}

// outcome is a set of acceptable results of one call.
type outcome uint8

const (
	success outcome = 1 << iota
	notFound
	wrongKind
)

func (o outcome) String() string {
	var s []string
	for _, c := range []struct {
		o outcome
		n string
	}{{success, "success"}, {notFound, "404"}, {wrongKind, "BlobWrongKindError"}} {
		if o&c.o != 0 {
			s = append(s, c.n)
		}
	}
	return strings.Join(s, " or ")
}

func classify(err error) (outcome, bool) {
	switch {
	case err == nil:
		return success, true
	case isNotFound(err):
		return notFound, true
	case isWrongKind(err):
		return wrongKind, true
	}
	return 0, false
}

type model struct {
	t      *rapid.T
	ctx    context.Context
	store  blobstore.Store
	pageSz int
	sheets [2]string
	blobs  [2]map[string]string // path "a/b/c" -> content
	// handles caches directory handles by sheet and path; some go stale.
	handles map[string]cachedHandle
}

type cachedHandle struct {
	s    int
	path []string
	d    blobstore.BlobDir
}

func join(path []string, name string) string {
	return strings.Join(append(slices.Clip(path), name), "/")
}

func (m *model) isBlob(s int, p string) bool { _, ok := m.blobs[s][p]; return ok }

func (m *model) isDir(s int, p string) bool {
	for k := range m.blobs[s] {
		if p == "" || strings.HasPrefix(k, p+"/") {
			return true
		}
	}
	return false
}

// stale reports whether a blob stands where path, or a directory above
// it, should be.
func (m *model) stale(s int, path []string) bool {
	for i := range path {
		if m.isBlob(s, strings.Join(path[:i+1], "/")) {
			return true
		}
	}
	return false
}

func (m *model) check(what string, err error, want outcome) outcome {
	m.t.Helper()
	got, known := classify(err)
	if !known || got&want == 0 {
		m.t.Fatalf("%s: %v, want %v", what, err, want)
	}
	return got
}

func (m *model) root(s int) blobstore.BlobDir {
	d, err := m.store.Sheet(m.sheets[s])
	if err != nil {
		m.t.Fatalf("Sheet(%q): %v", m.sheets[s], err)
	}
	return d
}

// handle draws a directory and returns a handle to it: a cached one, or a
// fresh walk from the root. A fresh walk that meets a blob checks that
// GetDir refuses it and returns nil.
func (m *model) handle(label string) (int, []string, blobstore.BlobDir) {
	return m.handleIn(rapid.IntRange(0, 1).Draw(m.t, label+" sheet"), label)
}

func (m *model) handleIn(s int, label string) (int, []string, blobstore.BlobDir) {
	// A third of the time, reuse any handle cached for the sheet, which
	// may have gone stale since.
	var cached []string
	for k, h := range m.handles {
		if h.s == s {
			cached = append(cached, k)
		}
	}
	if len(cached) > 0 && rapid.IntRange(0, 2).Draw(m.t, label+" reuse a handle") == 0 {
		slices.Sort(cached)
		h := m.handles[rapid.SampledFrom(cached).Draw(m.t, label+" handle")]
		return h.s, h.path, h.d
	}
	path := rapid.SliceOfN(rapid.SampledFrom(modelNames), 0, 2).Draw(m.t, label+" dir")
	d := m.root(s)
	for i, name := range path {
		sub, err := d.GetDir(m.ctx, name)
		p := strings.Join(path[:i+1], "/")
		if m.isBlob(s, p) {
			m.check("GetDir("+p+") of a blob", err, wrongKind)
			return s, path, nil
		}
		m.check("GetDir("+p+")", err, success)
		d = sub
	}
	m.handles[fmt.Sprint(s, path)] = cachedHandle{s, path, d}
	return s, path, d
}

func (m *model) write() {
	s, path, d := m.handle("write")
	if d == nil {
		return
	}
	name := rapid.SampledFrom(modelNames).Draw(m.t, "name")
	data := rapid.StringN(0, 6, -1).Draw(m.t, "data")
	p := join(path, name)
	err := d.WriteBlob(m.ctx, name, []byte(data))
	switch {
	case m.stale(s, path):
		m.check("WriteBlob("+p+") through a stale handle", err, wrongKind)
	case m.isDir(s, p):
		m.check("WriteBlob("+p+") of a directory", err, wrongKind)
	default:
		m.check("WriteBlob("+p+")", err, success)
		m.blobs[s][p] = data
	}
}

// readOutcome is what reading path/name should give.
func (m *model) readOutcome(s int, path []string, name string) outcome {
	p := join(path, name)
	switch {
	case m.stale(s, path):
		return wrongKind | notFound
	case m.isDir(s, p):
		return wrongKind
	case m.isBlob(s, p):
		return success
	}
	return notFound
}

func (m *model) read() {
	s, path, d := m.handle("read")
	if d == nil {
		return
	}
	name := rapid.SampledFrom(modelNames).Draw(m.t, "name")
	p := join(path, name)
	b, err := d.ReadBlob(m.ctx, name)
	if m.check("ReadBlob("+p+")", err, m.readOutcome(s, path, name)) == success && string(b) != m.blobs[s][p] {
		m.t.Fatalf("ReadBlob(%s) = %q, want %q", p, b, m.blobs[s][p])
	}
}

func (m *model) remove() {
	s, path, d := m.handle("remove")
	if d == nil {
		return
	}
	name := rapid.SampledFrom(modelNames).Draw(m.t, "name")
	p := join(path, name)
	err := d.RemoveBlob(m.ctx, name)
	switch {
	case m.stale(s, path):
		m.check("RemoveBlob("+p+") through a stale handle", err, success|wrongKind)
	case m.isDir(s, p):
		m.check("RemoveBlob("+p+") of a directory", err, wrongKind)
	default:
		m.check("RemoveBlob("+p+")", err, success)
		delete(m.blobs[s], p)
	}
}

func (m *model) getDir() {
	s, path, d := m.handle("getdir")
	if d == nil {
		return
	}
	name := rapid.SampledFrom(modelNames).Draw(m.t, "name")
	p := join(path, name)
	sub, err := d.GetDir(m.ctx, name)
	switch {
	case m.stale(s, path):
		m.check("GetDir("+p+") through a stale handle", err, success|wrongKind)
	case m.isBlob(s, p):
		m.check("GetDir("+p+") of a blob", err, wrongKind)
	default:
		m.check("GetDir("+p+")", err, success)
		subPath := append(slices.Clip(path), name)
		m.handles[fmt.Sprint(s, subPath)] = cachedHandle{s, subPath, sub}
	}
}

func (m *model) removeAll() {
	s, path, d := m.handle("removeall")
	if d == nil {
		return
	}
	err := d.RemoveAll(m.ctx)
	p := strings.Join(path, "/")
	if m.stale(s, path) {
		m.check("RemoveAll(/"+p+") through a stale handle", err, success|wrongKind)
		return
	}
	m.check("RemoveAll(/"+p+")", err, success)
	maps.DeleteFunc(m.blobs[s], func(k, _ string) bool { return p == "" || strings.HasPrefix(k, p+"/") })
}

func (m *model) query() {
	s, path, d := m.handle("query")
	if d == nil {
		return
	}
	p := strings.Join(path, "/")
	blobs, dirs, err := listAll(m.t, m.ctx, d, m.pageSz)
	if m.stale(s, path) {
		if m.check("Query(/"+p+") through a stale handle", err, success|wrongKind) == success && len(blobs)+len(dirs) > 0 {
			m.t.Fatalf("Query(/%s) through a stale handle listed %q and %q, want nothing", p, blobs, dirs)
		}
		return
	}
	m.check("Query(/"+p+")", err, success)
	wantBlobs, wantDirs := m.children(s, p)
	if !slices.Equal(blobs, wantBlobs) || !slices.Equal(dirs, wantDirs) {
		m.t.Fatalf("Query(/%s) = blobs %q dirs %q, want blobs %q dirs %q", p, blobs, dirs, wantBlobs, wantDirs)
	}
}

// children lists the model's blobs and non-empty directories directly in p.
func (m *model) children(s int, p string) (blobs, dirs []string) {
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	for k := range m.blobs[s] {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if name, _, deeper := strings.Cut(rest, "/"); deeper {
			if !seen[name] {
				seen[name] = true
				dirs = append(dirs, name)
			}
		} else {
			blobs = append(blobs, name)
		}
	}
	slices.Sort(blobs)
	slices.Sort(dirs)
	return blobs, dirs
}

func (m *model) copyBlob() {
	ds, dpath, dst := m.handle("copy dst")
	if dst == nil {
		return
	}
	ss, spath, src := m.handleIn(ds, "copy src")
	if src == nil {
		return
	}
	dname := rapid.SampledFrom(modelNames).Draw(m.t, "dst name")
	sname := rapid.SampledFrom(modelNames).Draw(m.t, "src name")
	way := rapid.IntRange(0, len(copyPaths)-1).Draw(m.t, "copy path")
	dp, sp := join(dpath, dname), join(spath, sname)
	d, sd := copyPaths[way].wrap(dst, src)
	err := blobstore.Copy(m.ctx, d, dname, sd, sname)
	read := m.readOutcome(ss, spath, sname)
	write := success
	if m.stale(ds, dpath) || m.isDir(ds, dp) {
		write = wrongKind
	}
	what := fmt.Sprintf("Copy(%s <- %s) by %s", dp, sp, copyPaths[way].name)
	switch {
	case read == success && write == success:
		m.check(what, err, success)
		m.blobs[ds][dp] = m.blobs[ss][sp]
	case read == success:
		m.check(what, err, write)
	case write == success:
		m.check(what, err, read)
	default:
		m.check(what, err, (read|write)&^success)
	}
}

// checkAll compares the whole tree of both sheets with the model.
func (m *model) checkAll() {
	for s := range m.sheets {
		got, err := snapshotOf(m.t, m.ctx, m.root(s), m.pageSz)
		if err != nil {
			m.t.Fatalf("walking sheet %s: %v", m.sheets[s], err)
		}
		if diff := diffMaps(got, m.blobs[s]); diff != "" {
			m.t.Fatalf("sheet %s differs from the model (got vs want):\n%s", m.sheets[s], diff)
		}
	}
}

func runModel(t *testing.T, f *fixture) {
	var seq atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		n := seq.Add(1)
		// Fresh sheets for every run; the second id extends the first,
		// which catches key prefixes that are not delimited.
		m := &model{
			t: rt, ctx: f.ctx, store: f.store, pageSz: f.pageSize,
			sheets:  [2]string{fmt.Sprintf("m%d", n), fmt.Sprintf("m%d0", n)},
			blobs:   [2]map[string]string{{}, {}},
			handles: map[string]cachedHandle{},
		}
		defer func() {
			for s := range m.sheets {
				if err := m.root(s).RemoveAll(f.ctx); err != nil {
					rt.Errorf("cleaning up sheet %s: %v", m.sheets[s], err)
				}
			}
		}()
		rt.Repeat(map[string]func(*rapid.T){
			"write":     func(*rapid.T) { m.write() },
			"read":      func(*rapid.T) { m.read() },
			"remove":    func(*rapid.T) { m.remove() },
			"getdir":    func(*rapid.T) { m.getDir() },
			"removeall": func(*rapid.T) { m.removeAll() },
			"query":     func(*rapid.T) { m.query() },
			"copy":      func(*rapid.T) { m.copyBlob() },
		})
		m.checkAll()
	})
}
