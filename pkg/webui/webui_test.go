package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// next stands for the API handler: it marks the replies it wrote.
var next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Next", "1")
	w.WriteHeader(http.StatusTeapot)
})

func serve(t *testing.T, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	Handler(next).ServeHTTP(w, req)
	return w.Result()
}

func TestServesEveryFile(t *testing.T) {
	want := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	for _, p := range Paths() {
		name := strings.TrimPrefix(p, "/")
		if p == "/" {
			name = "index.html"
		}
		body, err := fs.ReadFile(static, "static/"+name)
		if err != nil {
			t.Fatal(err)
		}
		res := serve(t, "GET", p, nil)
		got, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(got) != string(body) {
			t.Errorf("GET %s: %d, %d bytes, want the %d bytes of %s", p, res.StatusCode, len(got), len(body), name)
		}
		h := res.Header
		checks := map[string]string{
			"Content-Type":            want[path.Ext(name)],
			"Cache-Control":           CacheControl,
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
		}
		for k, v := range checks {
			if h.Get(k) != v {
				t.Errorf("GET %s: %s = %q, want %q", p, k, h.Get(k), v)
			}
		}
		if !regexp.MustCompile(`^"[A-Za-z0-9_-]{24}"$`).MatchString(h.Get("ETag")) {
			t.Errorf("GET %s: ETag %q is not a strong tag", p, h.Get("ETag"))
		}

		// A conditional GET with the tag gets 304 and no body.
		res = serve(t, "GET", p, map[string]string{"If-None-Match": `"other", ` + h.Get("ETag")})
		got, _ = io.ReadAll(res.Body)
		if res.StatusCode != http.StatusNotModified || len(got) != 0 || res.Header.Get("ETag") != h.Get("ETag") {
			t.Errorf("If-None-Match on %s: %d, %d bytes, ETag %q", p, res.StatusCode, len(got), res.Header.Get("ETag"))
		}
		res = serve(t, "GET", p, map[string]string{"If-None-Match": `"stale"`})
		if res.StatusCode != 200 {
			t.Errorf("stale If-None-Match on %s: %d", p, res.StatusCode)
		}
		// HEAD: the headers of GET, no body.
		res = serve(t, "HEAD", p, nil)
		got, _ = io.ReadAll(res.Body)
		if res.StatusCode != 200 || len(got) != 0 || res.Header.Get("Content-Type") != want[path.Ext(name)] {
			t.Errorf("HEAD %s: %d, %d bytes, %q", p, res.StatusCode, len(got), res.Header.Get("Content-Type"))
		}
	}
}

