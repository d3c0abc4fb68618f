package blobstoretest_test

// The suite is tested by running it against deliberately broken stores
// (internal/mutanttest runs each in a child process): every mutant must
// make the suite fail, in the subtest named for it. With -failfast the
// groups run in a fixed order, so the first subtest to fail is
// deterministic; a mutant caught somewhere else means a check moved or
// went missing.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sheetlog/sheetlog/internal/mutanttest"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/blobstoretest"
	"github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

const mutantEnv = "BLOBSTORETEST_MUTANT"

// mutants names each broken store, the part of the suite run against it
// ("" for the whole suite, else a subtest path below TestMutantSuite) and
// the subtest that must catch it. Against the whole suite, the first
// check to trip may be a general one (most subtests list directories and
// read blobs); the runs of one part show that the subtest written for
// the rule catches it on its own, and the Model runs that the property
// test does.
var mutants = []mutanttest.Mutant{
	{Name: "missingIsNot404", CaughtBy: "Names/AwkwardNamesRoundTripAsBlobs"},
	{Name: "missingIsNot404", Only: "Blobs/ReadMissingIs404", CaughtBy: "Blobs/ReadMissingIs404"},
	{Name: "overwriteIgnored", CaughtBy: "Blobs/WriteReadOverwrite"},
	{Name: "overwriteIgnored", Only: "Model", CaughtBy: "Model"},
	{Name: "lostWrite", CaughtBy: "Sheet/ValidIDs"},
	{Name: "lostWrite", Only: "Model", CaughtBy: "Model"},
	{Name: "readSharesBuffer", CaughtBy: "Blobs/ReadReturnsPrivateCopy"},
	{Name: "removeMissingFails", CaughtBy: "Blobs/RemoveMissingSucceeds"},
	{Name: "getDirOfABlob", CaughtBy: "WrongKind/GetDirOfABlob"},
	{Name: "queryHidesDirs", CaughtBy: "Names/InvalidOnEveryOperation"},
	{Name: "queryHidesDirs", Only: "Query/SmallDirectory", CaughtBy: "Query/SmallDirectory"},
	{Name: "queryHidesDirs", Only: "Model", CaughtBy: "Model"},
	{Name: "tokenAfterLastPage", CaughtBy: "Names/InvalidOnEveryOperation"},
	{Name: "tokenAfterLastPage", Only: "Query/ExactlyOnePageOrTwo", CaughtBy: "Query/ExactlyOnePageOrTwo"},
	{Name: "removeAllShallow", CaughtBy: "WrongKind/StaleDirectoryHandle"},
	{Name: "removeAllShallow", Only: "RemoveAll/SubdirectoryAndNothingElse", CaughtBy: "RemoveAll/SubdirectoryAndNothingElse"},
	{Name: "removeAllShallow", Only: "Model", CaughtBy: "Model"},
	{Name: "ignoreContext", CaughtBy: "Copy/CancelledContext"},
	{Name: "ignoreContext", Only: "Context", CaughtBy: "Context/CancelledFailsAndChangesNothing"},
}

func TestMutantsAreCaught(t *testing.T) {
	if _, child := mutanttest.Child(mutantEnv); child {
		return
	}
	mutanttest.Run(t, mutantEnv, "TestMutantSuite", mutants)
}

func TestMutantSuite(t *testing.T) {
	name, child := mutanttest.Child(mutantEnv)
	if !child {
		return // only run as a child of TestMutantsAreCaught
	}
	blobstoretest.Run(t, func(*testing.T) blobstore.Store {
		return &mutantStore{inner: memory.New(memory.Options{PageSize: 2}), name: name}
	}, blobstoretest.Options{PageSize: 2})
}

// mutantStore wraps the reference store and breaks one rule.
type mutantStore struct {
	inner  *memory.Store
	name   string
	writes atomic.Int64
}

func (s *mutantStore) Sheet(id string) (blobstore.BlobDir, error) {
	d, err := s.inner.Sheet(id)
	if err != nil {
		return nil, err
	}
	return &mutantDir{s: s, d: d}, nil
}

type mutantDir struct {
	s *mutantStore
	d blobstore.BlobDir

	mu    sync.Mutex
	reads map[string][]byte // readSharesBuffer
}

