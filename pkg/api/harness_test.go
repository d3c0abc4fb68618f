package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	sheetapi "github.com/sheetlog/sheetlog/api"
	"github.com/sheetlog/sheetlog/internal/detach"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/feed"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// fixture is the handler over memory stores, with a reference worker host
// whose worker runs snapshot workflows on engines of its own cache, as a
// deployment does.
type fixture struct {
	t       testing.TB
	h       http.Handler
	logs    eventlog.Store
	blobs   blobstore.Store
	host    *workers.SimpleWorkerHost
	engines *enginecache.Cache
	token   string
	// check validates every reply against the OpenAPI document.
	check bool
	// notifier is the feed when fixtureOptions.notify is set.
	notifier *feed.Notifier
	// url and detacher: with fixtureOptions.detach, requests go over
	// loopback to a server that detaches waiting requests.
	url      string
	detacher *detach.Detacher
}

type fixtureOptions struct {
	interval int
	token    string
	auth     Authenticator
	origins  []string
	health   func(context.Context) error
	logPage  int
	blobPage int
	logs     eventlog.Store
	blobs    blobstore.Store
	// noWorker builds host engines that post nothing: requested
	// snapshots stay pending.
	noWorker bool
	// notify serves the change feed with a feed.Notifier over the logs,
	// as the single-machine server does (else with the default poller);
	// maxWait is Config.MaxWait.
	notify  bool
	maxWait time.Duration
	// detach serves the handler over loopback from an http.Server whose
	// waiting change feed requests are detached (internal/detach), as
	// the single-machine server's are; it implies notify.
	detach bool
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, token: o.token, logs: o.logs, blobs: o.blobs, check: true}
	if f.logs == nil {
		f.logs = logmem.NewStore(logmem.Options{PageSize: o.logPage})
	}
	if f.blobs == nil {
		f.blobs = blobmem.New(blobmem.Options{PageSize: o.blobPage})
	}
	var fd Feed
	if o.notify || o.detach {
		f.notifier = feed.NewNotifier(f.logs)
		f.logs, fd = f.notifier, f.notifier
	}
	opts := spreadsheet.Options{SnapshotInterval: o.interval}
	engineOver := func(host workers.WorkerHost) enginecache.Factory {
		return func(sheet string) (*spreadsheet.Engine, error) {
			log, err := f.logs.Log(sheet)
			if err != nil {
				return nil, err
			}
			root, err := f.blobs.Sheet(sheet)
			if err != nil {
				return nil, err
			}
			return spreadsheet.New(sheet, log, root, host, opts)
		}
	}
	var host workers.WorkerHost = workers.ImplicitHost{}
	if !o.noWorker {
		h, w := workers.NewSimple()
		t.Cleanup(h.Close)
		f.host = h
		host = h
		workerEngines := enginecache.New(engineOver(nil), enginecache.Options{})
		w.SetHandler(spreadsheet.WorkflowHandler(workerEngines.Get))
	}
	f.engines = enginecache.New(engineOver(host), enginecache.Options{MaxEngines: 8})
	cfg := Config{
		Logs: f.logs, Blobs: f.blobs, Engines: f.engines,
		Token: o.token, Auth: o.auth, CORSOrigins: o.origins, Health: o.health,
		Feed: fd, MaxWait: o.maxWait,
	}
	if o.detach {
		f.detacher = detach.New(detach.Options{IdleTimeout: time.Minute})
		cfg.Detach = func(w http.ResponseWriter, r *http.Request) (DetachedReply, bool) {
			if rep, ok := f.detacher.Detach(w, r); ok {
				return rep, true
			}
			return nil, false
		}
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	if o.detach {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(f.detacher.Listen(ln)) }()
		t.Cleanup(func() {
			f.detacher.Close()
			f.notifier.Release()
			_ = srv.Close()
		})
		f.url = "http://" + ln.Addr().String()
	}
	return f
}

// wait blocks until the worker has run every workflow posted so far.
func (f *fixture) wait() {
	f.t.Helper()
	if f.host == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.host.Wait(ctx); err != nil {
		f.t.Fatal(err)
	}
	if errs := f.host.Errors(); len(errs) > 0 {
		f.t.Fatalf("workflow errors: %v", errs)
	}
}