func TestQueryStringOpensTheSheet(t *testing.T) {
	res := serve(t, "GET", "/?sheet=q3.report-2026", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /?sheet=...: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// Everything that is not GET or HEAD of the page goes to the API as it
// came, so /v1 and /healthz behave exactly as before.
func TestEverythingElseGoesToNext(t *testing.T) {
	for _, c := range []struct{ method, target string }{
		{"GET", "/v1/sheets/a/log"},
		{"GET", "/healthz"},
		{"GET", "/v1/openapi.yaml"},
		{"GET", "/index.html"},
		{"GET", "/nope.js"},
		{"GET", "/main.js/"},
		{"GET", "/static/main.js"},
		{"GET", "/%6Dain.js"},
		{"GET", "//main.js"},
		{"POST", "/"},
		{"PUT", "/main.js"},
		{"DELETE", "/style.css"},
		{"OPTIONS", "/"},
		{"OPTIONS", "/main.js"},
	} {
		res := serve(t, c.method, c.target, nil)
		if res.StatusCode != http.StatusTeapot || res.Header.Get("X-Next") != "1" {
			t.Errorf("%s %s: %d, not passed on", c.method, c.target, res.StatusCode)
		}
		if res.Header.Get("Content-Security-Policy") != "" {
			t.Errorf("%s %s: page headers on a reply of the API", c.method, c.target)
		}
	}
}

func TestPaths(t *testing.T) {
	p := Paths()
	if !slices.IsSorted(p) || p[0] != "/" || !slices.Contains(p, "/main.js") || !slices.Contains(p, "/style.css") {
		t.Fatalf("Paths() = %v", p)
	}
	for _, x := range p {
		if x != "/" && (strings.Count(x, "/") != 1 || strings.Contains(x, "index.html")) {
			t.Errorf("path %q: the stack routes one level of files and / for index.html", x)
		}
	}
}

// The policy allows no inline script or style and nothing from elsewhere,
// and the page needs neither: no inline script, style or handler in its
// HTML, no string-to-code or HTML sinks in its scripts.
func TestNoInlineCodeAndNoSinks(t *testing.T) {
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:", "data:"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("the policy allows %s", bad)
		}
	}
	for _, need := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(ContentSecurityPolicy, need) {
			t.Errorf("the policy lacks %s", need)
		}
	}
	html := string(files["/"].body)
	for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>(.*?)</script>`).FindAllStringSubmatch(html, -1) {
		if strings.TrimSpace(m[1]) != "" || !strings.Contains(m[0], `src="`) {
			t.Errorf("inline script in index.html: %s", m[0])
		}
	}
	for _, re := range []string{`(?i)<style\b`, `(?i)\sstyle\s*=`, `(?i)\son[a-z]+\s*=`, `(?i)javascript:`} {
		if loc := regexp.MustCompile(re).FindStringIndex(html); loc != nil {
			t.Errorf("index.html has %q at %d", html[loc[0]:loc[1]], loc[0])
		}
	}
	for p, f := range files {
		if !strings.HasSuffix(p, ".js") {
			continue
		}
		for _, re := range []string{`\binnerHTML\b`, `\bouterHTML\b`, `\binsertAdjacentHTML\b`, `\bdocument\.write`, `\beval\(`,
			`new Function\(`, `setAttribute\(\s*'style'`, `setAttribute\(\s*'on`} {
			if loc := regexp.MustCompile(re).FindStringIndex(string(f.body)); loc != nil {
				t.Errorf("%s uses %s", p, string(f.body)[loc[0]:loc[1]])
			}
		}
	}
}

// Every file index.html or a module names is served, and every file served
// is used: a file added to static/ without a reference, or a reference to
// a file that is not there, fails here rather than in a browser.
func TestReferencesResolve(t *testing.T) {
	used := map[string]bool{"/": true}
	html := string(files["/"].body)
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		used["/"+strings.TrimPrefix(m[1], "./")] = true
	}
	for p, f := range files {
		if !strings.HasSuffix(p, ".js") {
			continue
		}
		for _, m := range regexp.MustCompile(`(?m)^(?:import|export)\b[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)`).FindAllStringSubmatch(string(f.body), -1) {
			spec := m[1] + m[2]
			if !strings.HasPrefix(spec, "./") {
				t.Errorf("%s imports %q: only relative imports of the page's own modules", p, spec)
				continue
			}
			used["/"+strings.TrimPrefix(spec, "./")] = true
		}
	}
	for u := range used {
		if _, ok := files[u]; !ok {
			t.Errorf("%s is referenced but not served", u)
		}
	}
	for p := range files {
		if !used[p] {
			t.Errorf("%s is served but nothing references it", p)
		}
	}
}

func TestLoadRefusesUnknownFiles(t *testing.T) {
	if _, err := load(fstest.MapFS{
		"static/index.html": {Data: []byte("<!doctype html>")},
		"static/x.exe":      {Data: []byte("MZ")},
	}); err == nil || !strings.Contains(err.Error(), "x.exe") {
		t.Errorf("load with an .exe: %v", err)
	}
	if _, err := load(fstest.MapFS{"static/a.js": {Data: []byte("")}}); err == nil {
		t.Errorf("load without index.html: no error")
	}
	m, err := load(fstest.MapFS{
		"static/index.html": {Data: []byte("a")},
		"static/b.css":      {Data: []byte("b")},
	})
	if err != nil || len(m) != 2 || m["/"].etag == m["/b.css"].etag {
		t.Errorf("load: %v %v", m, err)
	}
}
