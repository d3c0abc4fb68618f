// Package client is the Go thin client of sheetlog's HTTP API (v1): a
// client with no local storage that reads a sheet's event log and blobs
// over HTTP, appends entries, and never requests workflows.
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithToken(token))
//	eng, err := spreadsheet.New(sheet, c.Log(sheet), c.Blobs(sheet), client.Host, spreadsheet.Options{})
//
// gives an engine that loads the newest snapshot plus the tail of the log,
// reads cells and appends, exactly as it would over local stores.
//
// # What a thin client cannot do
//
// The API never lets a client write metadata or blobs: Log.SetMetadata,
// Log.Truncate, appends of entries that carry metadata, and every blob
// write fail with a *errs.ValidationError that also matches ErrReadOnly
// (errors.Is), and send nothing. A validation error, because the call
// is one the contract refuses whatever the log holds: it is definite
// (nothing was written) and retrying cannot help. The engine never asks
// for them through Host.
//
// # Errors
//
// Error replies are decoded into the contract's types (package errs):
// ConflictError with NextSequenceID, RangeError, StorageError with its
// StatusCode, ValidationError, InvalidBlobNameError, BlobWrongKindError,
// NoContinuationError, all matchable with errors.As. The API's own
// refusals (401 Unauthorized, 403 Forbidden, 404 NotFound, 405, 413
// PayloadTooLarge, 500) are an *Error with the reply's type tag.
//
// # Retries
//
// 429 and 503 replies (and 502 and 504 from a gateway), and transport
// failures, are retried with capped, jittered exponential backoff that
// honours the context and a Retry-After header. A read is simply sent
// again. An append is never sent twice blindly: after a reply that may
// have been lost, the client reads the log at the append's id and decides
// whether the entries there are its own, someone else's, or absent (see
// Log.AddEntries).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sheetlog/sheetlog/internal/ctxsleep"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// Client talks to one deployment of the API. It is safe for concurrent
// use.
type Client struct {
	base  string // without a trailing slash
	hc    *http.Client
	auth  Authorizer
	retry Retry
	agent string
	// timeout bounds one request (the wait of a change-feed request is
	// added to it).
	timeout time.Duration
}

// Retry is the backoff policy of retried requests: attempt n (from 0)
// waits a random time in [0, min(Cap, Base·2ⁿ)), or the server's
// Retry-After when that is longer (capped by MaxRetryAfter).
type Retry struct {
	// Attempts is the most requests made for one call (default 8).
	Attempts int
	// Base and Cap shape the backoff (defaults 50 ms and 5 s).
	Base, Cap time.Duration
	// MaxRetryAfter caps a server's Retry-After (default 30 s).
	MaxRetryAfter time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 8
	}
	if r.Base <= 0 {
		r.Base = 50 * time.Millisecond
	}
	if r.Cap <= 0 {
		r.Cap = 5 * time.Second
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = 30 * time.Second
	}
	return r
}

// backoff is the wait before retry attempt n (from 0): full jitter under
// an exponential ceiling.
func (r Retry) backoff(n int, retryAfter time.Duration) time.Duration {
	ceil := r.Cap
	if n < 30 {
		ceil = min(r.Cap, r.Base<<n)
	}
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	return max(d, min(retryAfter, r.MaxRetryAfter))
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc (default: a client of its own
// with no overall timeout; each request is bounded by WithTimeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithToken sends "Authorization: Bearer token" (the single-machine
// server's token, or a JWT for a JWT deployment).
func WithToken(token string) Option {
	return func(c *Client) {
		if token != "" {
			c.auth = Bearer(token)
		}
	}
}

// WithAuth authorizes every request with a.
func WithAuth(a Authorizer) Option { return func(c *Client) { c.auth = a } }

// WithRetry sets the retry policy; zero fields keep their defaults.
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r.withDefaults() } }

