// Package apitest runs the real API handler (pkg/api) over the
// single-machine server's stores (a bbolt event log and a filesystem blob
// store, optionally with a pool of snapshot workers) on a loopback port,
// for the tests of the clients. It counts requests and can answer some
// of them itself (fault injection).
package apitest

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

// Server is the real API handler over cmd/server's stores on a loopback
// port.
type Server struct {
	URL   string
	Logs  *boltlog.Store
	Blobs *fsblob.Store
	// Handler is the API handler itself.
	Handler http.Handler
	// Requests counts the requests received.
	Requests atomic.Int64
	// fault, when set, may answer a request instead of the handler.
	fault atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

// Options configure a Server.
type Options struct {
	// Interval is the snapshot interval; 0 means never (conformance
	// suites run with no snapshot, so that only the test sets metadata).
	Interval int
	// Workers runs a pool of snapshot workers, as cmd/server does.
	Workers bool
	Token   string
	// Auth authenticates callers (JWTs), as api.Config.Auth.
	Auth api.Authenticator
	// PageSize and PageBytes bound the log's query pages (0: the store's
	// defaults).
	PageSize, PageBytes int
	// BlobPageSize bounds blob listings (0: the store's default).
	BlobPageSize int
}

// New starts a server that stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	dir := t.TempDir()
	lg := slog.New(slog.DiscardHandler)
	logs, err := boltlog.Open(filepath.Join(dir, "eventlog.db"), boltlog.Options{Logger: lg, PageSize: o.PageSize, PageBytes: o.PageBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "blobs"), fsblob.Options{Logger: lg, PageSize: o.BlobPageSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	interval := o.Interval
	if interval == 0 {
		interval = 1 << 62
	}
	opts := spreadsheet.Options{SnapshotInterval: interval, Logger: lg}
	var host workers.WorkerHost
	var wp *pool.Pool
	if o.Workers {
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
	h, err := api.New(api.Config{Logs: logs, Blobs: blobs, Engines: hostEngines, Token: o.Token, Auth: o.Auth, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Logs: logs, Blobs: blobs, Handler: h}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		if f := s.fault.Load(); f != nil && (*f)(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Client returns a client of the server with fast retries.
func (s *Server) Client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithRetry(client.Retry{Base: time.Millisecond, Cap: 20 * time.Millisecond})}, opts...)
	c, err := client.New(s.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SetFault makes f answer the requests it wants to (it returns true)
// until the test ends; the others go to the handler.
func (s *Server) SetFault(t testing.TB, f func(w http.ResponseWriter, r *http.Request) bool) {
	s.fault.Store(&f)
	t.Cleanup(func() { s.fault.Store(nil) })
}
