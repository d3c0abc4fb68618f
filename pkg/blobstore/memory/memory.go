// Package memory is the in-memory reference implementation of the blob
// store contract (package blobstore): the simplest store that meets every
// rule, used as the model that the other implementations are compared
// with. It keeps nothing on disk.
//
// Behaviour the contract leaves open, decided here (and accepted by the
// conformance suite, blobstoretest):
//
//   - Directories exist only while they hold a blob, directly or below.
//     GetDir never creates anything, so GetDir of a name where nothing is
//     (including a directory whose last blob was removed) succeeds, and a
//     blob may later be written under that name in the parent.
//   - A BlobDir is a path, not an object: after RemoveAll, or after its
//     last blob goes, it is simply empty and stays usable. If a blob is
//     later written in place of the directory (or of any directory above
//     it), every operation through the old handle fails with
//     *errs.BlobWrongKindError naming the blob in the way, as a file
//     system does with ENOTDIR; nothing is written or removed.
//   - Query lists blobs and directories together, sorted by name, at most
//     Options.PageSize entries a page. A continuation token carries the
//     last name returned and an HMAC over the sheet, the directory path and
//     that name, keyed by a random per-store secret. Tokens are stateless
//     and never expire: repeating one returns the page that starts after
//     the same name again (the same page when nothing changed in between).
//     A token from another directory, sheet or store, or one altered in any
//     way, fails with *errs.NoContinuationError.
//   - StatBlob (blobstore.Stater) reports when a blob was written on the
//     clock of Options.Now.
//   - The Store implements blobstore.Copier within one sheet only, sharing
//     the (never mutated) bytes. A source in another sheet, or in another
//     store, gets blobstore.ErrCopyUnsupported and nothing is written:
//     CopyBlob never crosses a sheet boundary on its own, and
//     blobstore.Copy then falls back to reading and writing through the
//     two handles the caller already holds.
//   - Every call checks ctx first; a done context is a *errs.StorageError
//     wrapping ctx.Err(), and nothing changes.
package memory

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/continuation"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// DefaultPageSize is the Query page size when Options.PageSize is zero.
const DefaultPageSize = 1000

// Options configures a Store.
type Options struct {
	// PageSize bounds the number of entries (blobs plus directories) in
	// one Query page. Zero or negative means DefaultPageSize. Tests set it
	// small to exercise pagination.
	PageSize int
	// Now is the clock of the modification times StatBlob reports
	// (default time.Now); tests of snapshot retention pass a fake one.
	Now func() time.Time
}

// Store is an in-memory blob store. It is safe for concurrent use.
type Store struct {
	pageSize int
	now      func() time.Time
	// tokenKey authenticates continuation tokens, so that a token cannot
	// be forged, altered or moved to another directory or store.
	tokens continuation.Sealer

	mu sync.RWMutex
	// sheets holds the root of every sheet that has at least one blob.
	// Invariant: every node in a tree holds at least one blob, directly or
	// below; empty directories are pruned, which is what makes them
	// invisible.
	sheets map[string]*node
}

type node struct {
	blobs map[string][]byte // never mutated once stored
	// mod holds when each blob was written.
	mod  map[string]time.Time
	dirs map[string]*node
}

func newNode() *node {
	return &node{blobs: map[string][]byte{}, mod: map[string]time.Time{}, dirs: map[string]*node{}}
}

func (n *node) empty() bool { return len(n.blobs) == 0 && len(n.dirs) == 0 }

var (
	_ blobstore.Store   = (*Store)(nil)
	_ blobstore.BlobDir = (*dir)(nil)
	_ blobstore.Copier  = (*dir)(nil)
	_ blobstore.Stater  = (*dir)(nil)
)

