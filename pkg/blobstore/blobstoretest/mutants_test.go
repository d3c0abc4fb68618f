package blobstoretest_test

// The suite is tested by running it against deliberately broken stores,
// each in a child process (a failing suite cannot be observed from inside
// the test that runs it): every mutant must make the suite fail, in the
// subtest named for it. With -failfast the groups run in a fixed order,
// so the first subtest to fail is deterministic; a mutant caught
// somewhere else means a check moved or went missing.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

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
var mutants = []struct{ name, only, caughtBy string }{
	{"missingIsNot404", "", "Names/AwkwardNamesRoundTripAsBlobs"},
	{"missingIsNot404", "Blobs/ReadMissingIs404", "Blobs/ReadMissingIs404"},
	{"overwriteIgnored", "", "Blobs/WriteReadOverwrite"},
	{"overwriteIgnored", "Model", "Model"},
	{"lostWrite", "", "Sheet/ValidIDs"},
	{"lostWrite", "Model", "Model"},
	{"readSharesBuffer", "", "Blobs/ReadReturnsPrivateCopy"},
	{"removeMissingFails", "", "Blobs/RemoveMissingSucceeds"},
	{"getDirOfABlob", "", "WrongKind/GetDirOfABlob"},
	{"queryHidesDirs", "", "Names/InvalidOnEveryOperation"},
	{"queryHidesDirs", "Query/SmallDirectory", "Query/SmallDirectory"},
	{"queryHidesDirs", "Model", "Model"},
	{"tokenAfterLastPage", "", "Names/InvalidOnEveryOperation"},
	{"tokenAfterLastPage", "Query/ExactlyOnePageOrTwo", "Query/ExactlyOnePageOrTwo"},
	{"removeAllShallow", "", "WrongKind/StaleDirectoryHandle"},
	{"removeAllShallow", "RemoveAll/SubdirectoryAndNothingElse", "RemoveAll/SubdirectoryAndNothingElse"},
	{"removeAllShallow", "Model", "Model"},
	{"ignoreContext", "", "Copy/CancelledContext"},
	{"ignoreContext", "Context", "Context/CancelledFailsAndChangesNothing"},
}

func TestMutantsAreCaught(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		return // this is a child process
	}
	failLine := regexp.MustCompile(`--- FAIL: TestMutantSuite/(\S+)`)
	for _, m := range mutants {
		name := m.name
		run := "^TestMutantSuite$"
		if m.only != "" {
			name += "_in_" + strings.ReplaceAll(m.only, "/", "_")
			for _, part := range strings.Split(m.only, "/") {
				run += "/^" + part + "$"
			}
		}
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.failfast", "-test.count=1", "-test.timeout=3m",
				"-rapid.nofailfile", "-rapid.shrinktime=1ms", "-rapid.checks=1000")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite did not catch mutant %s (err %v):\n%s", m.name, err, out)
			}
			all := failLine.FindAllSubmatch(out, -1)
			if len(all) == 0 || strings.Contains(string(out), "panic:") {
				t.Fatalf("the suite crashed on mutant %s instead of failing a test:\n%s", m.name, out)
			}
			// Go prints a parent's FAIL line before its children's: the
			// last one is the subtest that failed.
			caught := string(all[len(all)-1][1])
			if caught != m.caughtBy && !strings.HasPrefix(caught, m.caughtBy+"/") {
				t.Fatalf("mutant %s was caught by %s, want %s:\n%s", m.name, caught, m.caughtBy, out)
			}
			t.Logf("caught by %s", caught)
		})
	}
}

func TestMutantSuite(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
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
