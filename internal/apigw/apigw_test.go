package apigw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/internal/lambdarun"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// fixture is the API Lambda's own handler (lambdarun.APIHandler, i.e.
// pkg/api as the function wires it) over memory stores.
type fixture struct {
	h     http.Handler
	blobs *blobmem.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	blobs := blobmem.New(blobmem.Options{})
	h, err := lambdarun.APIHandler(lambdarun.Stores{Logs: logmem.NewStore(logmem.Options{}), Blobs: blobs},
		lambdarun.Config{SnapshotInterval: 5, CacheEngines: 8, CacheBytes: 1 << 20, CORSOrigins: []string{"http://app.example"}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, blobs: blobs}
}

func (f *fixture) writeBlob(t *testing.T, sheet string, path []string, data []byte) {
	t.Helper()
	ctx := context.Background()
	dir, err := f.blobs.Sheet(sheet)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range path[:len(path)-1] {
		if dir, err = dir.GetDir(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.WriteBlob(ctx, path[len(path)-1], data); err != nil {
		t.Fatal(err)
	}
}

// event is a minimal payload-2.0 event as API Gateway sends it.
func event(method, rawPath, rawQuery string, headers map[string]string, body string) events.APIGatewayV2HTTPRequest {
	if headers == nil {
		headers = map[string]string{}
	}
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: rawPath, RawQueryString: rawQuery,
		Headers: headers, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "abc.execute-api.us-east-1.amazonaws.com", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: rawPath, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
		},
	}
}

func (f *fixture) serve(t *testing.T, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	// Through JSON both ways, as the Lambda runtime does.
	wire, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var in events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(wire, &in); err != nil {
		t.Fatal(err)
	}
	resp, err := apigw.Handler(f.h)(context.Background(), in)
	if err != nil {
		t.Fatalf("the handler returned a function error: %v", err)
	}
	wire, err = json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var out events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(wire, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func body(t *testing.T, r events.APIGatewayV2HTTPResponse) []byte {
	t.Helper()
	if !r.IsBase64Encoded {
		return []byte(r.Body)
	}
	b, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errType(t *testing.T, r events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var e struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body(t, r), &e); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	return e.Type
}

func TestAppendReadAndQueryStrings(t *testing.T) {
	f := newFixture(t)
	jsonHdr := map[string]string{"content-type": "application/json"}
	for i := range 3 {
		b := `{"sequenceId":"` + string(rune('0'+i)) + `","entry":{"type":"SetCellValueAndFormat","row":` + string(rune('0'+i)) + `,"column":0,"value":"v"}}`
		r := f.serve(t, event("POST", "/v1/sheets/s1/log", "", jsonHdr, b))
		if r.StatusCode != 200 || r.Headers["Content-Type"] != "application/json" || r.IsBase64Encoded {
			t.Fatalf("append %d: %d %v %q", i, r.StatusCode, r.Headers, r.Body)
		}
	}
	// A base64 body (as API Gateway sends for some content types).
	b64 := base64.StdEncoding.EncodeToString([]byte(`{"sequenceId":3,"entry":{"type":"SetCellValueAndFormat","row":3,"column":1,"value":true}}`))
	ev := event("POST", "/v1/sheets/s1/log", "", jsonHdr, b64)
	ev.IsBase64Encoded = true
	if r := f.serve(t, ev); r.StatusCode != 200 {
		t.Fatalf("base64 append: %d %s", r.StatusCode, r.Body)
	}
	// Query string from rawQueryString.
	r := f.serve(t, event("GET", "/v1/sheets/s1/log", "start=1&end=3", nil, ""))
	var page struct {
		Start   string            `json:"startSequenceId"`
		End     string            `json:"endSequenceId"`
		Entries []json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(body(t, r), &page); err != nil || r.StatusCode != 200 || page.Start != "1" || page.End != "3" || len(page.Entries) != 2 {
		t.Fatalf("GET log?start=1&end=3: %d %s", r.StatusCode, r.Body)
	}
	// Without rawQueryString the parsed parameters are used.
	ev = event("GET", "/v1/sheets/s1/log", "", nil, "")
	ev.QueryStringParameters = map[string]string{"start": "2"}
	r = f.serve(t, ev)
	if err := json.Unmarshal(body(t, r), &page); err != nil || page.Start != "2" || len(page.Entries) != 2 {
		t.Fatalf("GET log with queryStringParameters: %d %s", r.StatusCode, r.Body)
	}
	// Cells with a range in the query.
	r = f.serve(t, event("GET", "/v1/sheets/s1/cells", "range=A1%3AB4", nil, ""))
	if r.StatusCode != 200 || !strings.Contains(r.Body, `"B4":{"value":true}`) {
		t.Fatalf("cells: %d %s", r.StatusCode, r.Body)
	}
	// A repeated parameter reaches the handler as two values (400 there).
	if r := f.serve(t, event("GET", "/v1/sheets/s1/log", "start=1&start=2", nil, "")); r.StatusCode != 400 || errType(t, r) != "ValidationError" {
		t.Fatalf("repeated parameter: %d %s", r.StatusCode, r.Body)
	}
}

func TestErrorStatuses(t *testing.T) {
	f := newFixture(t)
	jsonHdr := map[string]string{"content-type": "application/json"}
	for _, c := range []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		typ    string
	}{
		{"no route", event("GET", "/nope", "", nil, ""), 404, "NotFound"},
		{"method", event("DELETE", "/v1/sheets/s1/log", "", nil, ""), 405, "MethodNotAllowed"},
		{"bad sheet", event("GET", "/v1/sheets/a%20b", "", nil, ""), 400, "ValidationError"},
		{"conflict", event("POST", "/v1/sheets/s2/log", "", jsonHdr,
			`{"sequenceId":"5","entry":{"type":"SetCellValueAndFormat","row":0,"column":0}}`), 409, "ConflictError"},
		{"too large", event("POST", "/v1/sheets/s2/log", "", jsonHdr, strings.Repeat(" ", 70<<10)), 413, "PayloadTooLarge"},
		{"missing blob", event("GET", "/v1/sheets/s2/blobs/nothing", "", nil, ""), 404, "StorageError"},
		{"range", event("GET", "/v1/sheets/s2/log", "start=7", nil, ""), 416, "RangeError"},
		{"malformed base64", func() events.APIGatewayV2HTTPRequest {
			e := event("POST", "/v1/sheets/s2/log", "", jsonHdr, "***")
			e.IsBase64Encoded = true
			return e
		}(), 400, "ValidationError"},
	} {
		r := f.serve(t, c.ev)
		if r.StatusCode != c.status || errType(t, r) != c.typ {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.StatusCode, r.Body, c.status, c.typ)
		}
	}
	// Conflict replies carry the next id.
	r := f.serve(t, event("POST", "/v1/sheets/s2/log", "", jsonHdr, `{"sequenceId":"5","entry":{"type":"SetCellValueAndFormat","row":0,"column":0}}`))
	if !strings.Contains(r.Body, `"nextSequenceId":"0"`) {
		t.Errorf("conflict body %s", r.Body)
	}
}

// Blob bytes arrive intact whatever they hold: binary and text blobs
// both travel base64-encoded (application/octet-stream), HEAD has no
// body, and directories list as JSON.
func TestBlobs(t *testing.T) {
	f := newFixture(t)
	bin := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0x80}
	f.writeBlob(t, "s1", []string{"5", "tiles", "0-0-100-100"}, bin)
	f.writeBlob(t, "s1", []string{"5", "index"}, []byte(`{"rowCount":1}`))
	f.writeBlob(t, "s1", []string{"odd", "a+b ü#;@ x"}, []byte("x"))
	f.writeBlob(t, "s1", []string{"odd", "A"}, []byte("A"))
	f.writeBlob(t, "s1", []string{"odd", "%41"}, []byte("not addressable"))

	r := f.serve(t, event("GET", "/v1/sheets/s1/blobs/5/tiles/0-0-100-100", "", nil, ""))
	if r.StatusCode != 200 || !r.IsBase64Encoded || r.Headers["Content-Type"] != "application/octet-stream" || !bytes.Equal(body(t, r), bin) {
		t.Fatalf("binary blob: %d %v base64=%v %q", r.StatusCode, r.Headers, r.IsBase64Encoded, body(t, r))
	}
	r = f.serve(t, event("GET", "/v1/sheets/s1/blobs/5/index", "", nil, ""))
	if r.StatusCode != 200 || !bytes.Equal(body(t, r), []byte(`{"rowCount":1}`)) {
		t.Fatalf("index: %d %q", r.StatusCode, body(t, r))
	}
	r = f.serve(t, event("HEAD", "/v1/sheets/s1/blobs/5/index", "", nil, ""))
	if r.StatusCode != 200 || r.Body != "" {
		t.Fatalf("HEAD: %d %q", r.StatusCode, r.Body)
	}
	r = f.serve(t, event("GET", "/v1/sheets/s1/blobs/5/", "", nil, ""))
	if r.StatusCode != 200 || r.IsBase64Encoded || !strings.Contains(r.Body, `"index"`) || !strings.Contains(r.Body, `"tiles"`) {
		t.Fatalf("listing: %d %s", r.StatusCode, r.Body)
	}
	if r := f.serve(t, event("GET", "/v1/sheets/s1/blobs/5", "", nil, "")); r.StatusCode != 409 || errType(t, r) != "BlobWrongKindError" {
		t.Fatalf("a directory read as a blob: %d %s", r.StatusCode, r.Body)
	}
	// A name that needs escaping, as a function URL (escaped) and as an
	// HTTP API (decoded) deliver it.
	for _, ev := range []events.APIGatewayV2HTTPRequest{
		functionURL(event("GET", "/v1/sheets/s1/blobs/odd/a+b%20%C3%BC%23;@%20x", "", nil, "")),
		event("GET", "/v1/sheets/s1/blobs/odd/a+b ü#;@ x", "", nil, ""),
	} {
		if r := f.serve(t, ev); r.StatusCode != 200 || string(body(t, r)) != "x" {
			t.Errorf("GET %q: %d %s", ev.RawPath, r.StatusCode, r.Body)
		}
	}
	// A name holding "%" or "?" is refused however it arrives; from an
	// HTTP API a "%" is a literal percent (the gateway decoded the rest),
	// never an escape: "%41" is not "A".
	for _, ev := range []events.APIGatewayV2HTTPRequest{
		functionURL(event("GET", "/v1/sheets/s1/blobs/odd/%2541", "", nil, "")),
		functionURL(event("GET", "/v1/sheets/s1/blobs/odd/a%3Fb", "", nil, "")),
		event("GET", "/v1/sheets/s1/blobs/odd/%41", "", nil, ""),
		event("GET", "/v1/sheets/s1/blobs/odd/a?b", "", nil, ""),
		event("GET", "/v1/sheets/s1/blobs/odd/100%", "", nil, ""),
	} {
		if r := f.serve(t, ev); r.StatusCode != 400 || errType(t, r) != "InvalidBlobNameError" {
			t.Errorf("GET %q (function URL %v): %d %s", ev.RawPath, apigw.IsFunctionURL(ev), r.StatusCode, r.Body)
		}
	}
	// An escaped slash stays inside its segment and is refused.
	if r := f.serve(t, functionURL(event("GET", "/v1/sheets/s1/blobs/a%2Fb", "", nil, ""))); r.StatusCode != 400 || errType(t, r) != "InvalidBlobNameError" {
		t.Errorf("%%2F: %d %s", r.StatusCode, r.Body)
	}
}

// functionURL makes ev a function URL's: same payload, its domain.
func functionURL(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPRequest {
	ev.RequestContext.DomainName = "abc123.lambda-url.us-east-1.on.aws"
	return ev
}

// GatewayPath reproduces live captures of what an API Gateway HTTP API
// hands the function for a path (github.com/hotsock/voker,
// vokerhttp/testdata/ingress-paths.json): decoded, cut at a decoded "?",
// decoded again; refused when the second decoding fails.
func TestGatewayPath(t *testing.T) {
	for sent, want := range map[string]string{
		"/capture/plain":                             "/capture/plain",
		"/capture/space%20value":                     "/capture/space value",
		"/capture/question%3Fvalue":                  "/capture/question",
		"/capture/percent%25done":                    "", // refused
		"/capture/hash%23value":                      "/capture/hash#value",
		"/capture/slash%2Fvalue":                     "/capture/slash/value",
		"/capture/unicode-%CE%BB-%E4%B8%96%E7%95%8C": "/capture/unicode-λ-世界",
		"/capture/literal%252Fvalue":                 "/capture/literal/value",
		"/capture/literal%253Fvalue":                 "/capture/literal?value",
		"/capture/literal%2525value":                 "/capture/literal%value",
	} {
		got, ok := apigw.GatewayPath(sent)
		if ok != (want != "") || got != want {
			t.Errorf("GatewayPath(%q) = %q, %v; want %q", sent, got, ok, want)
		}
	}
}

func TestHeadersAndCORS(t *testing.T) {
	f := newFixture(t)
	r := f.serve(t, event("OPTIONS", "/v1/sheets/s1/log", "", map[string]string{
		"origin": "http://app.example", "access-control-request-method": "POST",
		"access-control-request-headers": "content-type,authorization",
	}, ""))
	if r.StatusCode/100 != 2 || r.Headers["Access-Control-Allow-Origin"] != "http://app.example" {
		t.Fatalf("preflight: %d %v", r.StatusCode, r.Headers)
	}
	r = f.serve(t, event("GET", "/v1/sheets/s1", "", map[string]string{"origin": "http://evil.example"}, ""))
	if r.StatusCode != 200 || r.Headers["Access-Control-Allow-Origin"] != "" {
		t.Fatalf("other origin: %d %v", r.StatusCode, r.Headers)
	}
}

// Cookies and repeated headers travel both ways; a handler that writes
// nothing answers 200; the invocation's context reaches the handler.
func TestCookiesHeadersStatusContext(t *testing.T) {
	deadline := time.Now().Add(time.Minute)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := r.Context().Deadline(); !ok || !d.Equal(deadline) {
			t.Errorf("the request context has deadline %v, %v", d, ok)
		}
		if r.URL.Path == "/empty" {
			return
		}
		got := map[string]any{"cookie": r.Header.Get("Cookie"), "x": r.Header.Values("X-Multi"),
			"host": r.Host, "remote": r.RemoteAddr, "query": r.URL.Query()}
		w.Header().Add("Set-Cookie", "a=1; Path=/")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Add("X-Out", "one")
		w.Header().Add("X-Out", "two")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(got)
	})
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ev := event("GET", "/x", "q=1&q=2", map[string]string{"x-multi": "a,b", "host": "api.example"}, "")
	ev.Cookies = []string{"c1=v1", "c2=v2"}
	resp := apigw.Serve(ctx, h, ev)
	var got map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 || got["cookie"] != "c1=v1; c2=v2" || got["host"] != "api.example" || got["remote"] != "192.0.2.1" {
		t.Errorf("request seen as %v (status %d)", got, resp.StatusCode)
	}
	if q := got["query"].(map[string]any)["q"].([]any); len(q) != 2 {
		t.Errorf("query %v", got["query"])
	}
	if strings.Join(resp.Cookies, "|") != "a=1; Path=/|b=2" || resp.Headers["X-Out"] != "one, two" {
		t.Errorf("response cookies %v headers %v", resp.Cookies, resp.Headers)
	}
	if r := apigw.Serve(ctx, h, event("GET", "/empty", "", nil, "")); r.StatusCode != 200 || r.Body != "" {
		t.Errorf("empty handler: %d %q", r.StatusCode, r.Body)
	}
}

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/sheets/s/blobs/a":         "/v1/sheets/s/blobs/a",
		"/a%2Fb":                       "/a%2Fb",
		"/100%":                        "/100%25",
		"/a b?c#d":                     "/a%20b%3Fc%23d",
		"/ü":                           "/%C3%BC",
		"/%zz":                         "/%25zz",
		"/-._~!$&'()*+,;=:@":           "/-._~!$&'()*+,;=:@",
		"/already%20escaped%C3%BC%25x": "/already%20escaped%C3%BC%25x",
	} {
		if got := apigw.EscapePath(in); got != want {
			t.Errorf("EscapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The front's half: a plain HTTP request becomes an event, the handler's
// reply becomes the same HTTP response as serving the request directly.
func TestFrontRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.writeBlob(t, "s1", []string{"b"}, []byte{0xff, 0, 'z'})
	for _, style := range []apigw.PathStyle{apigw.DecodedPath, apigw.EscapedPath} {
		front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			ev := apigw.Event(r, b, style)
			if err := apigw.WriteResponse(w, apigw.Serve(r.Context(), f.h, ev)); err != nil {
				t.Error(err)
			}
		})
		for _, c := range []struct{ method, target, body string }{
			{"POST", "/v1/sheets/s1/log", `{"sequenceId":"0","entry":{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1}}`},
			{"GET", "/v1/sheets/s1/log?start=0", ""},
			{"GET", "/v1/sheets/s1/blobs/b", ""},
			{"GET", "/v1/sheets/s1/blobs/", ""},
			{"GET", "/v1/sheets/s1/cells?range=A1", ""},
			{"GET", "/nope", ""},
		} {
			if c.method == "POST" && style == apigw.EscapedPath {
				c.body = strings.Replace(c.body, `"0"`, `"1"`, 1)
			}
			do := func(h http.Handler) *httptest.ResponseRecorder {
				req := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			got := do(front)
			if c.method == "POST" {
				if got.Code != 200 {
					t.Errorf("%v %s %s: %d %s", style, c.method, c.target, got.Code, got.Body)
				}
				continue
			}
			want := do(f.h)
			if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) ||
				got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("%v %s %s: front %d %q, direct %d %q", style, c.method, c.target,
					got.Code, got.Body, want.Code, want.Body)
			}
		}
	}
}
