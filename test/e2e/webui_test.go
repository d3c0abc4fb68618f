package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestWebPage: the deployment serves the web page at / (no credentials
// needed), with its security headers, and answers a conditional GET with
// 304.
func TestWebPage(t *testing.T) {
	needDeployment(t)
	for path, ctype := range map[string]string{"/": "text/html", "/main.js": "text/javascript", "/style.css": "text/css"} {
		r := call(t, http.MethodGet, path, nil).expect(t, http.StatusOK, "GET "+path)
		if !strings.HasPrefix(r.header.Get("Content-Type"), ctype) || r.header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") || len(r.body) == 0 {
			t.Errorf("GET %s: %v, %d bytes", path, r.header, len(r.body))
		}
		etag := r.header.Get("ETag")
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, cfg.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("If-None-Match", etag)
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", path, etag, res.StatusCode)
		}
	}
}