// endToken is the token tokenAfterLastPage hands out on a last page.
const endToken = "mutant-end"

func (d *mutantDir) ctx(ctx context.Context) context.Context {
	if d.s.name == "ignoreContext" {
		return context.Background()
	}
	return ctx
}

func isNotFound(err error) bool {
	var se *errs.StorageError
	return errors.As(err, &se) && se.Status() == 404
}

func (d *mutantDir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	b, err := d.d.ReadBlob(d.ctx(ctx), name)
	switch {
	case d.s.name == "missingIsNot404" && isNotFound(err):
		return nil, errs.Storage(nil, "mutant: %s is missing", name)
	case d.s.name == "readSharesBuffer" && err == nil:
		d.mu.Lock()
		defer d.mu.Unlock()
		if prev, ok := d.reads[name]; ok {
			return prev, nil
		}
		if d.reads == nil {
			d.reads = map[string][]byte{}
		}
		d.reads[name] = b
	}
	return b, err
}

func (d *mutantDir) WriteBlob(ctx context.Context, name string, data []byte) error {
	switch d.s.name {
	case "overwriteIgnored":
		if _, err := d.d.ReadBlob(ctx, name); err == nil {
			return nil
		}
	case "lostWrite":
		if d.s.writes.Add(1)%5 == 0 {
			return nil
		}
	case "readSharesBuffer":
		d.mu.Lock()
		delete(d.reads, name)
		d.mu.Unlock()
	}
	return d.d.WriteBlob(d.ctx(ctx), name, data)
}

func (d *mutantDir) RemoveBlob(ctx context.Context, name string) error {
	if d.s.name == "removeMissingFails" {
		if _, err := d.d.ReadBlob(ctx, name); isNotFound(err) {
			return err
		}
	}
	return d.d.RemoveBlob(d.ctx(ctx), name)
}

func (d *mutantDir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	sub, err := d.d.GetDir(d.ctx(ctx), name)
	var wk *errs.BlobWrongKindError
	if d.s.name == "getDirOfABlob" && errors.As(err, &wk) {
		// Hands out a handle where a blob stands.
		return &mutantDir{s: d.s, d: d.d}, nil
	}
	if err != nil {
		return nil, err
	}
	return &mutantDir{s: d.s, d: sub}, nil
}

func (d *mutantDir) Query(ctx context.Context, token string) (blobstore.Page, error) {
	if d.s.name == "tokenAfterLastPage" && token == endToken {
		return blobstore.Page{}, nil
	}
	p, err := d.d.Query(d.ctx(ctx), token)
	if err != nil {
		return p, err
	}
	switch d.s.name {
	case "queryHidesDirs":
		p.Dirs = nil
	case "tokenAfterLastPage":
		if p.Continuation == "" && len(p.Blobs)+len(p.Dirs) > 0 {
			p.Continuation = endToken
		}
	}
	return p, nil
}

func (d *mutantDir) RemoveAll(ctx context.Context) error {
	if d.s.name != "removeAllShallow" {
		return d.d.RemoveAll(d.ctx(ctx))
	}
	// Removes the blobs of the directory itself, not those below.
	token := ""
	for {
		p, err := d.d.Query(ctx, token)
		if err != nil {
			return err
		}
		for _, b := range p.Blobs {
			if err := d.d.RemoveBlob(ctx, b); err != nil {
				return err
			}
		}
		if p.Continuation == "" {
			return nil
		}
		token = p.Continuation
	}
}

// CopyBlob keeps the reference store's server-side copy reachable
// through the wrapper.
func (d *mutantDir) CopyBlob(ctx context.Context, dstName string, src blobstore.BlobDir, srcName string) error {
	c, ok := d.d.(blobstore.Copier)
	if !ok {
		return blobstore.ErrCopyUnsupported
	}
	if m, ok := src.(*mutantDir); ok {
		src = m.d
	}
	if d.s.name == "overwriteIgnored" {
		if _, err := d.d.ReadBlob(ctx, dstName); err == nil {
			return nil
		}
	}
	return c.CopyBlob(d.ctx(ctx), dstName, src, srcName)
}
