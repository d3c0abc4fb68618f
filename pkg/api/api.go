// Package api is the thin-client HTTP API (version 1): one http.Handler
// for every endpoint, served unchanged by the single-machine server and
// by the API Lambda behind API Gateway, so the two cannot drift.
//
// The handler keeps no state of its own between requests apart from the
// engine cache it is given: every request reads the stores (through the
// engine for appends, cells and status), so any number of handlers in any
// number of processes may serve one set of stores.
//
// # Checks, in order
//
//  1. CORS headers are set on every reply (errors included) for an
//     allowed Origin. A preflight OPTIONS is answered here, without a
//     token.
//  2. Authentication: with Config.Token or Config.Auth set, every /v1
//     request needs credentials (401 Unauthorized). GET /healthz needs
//     none: load balancers and orchestrators probe it without
//     credentials, and it reveals nothing but "ok" or "unavailable".
//     An address that fails too often is held back (401 with
//     Retry-After, whatever it sends) for a while.
//  3. Authorization: a caller authenticated by a token's claims may
//     touch a sheet only as the token's scopes allow (Allowed; else 403
//     Forbidden).
//  4. Body size: a Content-Length over MaxBodyBytes is refused before the
//     body is read (413 PayloadTooLarge), and a body of unknown length
//     (chunked) is read up to MaxBodyBytes+1 bytes and refused when it
//     exceeds MaxBodyBytes.
//  5. Route (404 NotFound) and method (405 MethodNotAllowed with Allow).
//  6. Validation (400), then the stores.
//
// # Decisions the contract leaves open
//
//   - POST bodies must be sent as Content-Type application/json (charset,
//     if given, utf-8), else 400 ValidationError. Besides saying what the
//     body is, this makes a browser preflight every cross-origin append,
//     so a page on another origin cannot post to a server that runs
//     without a token as a "simple" form request.
//   - Unknown or repeated query parameters are a 400 ValidationError, so
//     that a misspelled parameter is not silently ignored.
//   - "snapshotId": null in a POST body is a 400, like any other value
//     that is neither a string of digits nor a JSON integer; omit it
//     instead.
//   - HEAD is served wherever GET is, without a body.
//   - A blob path has at most MaxPathSegments names; a continuation
//     token at most MaxContinuationBytes.
//   - GET cells replies are bounded by MaxCellsReplyBytes (413).
//   - Error messages are cut to 512 bytes.
//   - Errors that none of the contract's types describe are reported as a
//     503 StorageError with a generic message; the cause is logged. A
//     panic (a bug) is recovered, logged and answered with a 500
//     InternalError.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/feed"
)

// Limits of the API.
const (
	// MaxBodyBytes is the largest request body accepted (64 KiB).
	MaxBodyBytes = 64 << 10
	// MaxRangeCells is the most cells one GET cells may ask for.
	MaxRangeCells = 10_000
	// MaxCellsReplyBytes bounds the reply of one GET cells (8 MiB): a
	// range whose cells take more is refused (413 PayloadTooLarge).
	MaxCellsReplyBytes = 8 << 20
	// MaxPathSegments is the most names in one blob path.
	MaxPathSegments = 32
	// MaxContinuationBytes bounds a listing's continuation token; every
	// token a store issues is far shorter.
	MaxContinuationBytes = 4096
	// MaxFeedWait is the longest wait a change feed request may ask for
	// (GET log?wait=20).
	MaxFeedWait = 20 * time.Second
)

// Config is what the handler is built from.
type Config struct {
	// Logs opens sheets' event logs (GET log). Required.
	Logs eventlog.Store
	// Blobs opens sheets' blob roots (blob reads and listings). Required.
	Blobs blobstore.Store
	// Engines holds the host-side engines of sheets (POST log, cells,
	// status). Required. Its factory must build engines over the same
	// stores as Logs and Blobs, with the deployment's worker host.
	Engines *enginecache.Cache
	// Token, when not empty, is the bearer token every /v1 request must
	// carry; its holder may do everything. Shorthand for an Auth that
	// compares it, and exclusive with Auth.
	Token string
	// Auth tells who the caller of a /v1 request is (see Authenticator):
	// BearerTokens over a JWT verifier, ContextClaims behind a front end
	// that verified the token, or nil for no authentication. Callers it
	// returns claims for are held to the authorization rule (Allowed).
	Auth Authenticator
	// CORSOrigins are the origins allowed to call the API from a browser,
	// compared exactly (scheme://host[:port]); "*" allows any origin.
	CORSOrigins []string
	// MaxInlineBlobBytes, when positive, is the largest blob a blob read
	// returns in its reply: a larger one is answered 307 with a
	// short-lived URL of the blob, if the blob store can make one
	// (blobstore.URLReader; S3 can). For front ends whose replies are
	// bounded (a Lambda reply is at most 6 MB, base64 included). 0: every
	// blob inline.
	MaxInlineBlobBytes int64
	// Feed holds change feed requests (GET log?wait=N) until the sheet's
	// log may have grown. Nil polls the log with backoff (feed.Poller),
	// right for any store; a process that makes every append itself
	// gives a feed.Notifier wrapping Logs (and builds its engines over
	// the Notifier), so that an append wakes its waiters at once.
	Feed Feed
	// Detach, when set, takes a change feed request that has to wait off
	// its connection's goroutine (internal/detach does it for net/http's
	// HTTP/1 server), if Feed can hold such requests (a ParkingFeed, as
	// feed.Notifier is): a waiting request then costs its connection and
	// a few hundred bytes, not a goroutine and net/http's buffers. It
	// returns false for a request it cannot detach, which waits as usual.
	Detach func(w http.ResponseWriter, r *http.Request) (DetachedReply, bool)
	// MaxWait, when positive, caps how long a change feed request is
	// held, below the MaxFeedWait the API allows (a request may always
	// be answered sooner, with the same empty page).
	MaxWait time.Duration
	// Health reports whether the stores are reachable (GET /healthz). Nil
	// means always healthy.
	Health func(ctx context.Context) error
	// Logger receives one record per request (method, route, status,
	// duration, sheet) and the causes of store failures. Nil discards.
	// Every request is also counted in the package's metrics
	// (sheetlog_http_requests_total and _duration_seconds, by route
	// pattern, method and status; metrics.go).
	Logger *slog.Logger
}

