package blobstoretest_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/blobstoretest"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// flatStore is a second, deliberately different store that still meets
// the contract. The suite runs against it here to show that it depends on
// no choice of the memory reference: it keys blobs by full path like S3,
// lists in random order with pages of random size, hands out one-shot
// server-side tokens (a repeated token is a NoContinuationError), has no
// Copier, does no I/O in GetDir (so ignores its context), and answers
// reads through a stale directory handle with 404 rather than
// BlobWrongKindError.
type flatStore struct {
	pageSize int
	mu       sync.Mutex
	blobs    map[string][]byte // "sheet/dir/.../name"
	tokens   map[string]flatToken
}

type flatToken struct {
	dir   string
	names [][2]string // kind ("b" or "d") and name, in listing order
}

func newFlat(pageSize int) *flatStore {
	return &flatStore{pageSize: pageSize, blobs: map[string][]byte{}, tokens: map[string]flatToken{}}
}

func (s *flatStore) Sheet(id string) (blobstore.BlobDir, error) {
	if err := sheetid.Validate(id); err != nil {
		return nil, err
	}
	return &flatDir{s: s, key: id}, nil
}

type flatDir struct {
	s   *flatStore
	key string // "sheet/dir/..."
}

func start(ctx context.Context, names ...string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flat store: %w", err)
	}
	for _, n := range names {
		if err := blobstore.ValidateName(n); err != nil {
			return err
		}
	}
	return nil
}

// isDir reports whether any blob lies under key. The caller holds s.mu.
func (s *flatStore) isDir(key string) bool {
	for k := range s.blobs {
		if strings.HasPrefix(k, key+"/") {
			return true
		}
	}
	return false
}

func (d *flatDir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	if err := start(ctx, name); err != nil {
		return nil, err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if b, ok := d.s.blobs[d.key+"/"+name]; ok {
		return append([]byte{}, b...), nil
	}
	if d.s.isDir(d.key + "/" + name) {
		return nil, errs.WrongKind(name, true)
	}
	return nil, errs.NotFound("no blob %s/%s", d.key, name)
}

func (d *flatDir) WriteBlob(ctx context.Context, name string, data []byte) error {
	if err := start(ctx, name); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	parts := strings.Split(d.key, "/")
	for i := 2; i <= len(parts); i++ {
		if _, ok := d.s.blobs[strings.Join(parts[:i], "/")]; ok {
			return errs.WrongKind(parts[i-1], false)
		}
	}
	if d.s.isDir(d.key + "/" + name) {
		return errs.WrongKind(name, true)
	}
	d.s.blobs[d.key+"/"+name] = append([]byte{}, data...)
	return nil
}

func (d *flatDir) RemoveBlob(ctx context.Context, name string) error {
	if err := start(ctx, name); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if d.s.isDir(d.key + "/" + name) {
		return errs.WrongKind(name, true)
	}
	delete(d.s.blobs, d.key+"/"+name)
	return nil
}

func (d *flatDir) GetDir(_ context.Context, name string) (blobstore.BlobDir, error) {
	if err := start(context.Background(), name); err != nil {
		return nil, err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if _, ok := d.s.blobs[d.key+"/"+name]; ok {
		return nil, errs.WrongKind(name, false)
	}
	return &flatDir{s: d.s, key: d.key + "/" + name}, nil
}

func (d *flatDir) RemoveAll(ctx context.Context) error {
	if err := start(ctx); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	for k := range d.s.blobs {
		if strings.HasPrefix(k, d.key+"/") {
			delete(d.s.blobs, k)
		}
	}
	return nil
}

func (d *flatDir) Query(ctx context.Context, token string) (blobstore.Page, error) {
	if err := start(ctx); err != nil {
		return blobstore.Page{}, err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	var t flatToken
	if token == "" {
		t.dir = d.key
		seen := map[string]bool{}
		for k := range d.s.blobs { // random order
			rest, ok := strings.CutPrefix(k, d.key+"/")
			if !ok {
				continue
			}
			name, _, deeper := strings.Cut(rest, "/")
			switch {
			case !deeper:
				t.names = append(t.names, [2]string{"b", name})
			case !seen[name]:
				seen[name] = true
				t.names = append(t.names, [2]string{"d", name})
			}
		}
	} else {
		var ok bool
		t, ok = d.s.tokens[token]
		if !ok || t.dir != d.key {
			return blobstore.Page{}, errs.NoContinuation("unknown continuation token")
		}
		delete(d.s.tokens, token)
	}
	n := min(len(t.names), 1+rand.IntN(d.s.pageSize)) // pages of random size
	var p blobstore.Page
	for _, e := range t.names[:n] {
		if e[0] == "b" {
			p.Blobs = append(p.Blobs, e[1])
		} else {
			p.Dirs = append(p.Dirs, e[1])
		}
	}
	if rest := t.names[n:]; len(rest) > 0 {
		p.Continuation = randomID()
		d.s.tokens[p.Continuation] = flatToken{dir: d.key, names: rest}
	}
	return p, nil
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

func TestSuiteAcceptsAnotherConformingStore(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("PageSize%d", size), func(t *testing.T) {
			blobstoretest.Run(t, func(*testing.T) blobstore.Store { return newFlat(size) }, blobstoretest.Options{PageSize: size})
		})
	}
}
