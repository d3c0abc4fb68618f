// Package blobstoretest is the conformance suite of the blob store
// contract (package blobstore). Every implementation runs it from its own
// tests:
//
//	func TestConformance(t *testing.T) {
//		blobstoretest.Run(t, func(t *testing.T) blobstore.Store {
//			return newStoreWithPageSize(t, 3)
//		}, blobstoretest.Options{PageSize: 3})
//	}
//
// The suite relies only on the contract: not on token formats, the order of
// a listing, page boundaries or timing. Where the contract allows two
// behaviours (repeating a continuation token; reading through a stale
// directory handle) it accepts both.
//
// Decisions the contract leaves implicit, which the suite enforces for
// every store:
//
//   - A name is never both a blob and a directory in one parent. Writing a
//     blob through a directory handle whose directory (or an ancestor) has
//     since been replaced by a blob fails with *errs.BlobWrongKindError and
//     writes nothing; removing through such a handle never removes the
//     blob.
//   - A Query page holds at most PageSize entries (blobs plus directories),
//     and a page that carries a continuation token is followed by at least
//     one more entry ("a reply with a continuation token means more
//     remain").
//   - Copier.CopyBlob never crosses a sheet: a source in another sheet gets
//     blobstore.ErrCopyUnsupported (then blobstore.Copy falls back to read
//     and write, through the handles the caller already holds). A source
//     whose type the store does not know gets ErrCopyUnsupported too.
//   - A cancelled context fails every call that reads or changes data, with
//     an error matching context.Canceled, and changes nothing.
//
// The property test (subtest "Model") runs rapid with its usual flags:
// -rapid.checks (default 100) and -rapid.steps, or RAPID_CHECKS and
// RAPID_STEPS in the environment.
package blobstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// Options describes the stores made by the factory passed to Run.
type Options struct {
	// PageSize is the largest number of entries (blobs plus directories)
	// the stores return in one Query page. It is required. The suite
	// writes a few times this many entries to force several pages, so
	// configure the stores under test with a small page size (1 to 10);
	// a large one makes the suite slow.
	PageSize int
	// Unaddressable, when set, reports the valid names the stores hold
	// but cannot address: a store over the HTTP API (pkg/client) refuses
	// the names of blobstore.APIUnaddressable. The name tests then expect
	// ReadBlob and GetDir of such a name to fail with an
	// InvalidBlobNameError, and listings to leave it out (the suite may
	// still write it: a store whose writes go elsewhere holds it), instead
	// of a round trip.
	Unaddressable func(name string) bool
}

// Run runs the conformance suite. newStore must return a fresh, empty store
// (or a fresh namespace of a shared backend) on every call, and clean it up
// with t.Cleanup if needed; each subtest calls it at least once.
func Run(t *testing.T, newStore func(t *testing.T) blobstore.Store, opts Options) {
	if opts.PageSize <= 0 {
		t.Fatalf("blobstoretest: Options.PageSize must be the stores' Query page size, got %d", opts.PageSize)
	}
	s := &suite{newStore: newStore, pageSize: opts.PageSize, unaddressable: opts.Unaddressable}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Sheet", sheetTests},
		{"Names", nameTests},
		{"Blobs", blobTests},
		{"WrongKind", wrongKindTests},
		{"Dirs", dirTests},
		{"Query", queryTests},
		{"Isolation", isolationTests},
		{"RemoveAll", removeAllTests},
		{"Copy", copyTests},
		{"Context", contextTests},
		{"Concurrency", concurrencyTests},
		{"Optional", optionalTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, s.fixture(t)) })
			}
		})
	}
	t.Run("Model", func(t *testing.T) { runModel(t, s.fixture(t)) })
}

type suite struct {
	newStore      func(t *testing.T) blobstore.Store
	pageSize      int
	unaddressable func(name string) bool
}

// addressable splits names into those the stores address and those they
// cannot (Options.Unaddressable).
func (s *suite) addressable(names []string) (ok, not []string) {
	for _, n := range names {
		if s.unaddressable != nil && s.unaddressable(n) {
			not = append(not, n)
		} else {
			ok = append(ok, n)
		}
	}
	return ok, not
}

// wantUnaddressable checks that d refuses names it cannot address, each
// with an InvalidBlobNameError, on a read and on GetDir. The caller has
// tried to write each (a store may hold them, written by another route)
// and checks that listings leave them out.
func (f *fixture) wantUnaddressable(d blobstore.BlobDir, names []string) {
	f.t.Helper()
	for _, n := range names {
		if _, err := d.ReadBlob(f.ctx, n); !isInvalidName(err) {
			f.t.Errorf("ReadBlob(%q) of an unaddressable name: %v, want an InvalidBlobNameError", n, err)
		}
		if _, err := d.GetDir(f.ctx, n); !isInvalidName(err) {
			f.t.Errorf("GetDir(%q) of an unaddressable name: %v, want an InvalidBlobNameError", n, err)
		}
	}
}

type test struct {
	name string
	run  func(t *testing.T, f *fixture)
}