// Feed is where a change feed request waits: Wait calls poll, and again
// whenever sheet's log may have grown, until poll is done or fails, or
// ctx ends, and returns poll's error or nil. pkg/feed has the two
// implementations.
type Feed interface {
	Wait(ctx context.Context, sheet string, poll func() (done bool, err error)) error
}

// DetachedReply is the reply of a request taken off its connection's
// goroutine (Config.Detach): written like any ResponseWriter, from
// whichever goroutine finishes the request, then sent by Finish.
type DetachedReply interface {
	http.ResponseWriter
	Finish() error
}

// ParkingFeed is a Feed that can also hold a request that has no
// goroutine while it waits: Park polls as Wait does and calls done once,
// with poll's error or nil, when the wait is over. feed.Notifier is one.
type ParkingFeed interface {
	Feed
	Park(deadline time.Time, sheet string, poll func() (done bool, err error), done func(error))
}

// New returns the handler of the whole API.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Logs == nil:
		return nil, errors.New("api: Config.Logs is required")
	case cfg.Blobs == nil:
		return nil, errors.New("api: Config.Blobs is required")
	case cfg.Engines == nil:
		return nil, errors.New("api: Config.Engines is required")
	}
	h := &handler{cfg: cfg, log: cfg.Logger, origins: map[string]bool{}, feed: cfg.Feed, maxWait: MaxFeedWait}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.feed == nil {
		h.feed = feed.Poller{}
	}
	if p, ok := h.feed.(ParkingFeed); ok && cfg.Detach != nil {
		h.parking = p
	}
	if cfg.MaxWait > 0 {
		h.maxWait = min(cfg.MaxWait, MaxFeedWait)
	}
	for _, o := range cfg.CORSOrigins {
		o = strings.TrimSpace(o)
		switch {
		case o == "*":
			h.anyOrigin = true
		case o != "":
			h.origins[o] = true
		}
	}
	h.auth = cfg.Auth
	if cfg.Token != "" {
		if cfg.Auth != nil {
			return nil, errors.New("api: Config.Token and Config.Auth exclude each other")
		}
		h.auth = newStaticToken(cfg.Token)
	}
	if h.auth != nil {
		h.failures = newFailureLimiter()
	}
	return h, nil
}

type handler struct {
	cfg       Config
	log       *slog.Logger
	origins   map[string]bool
	anyOrigin bool
	// auth is nil when requests need no credentials.
	auth     Authenticator
	failures *failureLimiter
	feed     Feed
	// parking is set when waiting requests can be detached.
	parking ParkingFeed
	maxWait time.Duration
}

// request is the state of one request as it goes through the checks.
type request struct {
	h   *handler
	w   http.ResponseWriter
	r   *http.Request
	rt  *route
	m   match
	ctx context.Context

	sheet string
	// claims are the caller's, once authenticated; nil when the rule
	// does not apply.
	claims *Claims
	held   bool // a change feed request that asked to wait
	// detached: the request waits off its goroutine; its reply, log
	// record and metrics come when the wait ends (detachedWait).
	detached bool
	start    time.Time
	status   int
	written  int
	errType  string
}

func (rq *request) pattern() string {
	if rq.rt == nil {
		return ""
	}
	return rq.rt.pattern
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq := &request{h: h, w: w, r: r, ctx: r.Context(), start: time.Now()}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			rq.recovered(p)
		}
		if !rq.detached {
			rq.logged()
		}
	}()
	h.serve(rq)
}