// WithTimeout bounds each request (default 60 s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// New returns a client of the API at baseURL (scheme and host, and the
// path prefix of a deployment behind a stage, without /v1).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q is not an http(s) URL", baseURL)
	}
	c := &Client{
		base:    u.String(),
		hc:      &http.Client{},
		retry:   Retry{}.withDefaults(),
		agent:   "sheetlog-client",
		timeout: 60 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	hc := *c.hc
	hc.CheckRedirect = withoutCredentialsElsewhere(hc.CheckRedirect)
	c.hc = &hc
	return c, nil
}

// withoutCredentialsElsewhere wraps an http.Client's CheckRedirect (nil:
// the default policy, at most 10 redirects) so that a redirect to another
// host carries none of the API's credentials. net/http drops
// Authorization there, but not a SigV4 signature's X-Amz-Date,
// X-Amz-Security-Token and X-Amz-Content-Sha256; and the AWS deployment
// redirects a large blob's read to a presigned S3 URL (docs/api.md), which
// S3 refuses (403 AccessDenied, "There were headers present in the
// request which were not signed") when it comes with x-amz- headers the
// URL did not sign (see https://github.com/rustfs/rustfs/pull/7425,
// https://github.com/agilord/aws_client/issues/238).
func withoutCredentialsElsewhere(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del("Authorization")
			for k := range req.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
					req.Header.Del(k)
				}
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// BaseURL is the base URL the client talks to.
func (c *Client) BaseURL() string { return c.base }

// Error is an error reply whose type is not one of package errs: the
// API's own refusals, such as Unauthorized (401), Forbidden (403),
// NotFound (404, no such route), MethodNotAllowed (405),
// PayloadTooLarge (413) and InternalError (500), or a reply that is not
// the API's JSON at all (a proxy's page).
type Error struct {
	// Status is the HTTP status of the reply.
	Status int
	// Type is the reply's "type" ("" when the body was not the API's
	// JSON).
	Type    string
	Message string
}

// Type tags of the API's own errors.
const (
	TypeUnauthorized     = "Unauthorized"
	TypeForbidden        = "Forbidden"
	TypeNotFound         = "NotFound"
	TypeMethodNotAllowed = "MethodNotAllowed"
	TypePayloadTooLarge  = "PayloadTooLarge"
)

func (e *Error) Error() string {
	switch {
	case e.Type == TypeForbidden:
		return "Forbidden: not allowed on this sheet: " + e.Message
	case e.Type != "":
		return e.Type + ": " + e.Message
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

// TypeOf is the type tag of an error of this package or of package errs
// ("ConflictError", "Unauthorized", ...), or "" for any other error.
func TypeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Type
	}
	return errs.TypeOf(err)
}

// ErrReadOnly is matched (errors.Is) by the error of every call a thin
// client refuses: metadata and blob writes, truncation, appends of
// entries with metadata.
var ErrReadOnly = errors.New("a thin client never writes metadata or blobs")

type readOnlyError struct{ errs.ValidationError }

func (e *readOnlyError) Unwrap() []error { return []error{&e.ValidationError, ErrReadOnly} }

func readOnly(what string) error {
	return &readOnlyError{errs.ValidationError{Message: what + ": " + ErrReadOnly.Error() + " (the HTTP API does not offer it)"}}
}

// request is one API call, sent (and re-sent) by do.
type request struct {
	method string
	path   string // escaped, from /v1 or /healthz
	query  url.Values
	body   []byte
	// wait is added to the request's timeout (change feed).
	wait time.Duration
}