// fixture is one subtest's store and helpers that fail the test on any
// unexpected error.
type fixture struct {
	t        *testing.T
	s        *suite
	ctx      context.Context
	store    blobstore.Store
	pageSize int
}

func (s *suite) fixture(t *testing.T) *fixture {
	store := s.newStore(t)
	if store == nil {
		t.Fatal("blobstoretest: the factory returned a nil store")
	}
	return &fixture{t: t, s: s, ctx: t.Context(), store: store, pageSize: s.pageSize}
}

// with returns a copy of f for the subtest t.
func (f *fixture) with(t *testing.T) *fixture {
	g := *f
	g.t, g.ctx = t, t.Context()
	return &g
}

// otherStore returns a second fresh store from the factory.
func (f *fixture) otherStore() blobstore.Store {
	f.t.Helper()
	st := f.s.newStore(f.t)
	if st == nil {
		f.t.Fatal("blobstoretest: the factory returned a nil store")
	}
	return st
}

func (f *fixture) sheet(id string) blobstore.BlobDir { return f.sheetOf(f.store, id) }

func (f *fixture) sheetOf(st blobstore.Store, id string) blobstore.BlobDir {
	f.t.Helper()
	d, err := st.Sheet(id)
	if err != nil {
		f.t.Fatalf("Sheet(%q): %v", id, err)
	}
	if d == nil {
		f.t.Fatalf("Sheet(%q) returned a nil directory", id)
	}
	return d
}

// dir walks GetDir from d through names.
func (f *fixture) dir(d blobstore.BlobDir, names ...string) blobstore.BlobDir {
	f.t.Helper()
	for i, n := range names {
		sub, err := d.GetDir(f.ctx, n)
		if err != nil {
			f.t.Fatalf("GetDir(%q) at %s: %v", n, strings.Join(names[:i+1], "/"), err)
		}
		if sub == nil {
			f.t.Fatalf("GetDir(%q) returned a nil directory", n)
		}
		d = sub
	}
	return d
}

func (f *fixture) write(d blobstore.BlobDir, name string, data string) {
	f.t.Helper()
	if err := d.WriteBlob(f.ctx, name, []byte(data)); err != nil {
		f.t.Fatalf("WriteBlob(%q): %v", name, err)
	}
}

// writeAt writes data to path (dirs then the blob name) under d.
func (f *fixture) writeAt(d blobstore.BlobDir, path string, data string) {
	f.t.Helper()
	names := strings.Split(path, "/")
	f.write(f.dir(d, names[:len(names)-1]...), names[len(names)-1], data)
}

func (f *fixture) read(d blobstore.BlobDir, name string) string {
	f.t.Helper()
	b, err := d.ReadBlob(f.ctx, name)
	if err != nil {
		f.t.Fatalf("ReadBlob(%q): %v", name, err)
	}
	return string(b)
}

func (f *fixture) wantBlob(d blobstore.BlobDir, name string, want string) {
	f.t.Helper()
	b, err := d.ReadBlob(f.ctx, name)
	if err != nil {
		f.t.Errorf("ReadBlob(%q): %v, want %s", name, err, short(want))
		return
	}
	if string(b) != want {
		f.t.Errorf("ReadBlob(%q) = %s, want %s", name, short(string(b)), short(want))
	}
}

func (f *fixture) wantMissing(d blobstore.BlobDir, name string) {
	f.t.Helper()
	_, err := d.ReadBlob(f.ctx, name)
	if !isNotFound(err) {
		f.t.Errorf("ReadBlob(%q) of a missing blob: %v, want a StorageError with status 404", name, err)
	}
}

// list walks every page of d's listing; see listAll.
func (f *fixture) list(d blobstore.BlobDir) (blobs, dirs []string) {
	f.t.Helper()
	blobs, dirs, err := listAll(f.t, f.ctx, d, f.pageSize)
	if err != nil {
		f.t.Fatalf("Query: %v", err)
	}
	return blobs, dirs
}

func (f *fixture) wantList(d blobstore.BlobDir, wantBlobs, wantDirs []string) {
	f.t.Helper()
	blobs, dirs := f.list(d)
	wantBlobs, wantDirs = sorted(wantBlobs), sorted(wantDirs)
	if d := diffNames(blobs, wantBlobs); d != "" {
		f.t.Errorf("Query listed the wrong blobs: %s", d)
	}
	if d := diffNames(dirs, wantDirs); d != "" {
		f.t.Errorf("Query listed the wrong directories: %s", d)
	}
}

// snapshot returns every blob under d, by "/"-joined path.
func (f *fixture) snapshot(d blobstore.BlobDir) map[string]string {
	f.t.Helper()
	out, err := snapshotOf(f.t, f.ctx, d, f.pageSize)
	if err != nil {
		f.t.Fatalf("walking the tree: %v", err)
	}
	return out
}

