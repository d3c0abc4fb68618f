package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/api"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
	"github.com/sheetlog/sheetlog/pkg/jwtauth/jwtauthtest"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

// The cost of authentication and authorization with JWTs, as the
// single-machine server does them: a realistic token (five scopes, one
// with {tenant}) verified against a key set file, then the rule.
//
//   - cached: the token was seen before (a client sends the same token
//     until it expires): what every request but the first costs.
//   - verify-ALG: the verified-token cache is off, so each request pays
//     for parsing and the signature: what a token's first request costs.
//
// BenchmarkRequestJWT is a whole GET of a sheet's status through the
// handler with a (cached) token; BenchmarkRequestNoAuth the same without
// authentication, for the difference.

func newVerifier(b *testing.B, is *jwtauthtest.Issuer, cacheBytes int) *jwtauth.Verifier {
	v, err := jwtauth.New(context.Background(), jwtauth.Options{
		Keys: jwtauthtest.WriteJWKS(b, b.TempDir(), is), Issuer: is.Name, Audience: []string{is.Audience},
		CacheBytes: cacheBytes,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	return v
}

func benchToken(b *testing.B, is *jwtauthtest.Issuer) string {
	return is.Token(b, "user-4711", "acme", "openid", "profile", "sheets:read:team-7-*",
		"sheets:write:{tenant}.*", "sheets:read:shared")
}

func BenchmarkJWTAuth(b *testing.B) {
	run := func(b *testing.B, is *jwtauthtest.Issuer, cacheBytes int) {
		auth := api.BearerTokens(newVerifier(b, is, cacheBytes))
		req := httptest.NewRequest("POST", "/v1/sheets/acme.plan/log", nil)
		req.Header.Set("Authorization", "Bearer "+benchToken(b, is))
		b.ReportAllocs()
		for b.Loop() {
			c, err := auth.Authenticate(req)
			if err != nil || !api.Allowed(c, req.Method, "acme.plan") {
				b.Fatal(err)
			}
		}
	}
	es := jwtauthtest.New(b, jwtauth.ES256)
	b.Run("cached", func(b *testing.B) { run(b, es, 0) })
	for _, alg := range jwtauth.Algorithms {
		is := es
		if alg != jwtauth.ES256 {
			is = jwtauthtest.New(b, alg)
		}
		b.Run("verify-"+alg, func(b *testing.B) { run(b, is, -1) })
	}
}

func benchHandler(b *testing.B, auth api.Authenticator) http.Handler {
	logs, blobs := logmem.NewStore(logmem.Options{}), blobmem.New(blobmem.Options{})
	engines := enginecache.New(func(sheet string) (*spreadsheet.Engine, error) {
		log, err := logs.Log(sheet)
		if err != nil {
			return nil, err
		}
		root, err := blobs.Sheet(sheet)
		if err != nil {
			return nil, err
		}
		return spreadsheet.New(sheet, log, root, workers.ImplicitHost{}, spreadsheet.Options{})
	}, enginecache.Options{})
	h, err := api.New(api.Config{Logs: logs, Blobs: blobs, Engines: engines, Auth: auth})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func benchRequest(b *testing.B, h http.Handler, token string) {
	req := httptest.NewRequest("GET", "/v1/sheets/acme.plan", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkRequestJWT(b *testing.B) {
	is := jwtauthtest.New(b, jwtauth.ES256)
	benchRequest(b, benchHandler(b, api.BearerTokens(newVerifier(b, is, 0))), benchToken(b, is))
}

func BenchmarkRequestNoAuth(b *testing.B) {
	benchRequest(b, benchHandler(b, nil), "")
}
