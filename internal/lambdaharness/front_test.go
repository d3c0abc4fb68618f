package lambdaharness

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
	for path, want := range map[string]int{"/fail": 500, "/crash": 500, "/garbage": 500} {
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