// reply is a recorded response.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("reply is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends one request. target is the raw request target (escaped path
// and query). hdr are header name/value pairs; the token and, for POST, a
// JSON content type are added unless hdr sets those names (to "" to send
// none).
func (f *fixture) do(method, target, body string, hdr ...string) reply {
	f.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body == "" {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	set := map[string]bool{}
	for i := 0; i+1 < len(hdr); i += 2 {
		set[http.CanonicalHeaderKey(hdr[i])] = true
		if hdr[i+1] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	if f.token != "" && !set["Authorization"] {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	if method == http.MethodPost && !set["Content-Type"] {
		req.Header.Set("Content-Type", "application/json")
	}
	return f.serve(req, []byte(body))
}

func (f *fixture) serve(req *http.Request, body []byte) reply {
	f.t.Helper()
	var r reply
	if f.url != "" {
		r = f.roundTrip(req, body)
	} else {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		r = reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	checkReply(f.t, req, r)
	if f.check {
		validateAgainstSpec(f.t, req, body, r)
	}
	return r
}

// roundTrip sends req to the fixture's server over loopback.
func (f *fixture) roundTrip(req *http.Request, body []byte) reply {
	f.t.Helper()
	out, err := http.NewRequestWithContext(req.Context(), req.Method, f.url+req.RequestURI, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	out.Header = req.Header.Clone()
	res, err := http.DefaultClient.Do(out)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

// statusOfType is the contract's table: the status of each error type.
var statusOfType = map[string]int{
	"ValidationError": 400, "InvalidBlobNameError": 400, "NoContinuationError": 400,
	"Unauthorized": 401, "Forbidden": 403, "NotFound": 404, "MethodNotAllowed": 405,
	"BlobWrongKindError": 409, "ConflictError": 409, "PayloadTooLarge": 413,
	"RangeError": 416,
}

// checkReply checks what holds for every reply, whatever the request:
// no 5xx except a 503 StorageError, and every error is a JSON body whose
// type matches its status.
func checkReply(t testing.TB, req *http.Request, r reply) {
	t.Helper()
	if r.status >= 500 && r.status != 503 {
		t.Fatalf("%s %s: status %d: %s", req.Method, req.URL, r.status, r.body)
	}
	if cl := r.header.Get("Content-Length"); cl != "" && req.Method != http.MethodHead && cl != itoa(len(r.body)) {
		t.Fatalf("%s %s: Content-Length %s for %d bytes", req.Method, req.URL, cl, len(r.body))
	}
	if r.status < 400 || req.Method == http.MethodHead {
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: error %d with Content-Type %q", req.Method, req.URL, r.status, ct)
	}
	var e struct {
		Type       string  `json:"type"`
		Message    string  `json:"message"`
		StatusCode *int    `json:"statusCode"`
		Next       *string `json:"nextSequenceId"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Type == "" || e.Message == "" {
		t.Fatalf("%s %s: error body %q is not {type, message}: %v", req.Method, req.URL, r.body, err)
	}
	want, ok := statusOfType[e.Type]
	if e.Type == "StorageError" {
		if e.StatusCode == nil || *e.StatusCode != r.status {
			t.Fatalf("%s %s: StorageError with status %d and statusCode %v", req.Method, req.URL, r.status, e.StatusCode)
		}
		want, ok = r.status, true
	}
	if !ok || want != r.status {
		t.Fatalf("%s %s: type %s with status %d", req.Method, req.URL, e.Type, r.status)
	}
	if (e.Type == "ConflictError") != (e.Next != nil) {
		t.Fatalf("%s %s: nextSequenceId on %s: %s", req.Method, req.URL, e.Type, r.body)
	}
	if e.Type == "MethodNotAllowed" && r.header.Get("Allow") == "" {
		t.Fatalf("%s %s: 405 without Allow", req.Method, req.URL)
	}
	if (e.Type == "Unauthorized" || e.Type == "Forbidden") && r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("%s %s: %d without WWW-Authenticate", req.Method, req.URL, r.status)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

var (
	specOnce sync.Once
	specDoc  *openapi3.T
	specErr  error
)

func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(sheetapi.OpenAPI)
		if specErr == nil {
			specErr = specDoc.Validate(context.Background())
		}
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return specDoc
}

// validateAgainstSpec checks a real reply against the OpenAPI document:
// the operation must document the status, and the headers and body must
// match its response. A successful request must also match the
// document's description of the request. Replies that have no operation
// (unknown routes, methods, preflights) are checked against the error
// schemas directly.
func validateAgainstSpec(t testing.TB, req *http.Request, body []byte, r reply) {
	t.Helper()
	doc := loadSpec(t)
	ctx := context.Background()
	rt, m := matchRoute(req.URL.EscapedPath())
	method := req.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	var op *openapi3.Operation
	var item *openapi3.PathItem
	if rt != nil {
		item = doc.Paths.Value(rt.pattern)
		if item == nil {
			t.Fatalf("route %s is not in openapi.yaml", rt.pattern)
		}
		op = item.GetOperation(method)
		if (op != nil) != (rt.handlers[method] != nil) {
			t.Fatalf("%s %s: handler and openapi.yaml disagree on the method", method, rt.pattern)
		}
	}
	if req.Method == http.MethodOptions {
		if r.status != 204 && r.status != 404 && r.status != 413 {
			t.Fatalf("OPTIONS %s: status %d", req.URL, r.status)
		}
		return
	}
	if op == nil {
		schema := map[int]string{404: "NotFoundError", 405: "MethodNotAllowedError", 401: "UnauthorizedError", 403: "ForbiddenError", 413: "PayloadTooLargeError"}[r.status]
		if schema == "" {
			t.Fatalf("%s %s: status %d without an operation", req.Method, req.URL, r.status)
		}
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatal(err)
		}
		if err := doc.Components.Schemas[schema].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			t.Fatalf("%s %s: reply does not match %s: %v\n%s", req.Method, req.URL, schema, err, r.body)
		}
		return
	}
	params := map[string]string{}
	if m.sheet != "" {
		params["sheet"], _ = url.PathUnescape(m.sheet)
	}
	// The document's {path} is one blob name (an OpenAPI path parameter
	// cannot hold a "/"); a deeper path is checked name by name.
	var names []string
	if rt == routeBlob || rt == routeBlobList {
		for _, s := range m.blob {
			n, _ := url.PathUnescape(s)
			names = append(names, n)
		}
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      &routers.Route{Spec: doc, Path: rt.pattern, PathItem: item, Method: method, Operation: op},
		Options:    opts,
	}
	if r.status < 300 {
		for i := 0; i == 0 || i < len(names); i++ {
			if names != nil {
				params["path"] = names[i]
			}
			req2 := req.Clone(ctx)
			req2.Body = io.NopCloser(bytes.NewReader(body))
			in.Request = req2
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Fatalf("%s %s succeeded (%d) but openapi.yaml refuses the request: %v", req.Method, req.URL, r.status, err)
			}
		}
		in.Request = req
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.status, Header: r.header, Options: opts}
	out.SetBodyBytes(r.body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Fatalf("%s %s: reply %d does not match openapi.yaml: %v\n%s", req.Method, req.URL, r.status, err, r.body)
	}
}
