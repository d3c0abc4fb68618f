// Package apigw carries HTTP through Lambda: it serves an http.Handler to
// API Gateway HTTP API events (payload format 2.0, also what a Lambda
// function URL sends), and, for the end-to-end harness, builds such
// events from plain HTTP requests and writes their responses back.
//
// It is a small adapter of its own rather than aws-lambda-go-api-proxy
// because the details matter to the sheetlog API and are tested here:
//
//   - The path. The API routes on the escaped path (a "%2F" inside a
//     blob name must stay inside its segment). Function URLs deliver
//     rawPath as the client escaped it: it is kept, with only what may
//     not appear literally in an escaped path escaped. HTTP APIs deliver
//     it decoded (GatewayPath says how): there every byte that is not a
//     path character, "%" included, is escaped, so the handler sees the
//     names the gateway handed over, a literal "%" included (which the
//     API then refuses). What the gateway decoded or cut off is lost:
//     "/a%2Fb" arrives as "/a/b"; docs/lambda.md lists what that means
//     for blob names.
//   - The body. Responses are base64-encoded unless they are text
//     (JSON, text/*, YAML) and valid UTF-8, so blob bytes arrive intact.
//   - Status. A handler that writes nothing answers 200, as net/http
//     does; the proxy library fails such a response.
//   - Headers. Multi-valued headers are joined with ", " and Set-Cookie
//     goes to cookies; request headers are passed through unsplit.
package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Handler returns the Lambda handler that serves h.
func Handler(h http.Handler, opts ...Option) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		for _, f := range o.contexts {
			ctx = f(ctx, ev)
		}
		return Serve(ctx, h, ev), nil
	}
}

// Serve runs one event through h. A malformed event (a body that is not
// the base64 it claims) gets a 400 in the API's error format, not a
// function error: the caller sent it.
func Serve(ctx context.Context, h http.Handler, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	req, err := Request(ctx, ev)
	if err != nil {
		body, _ := json.Marshal(map[string]string{"type": "ValidationError", "message": err.Error()})
		return events.APIGatewayV2HTTPResponse{
			StatusCode: http.StatusBadRequest,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       string(body),
		}
	}
	w := NewResponseWriter()
	h.ServeHTTP(w, req)
	return w.Response(req.Method)
}

// Request converts an event into the request it stands for, with ctx
// (the invocation's, carrying its deadline) as its context.
func Request(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	method := strings.ToUpper(ev.RequestContext.HTTP.Method)
	if method == "" {
		return nil, fmt.Errorf("the event has no requestContext.http.method")
	}
	var body []byte
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("the request body is not valid base64: %v", err)
		}
		body = b
	} else {
		body = []byte(ev.Body)
	}
	raw := ev.RawPath
	if raw == "" {
		raw = ev.RequestContext.HTTP.Path
	}
	if !strings.HasPrefix(raw, "/") {
		raw = "/" + raw
	}
	escaped := EscapePath(raw)
	if !IsFunctionURL(ev) {
		escaped = escapeDecoded(raw)
	}
	path, err := url.PathUnescape(escaped)
	if err != nil { // cannot happen: both leave only valid escapes
		return nil, fmt.Errorf("path %q: %v", raw, err)
	}
	u := &url.URL{Path: path, RawPath: escaped, RawQuery: ev.RawQueryString}
	if u.RawQuery == "" && len(ev.QueryStringParameters) > 0 {
		q := url.Values{}
		for k, v := range ev.QueryStringParameters {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}

	req, err := http.NewRequestWithContext(ctx, method, "/", nil)
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.RequestURI = u.RequestURI()
	for k, v := range ev.Headers {
		req.Header.Add(k, v)
	}
	if len(ev.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	req.Host = req.Header.Get("Host")
	if req.Host == "" {
		req.Host = ev.RequestContext.DomainName
	}
	req.Header.Del("Host")
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	if p := ev.RequestContext.HTTP.Protocol; p != "" {
		if major, minor, ok := http.ParseHTTPVersion(p); ok {
			req.Proto, req.ProtoMajor, req.ProtoMinor = p, major, minor
		}
	}
	// The whole body is here: its length is known whatever the header
	// said, and the transfer encoding is history.
	req.Header.Del("Transfer-Encoding")
	req.ContentLength = int64(len(body))
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	} else {
		req.Body = http.NoBody
	}
	return req, nil
}