// New returns an empty store.
func New(opts Options) *Store {
	s := &Store{pageSize: opts.PageSize, now: opts.Now, sheets: map[string]*node{}}
	if s.pageSize <= 0 {
		s.pageSize = DefaultPageSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	// crypto/rand.Read never fails (it crashes the program instead).
	var key [32]byte
	_, _ = rand.Read(key[:])
	s.tokens = continuation.NewSealer(key[:], "sheetlog memory blob store query v1")
	return s
}

// Sheet returns the root directory of sheet. The id is checked with
// sheetid.Validate (a *errs.ValidationError).
func (s *Store) Sheet(sheet string) (blobstore.BlobDir, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	return &dir{s: s, sheet: sheet}, nil
}

// dir is a directory handle: a sheet and a path of names from its root.
// path is never modified after construction, so handles can be shared.
type dir struct {
	s     *Store
	sheet string
	path  []string
}

func (d *dir) String() string {
	return "sheet " + d.sheet + " /" + strings.Join(d.path, "/")
}

func entry(ctx context.Context, op string, names ...string) error {
	if err := ctx.Err(); err != nil {
		return errs.Storage(err, "memory blob store: %s", op)
	}
	for _, n := range names {
		if err := blobstore.ValidateName(n); err != nil {
			return err
		}
	}
	return nil
}

// lookup returns the node of d, or nil when the directory is empty. A blob
// on the way is a BlobWrongKindError. The caller holds s.mu.
func (d *dir) lookup() (*node, error) {
	n := d.s.sheets[d.sheet]
	for i, name := range d.path {
		if n == nil {
			return nil, nil
		}
		if _, ok := n.blobs[name]; ok {
			return nil, &errs.BlobWrongKindError{
				Name: name,
				Message: fmt.Sprintf("%q is a blob, so directory /%s of sheet %s does not exist",
					name, strings.Join(d.path[:i+1], "/"), d.sheet),
			}
		}
		n = n.dirs[name]
	}
	return n, nil
}

// create returns the node of d, creating it and its parents. The caller
// holds s.mu for writing and has checked with lookup that no blob is in
// the way, and must store a blob in it before unlocking.
func (d *dir) create() *node {
	n := d.s.sheets[d.sheet]
	if n == nil {
		n = newNode()
		d.s.sheets[d.sheet] = n
	}
	for _, name := range d.path {
		c := n.dirs[name]
		if c == nil {
			c = newNode()
			n.dirs[name] = c
		}
		n = c
	}
	return n
}

// prune removes the empty directories on d's path, deepest first, so that
// the tree invariant holds again. The caller holds s.mu for writing.
func (d *dir) prune() {
	chain := []*node{d.s.sheets[d.sheet]}
	for _, name := range d.path {
		last := chain[len(chain)-1]
		if last == nil {
			return
		}
		chain = append(chain, last.dirs[name])
	}
	for i := len(chain) - 1; i >= 1; i-- {
		if chain[i] != nil && !chain[i].empty() {
			return
		}
		delete(chain[i-1].dirs, d.path[i-1])
	}
	if chain[0] != nil && chain[0].empty() {
		delete(d.s.sheets, d.sheet)
	}
}

func (d *dir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	if err := entry(ctx, "ReadBlob", name); err != nil {
		return nil, err
	}
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	n, err := d.lookup()
	if err != nil {
		return nil, err
	}
	if n != nil {
		if b, ok := n.blobs[name]; ok {
			return bytes.Clone(b), nil
		}
		if _, ok := n.dirs[name]; ok {
			return nil, errs.WrongKind(name, true)
		}
	}
	return nil, errs.NotFound("blob %q not found in %s", name, d)
}

func (d *dir) WriteBlob(ctx context.Context, name string, data []byte) error {
	if err := entry(ctx, "WriteBlob", name); err != nil {
		return err
	}
	// Copy before locking: the caller keeps its buffer, and a large copy
	// should not hold up other callers.
	own := append([]byte{}, data...)
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	return d.put(name, own)
}

// put stores b, which nobody else may mutate, as d/name. The caller holds
// s.mu for writing.
func (d *dir) put(name string, b []byte) error {
	n, err := d.lookup()
	if err != nil {
		return err
	}
	if n != nil {
		if _, ok := n.dirs[name]; ok {
			return errs.WrongKind(name, true)
		}
	}
	n = d.create()
	n.blobs[name] = b
	n.mod[name] = d.s.now()
	return nil
}

func (d *dir) RemoveBlob(ctx context.Context, name string) error {
	if err := entry(ctx, "RemoveBlob", name); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	n, err := d.lookup()
	if err != nil || n == nil {
		return err
	}
	if _, ok := n.dirs[name]; ok {
		return errs.WrongKind(name, true)
	}
	delete(n.blobs, name)
	delete(n.mod, name)
	d.prune()
	return nil
}

func (d *dir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	if err := entry(ctx, "GetDir", name); err != nil {
		return nil, err
	}
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	n, err := d.lookup()
	if err != nil {
		return nil, err
	}
	if n != nil {
		if _, ok := n.blobs[name]; ok {
			return nil, errs.WrongKind(name, false)
		}
	}
	return &dir{s: d.s, sheet: d.sheet, path: append(slices.Clip(d.path), name)}, nil
}

func (d *dir) RemoveAll(ctx context.Context) error {
	if err := entry(ctx, "RemoveAll"); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if len(d.path) == 0 {
		delete(d.s.sheets, d.sheet)
		return nil
	}
	parent := &dir{s: d.s, sheet: d.sheet, path: d.path[:len(d.path)-1]}
	p, err := parent.lookup()
	if err != nil || p == nil {
		return err
	}
	name := d.path[len(d.path)-1]
	if _, ok := p.blobs[name]; ok {
		// The directory was replaced by a blob, which is not under it.
		return errs.WrongKind(name, false)
	}
	delete(p.dirs, name)
	parent.prune()
	return nil
}

func (d *dir) Query(ctx context.Context, continuation string) (blobstore.Page, error) {
	if err := entry(ctx, "Query"); err != nil {
		return blobstore.Page{}, err
	}
	after, err := d.openToken(continuation)
	if err != nil {
		return blobstore.Page{}, err
	}
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	n, err := d.lookup()
	if err != nil || n == nil {
		return blobstore.Page{}, err
	}
	names := make([]string, 0, len(n.blobs)+len(n.dirs))
	for name := range n.blobs {
		if name > after {
			names = append(names, name)
		}
	}
	for name := range n.dirs {
		if name > after {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var page blobstore.Page
	if len(names) > d.s.pageSize {
		names = names[:d.s.pageSize]
		page.Continuation = d.sealToken(names[len(names)-1])
	}
	for _, name := range names {
		if _, ok := n.blobs[name]; ok {
			page.Blobs = append(page.Blobs, name)
		} else {
			page.Dirs = append(page.Dirs, name)
		}
	}
	return page, nil
}

func (d *dir) tokenScope() []string { return append([]string{d.sheet}, d.path...) }

func (d *dir) sealToken(after string) string { return d.s.tokens.Seal(d.tokenScope(), after) }

// openToken returns the name a continuation token resumes after.
func (d *dir) openToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	return d.s.tokens.Open(d.tokenScope(), token)
}

// CopyBlob implements blobstore.Copier for a source in the same sheet of
// the same store. The bytes are shared, which is safe because a stored
// blob is never mutated.
func (d *dir) CopyBlob(ctx context.Context, dstName string, src blobstore.BlobDir, srcName string) error {
	if err := entry(ctx, "CopyBlob", dstName, srcName); err != nil {
		return err
	}
	sd, ok := src.(*dir)
	if !ok || sd.s != d.s {
		return fmt.Errorf("memory blob store: source is not in this store: %w", blobstore.ErrCopyUnsupported)
	}
	if sd.sheet != d.sheet {
		return fmt.Errorf("memory blob store: copy from sheet %s to sheet %s: %w", sd.sheet, d.sheet, blobstore.ErrCopyUnsupported)
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	n, err := sd.lookup()
	if err != nil {
		return err
	}
	if n != nil {
		if b, ok := n.blobs[srcName]; ok {
			return d.put(dstName, b)
		}
		if _, ok := n.dirs[srcName]; ok {
			return errs.WrongKind(srcName, true)
		}
	}
	return errs.NotFound("blob %q not found in %s", srcName, sd)
}

// StatBlob implements blobstore.Stater: the blob's length and when it was
// written (by WriteBlob or CopyBlob), on the store's clock.
func (d *dir) StatBlob(ctx context.Context, name string) (blobstore.BlobInfo, error) {
	if err := entry(ctx, "StatBlob", name); err != nil {
		return blobstore.BlobInfo{}, err
	}
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	n, err := d.lookup()
	if err != nil {
		return blobstore.BlobInfo{}, err
	}
	if n != nil {
		if b, ok := n.blobs[name]; ok {
			return blobstore.BlobInfo{Size: int64(len(b)), ModTime: n.mod[name]}, nil
		}
		if _, ok := n.dirs[name]; ok {
			return blobstore.BlobInfo{}, errs.WrongKind(name, true)
		}
	}
	return blobstore.BlobInfo{}, errs.NotFound("blob %q not found in %s", name, d)
}
