// Package webui serves the sheetlog web page: a live, editable grid over a
// whole sheet, written as plain ES modules and CSS (static/), embedded in
// the binary and served as they are (no build step). The page is a thin
// client of the /v1 API on the same origin; docs/web.md describes it.
//
// Handler puts the page in front of the API handler: GET and HEAD of "/"
// and of the page's files are answered here, every other request goes to
// the API unchanged. Both deployments mount it the same way (cmd/server and
// the API Lambda), and the CDK stack routes exactly Paths() to the API
// function without an authorizer, so nothing but these files is anonymous.
//
// Every file is served with a strong ETag (conditional GETs get 304),
// Cache-Control: no-cache (the names carry no version, so browsers
// revalidate; a 304 costs one round trip), its exact Content-Type with
// X-Content-Type-Options: nosniff, and a Content-Security-Policy that
// allows no inline script or style, no other origin and no HTML sinks
// (Trusted Types): a cell's text can never become markup.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy of every file of the page. The page
// talks only to its own origin (the API it was served by).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// CacheControl is sent with every file: revalidate before each use.
const CacheControl = "no-cache"

// contentTypes are the types of the files the page is made of; a file
// of any other kind in static/ is a build error (see load).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

type file struct {
	body        []byte
	contentType string
	etag        string
}

// files maps each URL path ("/" for index.html) to its file.
var files = mustLoad(static)

func mustLoad(fsys fs.FS) map[string]file {
	m, err := load(fsys)
	if err != nil {
		panic(err) // the embedded files are part of the build
	}
	return m
}

func load(fsys fs.FS) (map[string]file, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	m := map[string]file{}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("webui: static/%s: no content type for %q files", name, path.Ext(name))
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		urlPath := "/" + name
		if name == "index.html" {
			urlPath = "/"
		}
		m[urlPath] = file{body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
		return nil
	})
	if err == nil && m["/"].body == nil {
		err = fmt.Errorf("webui: static/index.html is missing")
	}
	return m, err
}

// Paths are the URL paths the page is served at: "/" (index.html) and one
// per file, sorted. The CDK stack routes exactly these.
func Paths() []string {
	out := make([]string, 0, len(files))
	for p := range files {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Handler serves GET and HEAD of Paths() and passes every other request
// (other paths, other methods) to next, which must not be nil.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.EscapedPath()]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", CacheControl)
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// ServeContent answers If-None-Match (304), HEAD and ranges; a
		// zero time means no Last-Modified, so the ETag alone decides.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}