// reply is a response read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// transient reports whether a failure is worth another try: throttling,
// an unavailable store or gateway, or a transport failure.
func transient(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// heldBack reports a 401 with Retry-After: the server's limiter of
// failed authentications is holding back the caller's address (it
// answers so whatever the credentials, right ones included), so the
// request is sent again once the wait is over. A 401 without it is a
// refused token.
func heldBack(r reply) bool {
	return r.status == http.StatusUnauthorized && r.header.Get("Retry-After") != ""
}

// send makes one attempt. A transport failure is returned as err with
// the reply's zero value; sent reports whether the request may have
// reached the server (a refused connection did not).
func (c *Client) send(ctx context.Context, rq request) (r reply, sent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+rq.wait)
	defer cancel()
	u := c.base + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return r, false, err
	}
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if c.auth != nil {
		if err := c.auth.Authorize(ctx, req, rq.body); err != nil {
			return r, false, fmt.Errorf("authorizing the request: %w", err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return r, !refused(err), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, true, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, true, nil
}

// refused reports whether a transport error proves the request never
// left: the connection was refused or could not be made.
func refused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// do sends an idempotent request (a read), retrying transient failures,
// and returns a 2xx reply or the decoded error.
func (c *Client) do(ctx context.Context, rq request) (reply, error) {
	if err := ctx.Err(); err != nil {
		return reply{}, err
	}
	var last error
	for attempt := 0; attempt < c.retry.Attempts; attempt++ {
		r, _, err := c.send(ctx, rq)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return reply{}, contextError(ctx, err)
		case err != nil:
			last = errs.Storage(err, "%s %s", rq.method, rq.path)
		case r.status >= 200 && r.status < 300:
			return r, nil
		case transient(r.status) || heldBack(r):
			last, wait = decodeError(r), retryAfter(r.header)
		default:
			return reply{}, decodeError(r)
		}
		if attempt+1 < c.retry.Attempts {
			if err := ctxsleep.Sleep(ctx, c.retry.backoff(attempt, wait)); err != nil {
				return reply{}, contextError(ctx, last)
			}
		}
	}
	return reply{}, last
}

// contextError is the error of a call whose context ended: a
// StorageError wrapping the context's error, so that both errors.Is(err,
// context.Canceled) and the contract's "outcome unknown" reading hold.
func contextError(ctx context.Context, cause error) error {
	if cause == nil {
		cause = ctx.Err()
	}
	return &errs.StorageError{Message: "request ended by its context: " + cause.Error(), Err: ctx.Err()}
}

// apiError is an error reply's JSON.
type apiError struct {
	Type           string          `json:"type"`
	Message        string          `json:"message"`
	NextSequenceID json.RawMessage `json:"nextSequenceId"`
	StatusCode     int             `json:"statusCode"`
}

// decodeError turns an error reply into the contract's error type.
func decodeError(r reply) error {
	var e apiError
	if json.Unmarshal(r.body, &e) != nil || e.Type == "" {
		msg := strings.TrimSpace(string(r.body))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = http.StatusText(r.status)
		}
		if transient(r.status) || r.status >= 500 {
			return &errs.StorageError{StatusCode: r.status, Message: msg}
		}
		return &Error{Status: r.status, Message: msg}
	}
	switch e.Type {
	case errs.TypeConflict:
		next, ok := parseID(e.NextSequenceID)
		if !ok {
			return &Error{Status: r.status, Type: e.Type, Message: e.Message + " (the reply has no valid nextSequenceId)"}
		}
		return &errs.ConflictError{NextSequenceID: next, Message: e.Message}
	case errs.TypeRange:
		return &errs.RangeError{Message: e.Message}
	case errs.TypeStorage:
		code := e.StatusCode
		if code == 0 {
			code = r.status
		}
		return &errs.StorageError{StatusCode: code, Message: e.Message}
	case errs.TypeValidation:
		return &errs.ValidationError{Message: e.Message}
	case errs.TypeInvalidBlobName:
		return &errs.InvalidBlobNameError{Message: e.Message}
	case errs.TypeBlobWrongKind:
		return &errs.BlobWrongKindError{Message: e.Message}
	case errs.TypeNoContinuation:
		return &errs.NoContinuationError{Message: e.Message}
	}
	return &Error{Status: r.status, Type: e.Type, Message: e.Message}
}

// parseID reads a sequence id given as a JSON string of digits or a JSON
// integer.
func parseID(raw json.RawMessage) (uint64, bool) {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// sheetPath is the escaped path of a sheet.
func sheetPath(sheet string) string { return "/v1/sheets/" + url.PathEscape(sheet) }
