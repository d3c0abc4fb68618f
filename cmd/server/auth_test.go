package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/jwtauth"
	"github.com/sheetlog/sheetlog/pkg/jwtauth/jwtauthtest"
)

// answer is a reply as the tests look at it.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.raw) }

// sendFrom sends one request from the loopback address from (any of
// 127.0.0.0/8), so that each caller is an address of its own to the
// failed-authentication limiter.
func sendFrom(t *testing.T, p *proc, from, method, path, token, body string) answer {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), method, p.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func appendBody(seq int) string {
	return fmt.Sprintf(`{"sequenceId":%d,"entry":{"type":"SetCellValueAndFormat","row":%d,"column":0,"value":%d}}`, seq, seq, seq)
}

// TestJWTOverLoopback runs the server binary with a key set file: every
// bad token is refused with 401 for its own reason and writes nothing;
// good tokens are held to their scopes (403 otherwise).
func TestJWTOverLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	for i, alg := range jwtauth.Algorithms {
		t.Run(alg, func(t *testing.T) {
			is := jwtauthtest.New(t, alg)
			keys := jwtauthtest.WriteJWKS(t, t.TempDir(), is)
			p := startServer(t, t.TempDir(), "-jwt-keys", keys, "-jwt-issuer", is.Name, "-jwt-audience", "other,"+is.Audience)
			if rec := listening(t, p); rec["auth"] != "jwt" {
				t.Fatalf("listening record: %v", rec)
			}
			from := func(n int) string { return fmt.Sprintf("127.0.%d.%d", i+1, n) }
			writer := is.Token(t, "w", "", "sheets:write:team-7-*")
			reader := is.Token(t, "r", "acme", "sheets:read:{tenant}.*", "sheets:read:team-7-*")
			if a := sendFrom(t, p, from(1), "POST", "/v1/sheets/team-7-a/log", writer, appendBody(0)); a.status != 200 {
				t.Fatalf("writer: %v", a)
			}
			for n, bt := range is.BadTokens(t) {
				a := sendFrom(t, p, from(10+n), "POST", "/v1/sheets/team-7-a/log", bt.Token, appendBody(1))
				if a.status != 401 || a.body["type"] != "Unauthorized" || a.body["message"] != bt.Err.Error() ||
					a.header.Get("Retry-After") != "" || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("%s: %v %v", bt.Name, a, a.header)
				}
			}
			// A header larger than net/http's 1 MB limit never reaches
			// the handler: net/http's own 431.
			if a := sendFrom(t, p, from(2), "GET", "/v1/sheets/team-7-a", strings.Repeat("x", 1100<<10), ""); a.status != 431 {
				t.Errorf("a 1.1 MB token: %v", a)
			}
			// Nothing was written by the bad tokens.
			a := sendFrom(t, p, from(3), "GET", "/v1/sheets/team-7-a/log", reader, "")
			if a.status != 200 || a.body["endSequenceId"] != "1" {
				t.Fatalf("after the bad tokens: %v", a)
			}
			for _, c := range []struct {
				method, path, token, body string
				status                    int
			}{
				{"GET", "/v1/sheets/team-7-a/cells?range=A1", reader, "", 200},
				{"POST", "/v1/sheets/team-7-a/log", reader, appendBody(1), 403},
				{"GET", "/v1/sheets/acme.plan", reader, "", 200},
				{"GET", "/v1/sheets/globex.plan", reader, "", 403},
				{"GET", "/v1/sheets/team-8-a", writer, "", 403},
				{"POST", "/v1/sheets/team-7-a/log", writer, appendBody(1), 200},
				{"GET", "/v1/sheets/team-7-a", "", "", 401},
				{"GET", "/healthz", "", "", 200},
			} {
				a := sendFrom(t, p, from(4), c.method, c.path, c.token, c.body)
				if a.status != c.status {
					t.Errorf("%s %s: %v, want %d", c.method, c.path, a, c.status)
				}
				if a.status == 403 && (a.body["type"] != "Forbidden" || !strings.Contains(a.header.Get("WWW-Authenticate"), "insufficient_scope")) {
					t.Errorf("%s %s: %v %v", c.method, c.path, a, a.header)
				}
			}
		})
	}
}