// snapshotOf walks the tree under d and returns every blob by
// "/"-joined path.
func snapshotOf(t tb, ctx context.Context, d blobstore.BlobDir, pageSize int) (map[string]string, error) {
	t.Helper()
	out := map[string]string{}
	var walk func(d blobstore.BlobDir, prefix string) error
	walk = func(d blobstore.BlobDir, prefix string) error {
		blobs, dirs, err := listAll(t, ctx, d, pageSize)
		if err != nil {
			return fmt.Errorf("Query(/%s): %w", prefix, err)
		}
		for _, b := range blobs {
			data, err := d.ReadBlob(ctx, b)
			if err != nil {
				return fmt.Errorf("ReadBlob(%s%s), listed by Query: %w", prefix, b, err)
			}
			out[prefix+b] = string(data)
		}
		for _, name := range dirs {
			sub, err := d.GetDir(ctx, name)
			if err != nil {
				return fmt.Errorf("GetDir(%s%s), listed by Query: %w", prefix, name, err)
			}
			if err := walk(sub, prefix+name+"/"); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(d, "")
}

func (f *fixture) wantSnapshot(d blobstore.BlobDir, want map[string]string, what string) {
	f.t.Helper()
	got := f.snapshot(d)
	if diff := diffMaps(got, want); diff != "" {
		f.t.Errorf("%s: contents differ (got vs want):\n%s", what, diff)
	}
}

// tb is what listAll needs from *testing.T and *rapid.T.
type tb interface {
	Helper()
	Errorf(format string, args ...any)
}

// listAll walks every page of d's listing and returns the sorted names.
// It reports contract violations through t: a page larger than pageSize,
// a name listed twice or as both kinds, an invalid name, a continuation
// token followed by nothing, or a token that never ends. The error is the
// first Query error.
func listAll(t tb, ctx context.Context, d blobstore.BlobDir, pageSize int) (blobs, dirs []string, err error) {
	t.Helper()
	seen := map[string]string{}
	token := ""
	for pages := 1; ; pages++ {
		var p blobstore.Page
		p, err = query(ctx, d, token)
		if err != nil {
			return nil, nil, err
		}
		if n := len(p.Blobs) + len(p.Dirs); n > pageSize {
			t.Errorf("Query page %d holds %d entries, more than the page size %d", pages, n, pageSize)
		}
		for _, pair := range []struct {
			kind  string
			names []string
		}{{"blob", p.Blobs}, {"directory", p.Dirs}} {
			for _, n := range pair.names {
				if err := blobstore.ValidateName(n); err != nil {
					t.Errorf("Query listed an invalid name: %v", err)
				}
				if prev, dup := seen[n]; dup {
					t.Errorf("Query listed %q twice (as %s, then as %s)", n, prev, pair.kind)
					continue
				}
				seen[n] = pair.kind
				if pair.kind == "blob" {
					blobs = append(blobs, n)
				} else {
					dirs = append(dirs, n)
				}
			}
		}
		if p.Continuation == "" {
			if pages > 1 && len(p.Blobs)+len(p.Dirs) == 0 {
				t.Errorf("Query returned a continuation token on page %d although nothing remained", pages-1)
			}
			break
		}
		if pages > 2*len(seen)+10 {
			t.Errorf("Query keeps returning continuation tokens: %d pages for %d entries", pages, len(seen))
			break
		}
		token = p.Continuation
	}
	slices.Sort(blobs)
	slices.Sort(dirs)
	return blobs, dirs, nil
}

// query calls Query and turns a panic into an error, so that one bad token
// does not take the whole test binary down.
func query(ctx context.Context, d blobstore.BlobDir, token string) (p blobstore.Page, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("blobstoretest: Query(%s) panicked: %v", short(token), r)
		}
	}()
	return d.Query(ctx, token)
}

func isNotFound(err error) bool {
	var se *errs.StorageError
	return errors.As(err, &se) && se.StatusCode == 404
}

func isErr[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

func isWrongKind(err error) bool      { return isErr[*errs.BlobWrongKindError](err) }
func isInvalidName(err error) bool    { return isErr[*errs.InvalidBlobNameError](err) }
func isNoContinuation(err error) bool { return isErr[*errs.NoContinuationError](err) }

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if s == nil {
		s = []string{}
	}
	return s
}

// short renders s for a message, cut to a readable length.
func short(s string) string {
	if len(s) > 60 {
		return fmt.Sprintf("%q... (%d bytes)", s[:60], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// diffNames compares two sorted lists of names and describes the
// difference briefly ("" when equal).
func diffNames(got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	if len(got)+len(want) <= 20 {
		return fmt.Sprintf("got %q, want %q", got, want)
	}
	var missing, extra []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok {
			extra = append(extra, g)
		}
	}
	cut := func(s []string) []string { return s[:min(len(s), 10)] }
	return fmt.Sprintf("got %d names, want %d; missing %d (first %q), unexpected %d (first %q)",
		len(got), len(want), len(missing), cut(missing), len(extra), cut(extra))
}

func diffMaps(got, want map[string]string) string {
	var b strings.Builder
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var all []string
	for k := range keys {
		all = append(all, k)
	}
	slices.Sort(all)
	for _, k := range all {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "  %s: missing, want %s\n", k, short(w))
		case !wok:
			fmt.Fprintf(&b, "  %s: %s, want nothing\n", k, short(g))
		case g != w:
			fmt.Fprintf(&b, "  %s: %s, want %s\n", k, short(g), short(w))
		}
	}
	return b.String()
}
