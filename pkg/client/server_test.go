package client_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/api"
	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/eventlog/boltlog"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/workers"
	"github.com/sheetlog/sheetlog/pkg/workers/pool"
)

// server is the real API handler over cmd/server's stores (a bbolt log
// and a filesystem blob store) on a loopback port.
type server struct {
	url      string
	logs     *boltlog.Store
	blobs    *fsblob.Store
	handler  http.Handler
	requests atomic.Int64
	// fault, when set, may answer a request instead of the handler.
	fault atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

type serverOptions struct {
	// interval is the snapshot interval; 0 means never (the suites run
	// with no snapshot, so that nothing but the test sets metadata).
	interval int
	// workers runs a pool of snapshot workers, as cmd/server does.
	workers bool
	token   string
	// pageSize bounds the log's query pages (0: the store's default).
	pageSize, pageBytes int
	// blobPageSize bounds blob listings (0: the store's default).
	blobPageSize int
}

func newServer(t testing.TB, o serverOptions) *server {
	t.Helper()
	dir := t.TempDir()
	lg := slog.New(slog.DiscardHandler)
	logs, err := boltlog.Open(filepath.Join(dir, "eventlog.db"), boltlog.Options{Logger: lg, PageSize: o.pageSize, PageBytes: o.pageBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"), fsblob.Options{Logger: lg, PageSize: o.blobPageSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	interval := o.interval
	if interval == 0 {
		interval = 1 << 62
	}
	opts := spreadsheet.Options{SnapshotInterval: interval, Logger: lg}
	var host workers.WorkerHost
	var wp *pool.Pool
	if o.workers {
		if wp, err = pool.New(pool.Options{Workers: 2, Deadline: time.Minute, Lister: logs, Logger: lg}); err != nil {
			t.Fatal(err)
		}
		host = wp
	}
	newCache := func(h workers.WorkerHost) *enginecache.Cache {
		return enginecache.New(func(sheet string) (*spreadsheet.Engine, error) {
			log, err := logs.Log(sheet)
			if err != nil {
				return nil, err
			}
			root, err := blobs.Sheet(sheet)
			if err != nil {
				return nil, err
			}
			return spreadsheet.New(sheet, log, root, h, opts)
		}, enginecache.Options{MaxEngines: 100, MaxBytes: 64 << 20})
	}
	hostEngines := newCache(host)
	if wp != nil {
		wp.SetHandler(spreadsheet.WorkflowHandler(newCache(nil).Get))
		if err := wp.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = wp.Close(ctx)
		})
	}
	h, err := api.New(api.Config{Logs: logs, Blobs: blobs, Engines: hostEngines, Token: o.token, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{logs: logs, blobs: blobs, handler: h}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if f := s.fault.Load(); f != nil && (*f)(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// client returns a client of the server with fast retries.
func (s *server) client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithRetry(client.Retry{Base: time.Millisecond, Cap: 20 * time.Millisecond})}, opts...)
	c, err := client.New(s.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setFault makes f answer requests it wants to (it returns true) until
// the test ends.
func (s *server) setFault(t testing.TB, f func(w http.ResponseWriter, r *http.Request) bool) {
	s.fault.Store(&f)
	t.Cleanup(func() { s.fault.Store(nil) })
}
