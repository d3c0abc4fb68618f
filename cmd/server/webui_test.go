package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The binary serves the web page at / and its API beside it.
func TestServesTheWebPage(t *testing.T) {
	p := startServer(t, t.TempDir())
	res, err := client.Get(p.url + "/?sheet=demo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		res.Header.Get("Content-Security-Policy") == "" || !strings.Contains(string(body), `src="main.js"`) {
		t.Fatalf("GET /: %d %v\n%s", res.StatusCode, res.Header, body)
	}
	var health struct{ Status string }
	if code, err := p.do(context.Background(), "GET", "/healthz", nil, &health); err != nil || code != http.StatusOK || health.Status != "ok" {
		t.Fatalf("GET /healthz: %d %v %+v", code, err, health)
	}
}
