package lambdarun_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/internal/lambdarun"
	memblob "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	memlog "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/webui"
)

// The API Lambda serves the web page in front of the API, through the
// API Gateway adapter, as the single-machine server does. (Over memory
// stores: what is tested is the handler, not DynamoDB or S3.)
func TestAPIHandlerServesThePage(t *testing.T) {
	stores := lambdarun.Stores{Logs: memlog.NewStore(memlog.Options{}), Blobs: memblob.New(memblob.Options{})}
	h, err := lambdarun.APIHandler(stores, lambdarun.Config{SnapshotInterval: 100}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, hdr map[string]string) events.APIGatewayV2HTTPResponse {
		raw, query, _ := strings.Cut(path, "?")
		ev := events.APIGatewayV2HTTPRequest{RawPath: raw, RawQueryString: query, Headers: hdr}
		ev.RequestContext.HTTP.Method = "GET"
		ev.RequestContext.HTTP.Path = raw
		return apigw.Serve(context.Background(), h, ev)
	}
	for _, p := range webui.Paths() {
		res := get(p, nil)
		if res.StatusCode != 200 || res.Headers["Content-Security-Policy"] != webui.ContentSecurityPolicy ||
			res.Headers["X-Content-Type-Options"] != "nosniff" || res.Headers["Etag"] == "" {
			t.Errorf("GET %s: %d %v", p, res.StatusCode, res.Headers)
		}
		body := res.Body
		if res.IsBase64Encoded {
			b, _ := base64.StdEncoding.DecodeString(body)
			body = string(b)
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty body", p)
		}
		if c := get(p, map[string]string{"if-none-match": res.Headers["Etag"]}); c.StatusCode != 304 {
			t.Errorf("GET %s with its ETag %s: %d", p, res.Headers["Etag"], c.StatusCode)
		}
	}
	if res := get("/?sheet=demo", nil); res.StatusCode != 200 || !strings.HasPrefix(res.Headers["Content-Type"], "text/html") ||
		!strings.Contains(res.Body, `data-role="status"`) {
		t.Errorf("GET /?sheet=demo: %d %v", res.StatusCode, res.Headers)
	}
	// The API behind it is unchanged.
	if res := get("/v1/sheets/web-page/cells?range=A1", nil); res.StatusCode != 200 || !strings.Contains(res.Body, `"cells":{}`) {
		t.Errorf("GET cells: %d %s", res.StatusCode, res.Body)
	}
	if res := get("/nope.js", nil); res.StatusCode != 404 || !strings.Contains(res.Body, `"NotFound"`) {
		t.Errorf("GET /nope.js: %d %s", res.StatusCode, res.Body)
	}
}