// TestJWTRemoteKeysOverLoopback: the server fetches its key set from a
// URL (an httptest server here); unknown key ids do not make it fetch
// more than once per refresh gap; a key rotated in is picked up and a
// key retired stops verifying, without a restart.
func TestJWTRemoteKeysOverLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	a, b := jwtauthtest.New(t, jwtauth.ES256), jwtauthtest.New(t, jwtauth.EdDSA)
	var (
		mu   sync.Mutex
		jwks = jwtauthtest.JWKS(t, a)
		gets atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(jwks)
	}))
	defer srv.Close()
	serve := func(raw []byte) {
		mu.Lock()
		jwks = raw
		mu.Unlock()
	}
	const gap = 2 * time.Second
	p := startServer(t, t.TempDir(), "-jwt-keys", srv.URL+"/.well-known/jwks.json", "-jwt-issuer", a.Name,
		"-jwt-audience", a.Audience, "-jwt-keys-refresh", gap.String())
	started := time.Now()
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d fetches at start", n)
	}
	tokA := a.Token(t, "a", "", "sheets:read:*")
	tokB := b.Sign(t, jwtauth.TokenSpec{Subject: "b", Issuer: a.Name, Audience: []string{a.Audience}, Scopes: []string{"sheets:read:*"}})
	if r := sendFrom(t, p, "127.0.9.1", "GET", "/v1/sheets/s", tokA, ""); r.status != 200 {
		t.Fatal(r)
	}
	for n := range 8 {
		r := sendFrom(t, p, fmt.Sprintf("127.0.9.%d", 10+n), "GET", "/v1/sheets/s", tokB, "")
		if r.status != 401 || r.body["message"] != jwtauth.ErrUnknownKey.Error() {
			t.Fatal(r)
		}
	}
	// At most the scheduled reads and one more per gap since the start.
	if n, most := gets.Load(), 1+2*int64(time.Since(started)/gap+1); n > most {
		t.Fatalf("%d fetches in %v, want at most %d", n, time.Since(started), most)
	}
	serve(jwtauthtest.JWKS(t, a, b))
	waitStatus(t, p, tokB, 200)
	serve(jwtauthtest.JWKS(t, b))
	waitStatus(t, p, tokA, 401)
}

func waitStatus(t *testing.T, p *proc, token string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; ; n++ {
		r := sendFrom(t, p, fmt.Sprintf("127.0.10.%d", n%250+1), "GET", "/v1/sheets/s", token, "")
		if r.status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %v, want %d\n%s", r, want, p.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestJWTFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := parseConfig(nil, env(map[string]string{
		"SHEETLOG_JWT_KEYS": "k.json", "SHEETLOG_JWT_ISSUER": "https://i/", "SHEETLOG_JWT_AUDIENCE": "a, b",
		"SHEETLOG_JWT_TENANT_CLAIM": "org", "SHEETLOG_JWT_SCOPE_PREFIX": "rs/", "SHEETLOG_JWT_KEYS_REFRESH": "10m",
	}), io.Discard)
	if err != nil || c.jwt.keys != "k.json" || c.jwt.issuer != "https://i/" || strings.Join(c.jwt.audience, "|") != "a|b" ||
		c.jwt.tenantClaim != "org" || c.jwt.scopePrefix != "rs/" || c.jwt.refresh != 10*time.Minute || c.authMode() != "jwt" {
		t.Fatalf("%+v %v", c.jwt, err)
	}
	if c, err := parseConfig(nil, env(nil), io.Discard); err != nil || c.jwt.tenantClaim != "tenant" || c.authMode() != "none" {
		t.Fatalf("defaults: %+v %v", c.jwt, err)
	}
	for name, args := range map[string][]string{
		"no issuer":       {"-jwt-keys", "k", "-jwt-audience", "a"},
		"no audience":     {"-jwt-keys", "k", "-jwt-issuer", "i"},
		"no keys":         {"-jwt-issuer", "i", "-jwt-audience", "a"},
		"token too":       {"-jwt-keys", "k", "-jwt-issuer", "i", "-jwt-audience", "a", "-token", "t"},
		"no tenant claim": {"-jwt-keys", "k", "-jwt-issuer", "i", "-jwt-audience", "a", "-jwt-tenant-claim", ""},
		"bad refresh":     {"-jwt-keys-refresh", "soon"},
	} {
		if _, err := parseConfig(args, env(nil), io.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
