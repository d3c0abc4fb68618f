package lambdaharness

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/internal/apigw"
)

// The front hands the function the event API Gateway would and writes its
// reply back; a failing function is a 500 as API Gateway answers it.
func TestFront(t *testing.T) {
	var seen events.APIGatewayV2HTTPRequest
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte{0xff, 0x00, 'k'})
	})
	fn := InvokerFunc(func(ctx context.Context, payload []byte) (Result, error) {
		if err := json.Unmarshal(payload, &seen); err != nil {
			return Result{}, err
		}
		switch seen.RawPath {
		case "/fail":
			return Result{Status: 200, FunctionError: "boom"}, nil
		case "/crash":
			return Result{}, errors.New("connection reset")
		case "/garbage":
			return Result{Status: 200, Body: []byte(`"just a string"`)}, nil
		case "/huge":
			b, _ := json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: strings.Repeat("x", MaxFunctionReply)})
			return Result{Status: 200, Body: b}, nil
		}
		b, _ := json.Marshal(apigw.Serve(ctx, h, seen))
		return Result{Status: 200, Body: b}, nil
	})
	srv := httptest.NewServer(&Front{Fn: fn})
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/v1/sheets/s/blobs/a%20b?x=1&x=2", "text/plain", strings.NewReader("\xffbin"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(b) != "\xff\x00k" || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("reply %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if seen.RawPath != "/v1/sheets/s/blobs/a b" || seen.RawQueryString != "x=1&x=2" || seen.QueryStringParameters["x"] != "1,2" ||
		!seen.IsBase64Encoded || seen.RequestContext.HTTP.Method != "POST" || seen.Headers["content-type"] != "text/plain" {
		t.Fatalf("event %+v", seen)
	}
	for path, want := range map[string]int{"/fail": 500, "/crash": 500, "/garbage": 500, "/huge": 500} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || !strings.Contains(string(b), "Internal Server Error") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	resp, err = http.Post(srv.URL+"/big", "application/json", strings.NewReader(strings.Repeat("x", MaxFrontBody+1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 10 MB: %d", resp.StatusCode)
	}
}

// With CORS configured the front answers preflight requests itself, as API
// Gateway does, and the function never sees them; on other requests the
// function's CORS headers are replaced by the configured ones.
func TestFrontCORS(t *testing.T) {
	var calls []string
	fn := InvokerFunc(func(ctx context.Context, payload []byte) (Result, error) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return Result{}, err
		}
		calls = append(calls, ev.RequestContext.HTTP.Method+" "+ev.RawPath)
		b, _ := json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{
			"Content-Type": "application/json", "Access-Control-Allow-Origin": "https://from-the-function.example",
		}, Body: `{}`})
		return Result{Status: 200, Body: b}, nil
	})
	app := "https://app.example"
	srv := httptest.NewServer(&Front{Fn: fn, CORS: StackCORS(app)})
	defer srv.Close()
	do := func(method, path string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	r := do("OPTIONS", "/v1/sheets/s/log", "Origin", app, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	if r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != app ||
		r.Header.Get("Access-Control-Allow-Methods") != "GET,HEAD,POST,OPTIONS" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "authorization") ||
		r.Header.Get("Access-Control-Max-Age") != "3600" {
		t.Errorf("preflight: %d %v", r.StatusCode, r.Header)
	}
	r = do("OPTIONS", "/v1/sheets/s/log", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.StatusCode, r.Header)
	}
	if len(calls) != 0 {
		t.Errorf("preflight requests reached the function: %v", calls)
	}
	// Not a preflight: the function answers.
	do("OPTIONS", "/v1/sheets/s/log")
	r = do("GET", "/v1/sheets/s", "Origin", app)
	if r.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("GET from %s: Access-Control-Allow-Origin %q", app, r.Header.Get("Access-Control-Allow-Origin"))
	}
	r = do("GET", "/v1/sheets/s")
	if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("GET without Origin: the function's Access-Control-Allow-Origin %q got through", v)
	}
	if want := []string{"OPTIONS /v1/sheets/s/log", "GET /v1/sheets/s", "GET /v1/sheets/s"}; !slices.Equal(calls, want) {
		t.Errorf("the function saw %v, want %v", calls, want)
	}
}
