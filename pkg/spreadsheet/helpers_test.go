package spreadsheet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// rig is one sheet on memory stores with a reference host and worker, a
// host engine and a worker engine.
type rig struct {
	log    eventlog.EventLog
	root   blobstore.BlobDir
	host   *workers.SimpleWorkerHost
	hostE  *Engine
	worker *Engine
	opts   Options
}

func newRig(t testing.TB, opts Options) *rig {
	t.Helper()
	log := logmem.New(logmem.Options{})
	root, err := blobmem.New(blobmem.Options{}).Sheet("s1")
	if err != nil {
		t.Fatal(err)
	}
	r := newRigOn(t, log, root, opts)
	t.Cleanup(r.close)
	return r
}

// tb is what the rig needs from *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// newRigOn builds a rig on the given stores; the caller closes r.host.
func newRigOn(t tb, log eventlog.EventLog, root blobstore.BlobDir, opts Options) *rig {
	t.Helper()
	host, w := workers.NewSimple()
	r := &rig{log: log, root: root, host: host, opts: opts}
	var err error
	if r.hostE, err = New("s1", log, root, host, opts); err != nil {
		t.Fatal(err)
	}
	if r.worker, err = New("s1", log, root, nil, opts); err != nil {
		t.Fatal(err)
	}
	w.SetHandler(WorkflowHandler(func(context.Context, string) (*Engine, error) { return r.worker, nil }))
	return r
}

// close stops the rig's host and its engines' timers.
func (r *rig) close() {
	r.host.Close()
	r.hostE.Close()
	r.worker.Close()
}

// fresh returns a new engine over the rig's stores, as a restarted
// process would have.
func (r *rig) fresh(t tb) *Engine {
	t.Helper()
	e, err := New("s1", r.log, r.root, nil, r.opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (r *rig) wait(t tb) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.host.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := r.host.Errors(); len(errs) > 0 {
		t.Fatalf("workflow errors: %v", errs)
	}
}

func num(f float64) cell.Value {
	v, err := cell.NumberValue(f)
	if err != nil {
		panic(err)
	}
	return v
}

// snapshots returns the ids of entries whose snapshot is set, and of
// those still pending.
func snapshots(t tb, log eventlog.EventLog) (done, pending []eventlog.SequenceID) {
	t.Helper()
	for page, err := range eventlog.Pages(context.Background(), log, eventlog.FromStart, eventlog.ToEnd, nil) {
		if err != nil {
			t.Fatal(err)
		}
		for id, e := range page.All() {
			if e.Snapshot != "" {
				done = append(done, id)
			}
			if e.Pending != "" {
				pending = append(pending, id)
			}
		}
	}
	return done, pending
}

// readDir reads every blob of the directory at the "/"-separated path
// under root.
func readDir(ctx context.Context, root blobstore.BlobDir, path string) (map[string][]byte, error) {
	dir := root
	for _, name := range strings.Split(path, "/") {
		var err error
		if dir, err = dir.GetDir(ctx, name); err != nil {
			return nil, err
		}
	}
	names, err := listBlobs(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, n := range names {
		if out[n], err = dir.ReadBlob(ctx, n); err != nil {
			return nil, err
		}
	}
	return out, nil
}