// IsFunctionURL reports whether ev comes from a Lambda function URL
// (whose domain is <url-id>.lambda-url.<region>.on.aws), which sends
// rawPath escaped; an HTTP API sends it decoded.
func IsFunctionURL(ev events.APIGatewayV2HTTPRequest) bool {
	return strings.Contains(ev.RequestContext.DomainName, ".lambda-url.")
}

// GatewayPath is the rawPath an API Gateway HTTP API hands the function
// for a request whose escaped path is escaped, as live captures of HTTP
// APIs show (github.com/hotsock/voker, vokerhttp/testdata/ingress-paths.json):
// the path is percent-decoded; a "?" that decoding produced ends it (the
// rest is dropped); what is left is decoded a second time ("%252F"
// arrives as "/", "%2525" as "%"). A path whose second decoding fails
// ("%25zz") is refused with 400 before any function runs: ok is false.
func GatewayPath(escaped string) (rawPath string, ok bool) {
	once, err := url.PathUnescape(escaped)
	if err != nil {
		return "", false
	}
	if i := strings.IndexByte(once, '?'); i >= 0 {
		once = once[:i]
	}
	twice, err := url.PathUnescape(once)
	if err != nil {
		return "", false
	}
	return twice, true
}

// escapeDecoded escapes a decoded path: every byte that is not a path
// character is percent-encoded, "%" included.
func escapeDecoded(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if c := p[i]; keepInPath(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// EscapePath makes p a valid escaped URL path while changing nothing that
// already is one: bytes that may appear literally in an escaped path, and
// "%" followed by two hex digits, are kept; every other byte is
// percent-encoded.
func EscapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			b.WriteByte(c)
		case keepInPath(c):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// keepInPath: RFC 3986 pchar (unreserved, sub-delims, ":" and "@") and the
// segment separator.
func keepInPath(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

// ResponseWriter buffers a response for an API Gateway reply.
type ResponseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

// NewResponseWriter returns an empty writer.
func NewResponseWriter() *ResponseWriter { return &ResponseWriter{header: http.Header{}} }

// Header implements http.ResponseWriter.
func (w *ResponseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter: the first final status
// wins, as with net/http.
func (w *ResponseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

// Write implements http.ResponseWriter.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// Response is what was written, as an API Gateway reply to a method
// request (HEAD replies carry no body).
func (w *ResponseWriter) Response(method string) events.APIGatewayV2HTTPResponse {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range w.header {
			if !yield(k) {
				return
			}
		}
	}) {
		vs := w.header[k]
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	body := w.body.Bytes()
	if method == http.MethodHead {
		body = nil
	}
	if len(body) > 0 {
		if _, ok := resp.Headers["Content-Type"]; !ok {
			resp.Headers["Content-Type"] = http.DetectContentType(body)
		}
		if IsText(resp.Headers["Content-Type"], body) {
			resp.Body = string(body)
		} else {
			resp.Body = base64.StdEncoding.EncodeToString(body)
			resp.IsBase64Encoded = true
		}
	}
	return resp
}

// IsText reports whether a body of that content type can travel as a
// JSON string unchanged: textual types whose bytes are valid UTF-8.
func IsText(contentType string, body []byte) bool {
	ct := strings.ToLower(contentType)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	text := strings.HasPrefix(ct, "text/") || strings.HasSuffix(ct, "json") || strings.HasSuffix(ct, "+xml") ||
		strings.HasSuffix(ct, "yaml") || ct == "application/xml" || ct == "application/javascript"
	return text && utf8.Valid(body)
}