// recovered logs a panic that cut the request short, and answers 500 if
// nothing was sent yet.
func (rq *request) recovered(p any) {
	rq.h.log.LogAttrs(rq.r.Context(), slog.LevelError, "panic serving a request",
		slog.String("method", rq.r.Method), slog.String("route", rq.pattern()),
		slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
	if rq.status == 0 {
		rq.errType = TypeInternal
		rq.writeJSON(http.StatusInternalServerError,
			newError(http.StatusInternalServerError, TypeInternal, "internal error").appendJSON(nil))
	}
}

// logged counts the request in the metrics and writes its log record.
func (rq *request) logged() {
	h, r := rq.h, rq.r
	elapsed := time.Since(rq.start)
	observeRequest(rq.metricsRoute(), r.Method, rq.status, elapsed)
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", rq.pattern()),
		slog.Int("status", rq.status),
		slog.Duration("duration", elapsed),
		slog.Int("bytes", rq.written),
	}
	if rq.clientGone() {
		attrs = append(attrs, slog.Bool("clientGone", true))
	}
	if rq.sheet != "" {
		attrs = append(attrs, slog.String("sheet", rq.sheet))
	}
	if rq.claims != nil && rq.claims.Subject != "" {
		attrs = append(attrs, slog.String("sub", truncate(rq.claims.Subject, 128)))
	}
	if rq.errType != "" {
		attrs = append(attrs, slog.String("error", rq.errType))
	}
	h.log.LogAttrs(r.Context(), rq.logLevel(rq.status), "request", attrs...)
}

func (h *handler) serve(rq *request) {
	w, r := rq.w, rq.r
	path := r.URL.EscapedPath()
	rq.rt, rq.m = matchRoute(path)

	origin := r.Header.Get("Origin")
	allowed := origin != "" && (h.anyOrigin || h.origins[origin])
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	if allowed {
		if h.anyOrigin {
			hdr.Set("Access-Control-Allow-Origin", "*")
		} else {
			hdr.Set("Access-Control-Allow-Origin", origin)
		}
		hdr.Set("Access-Control-Expose-Headers", "Allow, WWW-Authenticate")
	}

	if r.Method == http.MethodOptions {
		if rq.rt == nil {
			rq.fail(notFound(path))
			return
		}
		allow := rq.rt.allow()
		if allowed && r.Header.Get("Access-Control-Request-Method") != "" {
			hdr.Set("Access-Control-Allow-Methods", allow)
			hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			hdr.Set("Access-Control-Max-Age", "600")
		}
		hdr.Add("Vary", "Access-Control-Request-Method")
		hdr.Add("Vary", "Access-Control-Request-Headers")
		hdr.Set("Allow", allow)
		rq.status = http.StatusNoContent
		w.WriteHeader(http.StatusNoContent)
		return
	}

	// The checks below run in the contract's order: authentication
	// (401), authorization (403), body size (413), route (404) and
	// method (405); validation (400) is each handler's first step.
	if path == "/v1" || strings.HasPrefix(path, "/v1/") {
		if err := h.authenticate(rq); err != nil {
			rq.fail(err)
			return
		}
		if err := h.authorize(rq); err != nil {
			rq.fail(err)
			return
		}
	}

	if r.ContentLength > MaxBodyBytes {
		rq.fail(tooLarge())
		return
	}

	if rq.rt == nil {
		rq.fail(notFound(path))
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
		rq.w = headWriter{w}
	}
	fn := rq.rt.handlers[method]
	if fn == nil {
		hdr.Set("Allow", rq.rt.allow())
		rq.fail(newError(http.StatusMethodNotAllowed, TypeMethodNotAllowed,
			r.Method+" is not allowed on "+rq.rt.pattern+"; allowed: "+rq.rt.allow()))
		return
	}
	fn(h, rq)
}

func notFound(path string) *apiError {
	msg := "no such route: " + truncate(path, 200)
	if strings.HasPrefix(path, "/v1/sheets/") && strings.HasSuffix(path, "/blobs") {
		msg += " (list a sheet's blobs with a trailing slash: .../blobs/)"
	}
	return newError(http.StatusNotFound, TypeNotFound, msg)
}

func tooLarge() *apiError {
	return newError(http.StatusRequestEntityTooLarge, TypePayloadTooLarge,
		"request bodies are limited to "+strconv.Itoa(MaxBodyBytes)+" bytes")
}

// truncate shortens s to at most n bytes, on a character boundary, so
// that no reply or log line repeats a long input in full.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// clientGone reports whether the client hung up (or the server is
// cutting the request at shutdown): whatever failed afterwards is not
// the stores' fault.
func (rq *request) clientGone() bool { return rq.r.Context().Err() != nil }

// logLevel is the level of a reply's log records: ERROR only for what an
// operator must look at, a 5xx (a store failing, a bug) sent to a client
// that is still there. A missing blob, a refused request or a client that
// went away is routine.
func (rq *request) logLevel(status int) slog.Level {
	if status >= 500 && !rq.clientGone() {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// writeJSON sends a JSON reply.
func (rq *request) writeJSON(status int, body []byte) {
	rq.write(status, "application/json", body)
}

func (rq *request) write(status int, contentType string, body []byte) {
	hdr := rq.w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	rq.status = status
	rq.w.WriteHeader(status)
	n, _ := rq.w.Write(body)
	rq.written = n
}

// headWriter drops the body of a reply to HEAD. net/http does that by
// itself, but other front ends (the Lambda proxy) may not.
type headWriter struct{ http.ResponseWriter }

func (headWriter) Write(b []byte) (int, error) { return len(b), nil }
