package jwtauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
	"github.com/sheetlog/sheetlog/pkg/jwtauth/jwtauthtest"
)

func newVerifier(t *testing.T, o jwtauth.Options) *jwtauth.Verifier {
	t.Helper()
	if o.Issuer == "" {
		o.Issuer = jwtauthtest.IssuerName
	}
	if o.Audience == nil {
		o.Audience = []string{jwtauthtest.Audience}
	}
	v, err := jwtauth.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func TestGoodTokens(t *testing.T) {
	for _, alg := range jwtauth.Algorithms {
		t.Run(alg, func(t *testing.T) {
			is := jwtauthtest.New(t, alg)
			v := newVerifier(t, jwtauth.Options{Keys: jwtauthtest.WriteJWKS(t, t.TempDir(), is)})
			tok := is.Token(t, "alice", "acme", "openid", "sheets:read:{tenant}.*", "sheets:write:team-7-*")
			c, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "alice" || c.Tenant != "acme" || strings.Join(c.Scopes, " ") != "openid sheets:read:{tenant}.* sheets:write:team-7-*" {
				t.Fatalf("%+v", c)
			}
			if !api.Allowed(c, "GET", "acme.plan") || api.Allowed(c, "POST", "acme.plan") || !api.Allowed(c, "POST", "team-7-x") {
				t.Fatalf("rule on %+v", c)
			}
			// Again, from the cache: the same claims.
			if c2, err := v.Verify(context.Background(), tok); err != nil || c2 != c {
				t.Fatalf("second time: %v %p %p", err, c2, c)
			}
		})
	}
}

func TestAudienceAndClaims(t *testing.T) {
	is := jwtauthtest.New(t, jwtauth.ES256)
	keys := jwtauthtest.WriteJWKS(t, t.TempDir(), is)
	v := newVerifier(t, jwtauth.Options{Keys: keys, Audience: []string{"a1", "a2"},
		Claims: api.TokenClaims{Tenant: "org", ScopePrefix: "sheetlog/"}})
	ctx := context.Background()
	now := time.Now().Unix()
	base := map[string]any{"iss": jwtauthtest.IssuerName, "exp": now + 600, "sub": "s", "org": "o1",
		"scope": "sheetlog/sheets:read:* sheets:write:*"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	hdr := map[string]any{"kid": is.KID}
	cases := []struct {
		name   string
		claims map[string]any
		err    error
	}{
		{"aud string", with(map[string]any{"aud": "a2"}), nil},
		{"aud array", with(map[string]any{"aud": []any{"x", "a1"}}), nil},
		{"aud array without ours", with(map[string]any{"aud": []any{"x", "y"}}), jwtauth.ErrAudience},
		{"client_id without aud (Cognito access token)", with(map[string]any{"client_id": "a1"}), nil},
		{"another client_id", with(map[string]any{"client_id": "zz"}), jwtauth.ErrAudience},
		{"aud wins over client_id", with(map[string]any{"aud": "zz", "client_id": "a1"}), jwtauth.ErrAudience},
		{"neither", with(nil), jwtauth.ErrAudience},
		{"no issuer", with(map[string]any{"aud": "a1", "iss": nil}), jwtauth.ErrIssuer},
		{"exp within the leeway", with(map[string]any{"aud": "a1", "exp": now - 30}), nil},
		{"nbf within the leeway", with(map[string]any{"aud": "a1", "nbf": now + 30}), nil},
		{"iat in the future", with(map[string]any{"aud": "a1", "iat": now + 600}), jwtauth.ErrIssuedLater},
		{"exp of the wrong type", with(map[string]any{"aud": "a1", "exp": "soon"}), jwtauth.ErrInvalid},
	}
	for _, c := range cases {
		tok := is.Raw(t, signingMethod(jwtauth.ES256), is.Key, hdr, c.claims)
		got, err := v.Verify(ctx, tok)
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
			continue
		}
		if err == nil && (got.Tenant != "o1" || strings.Join(got.Scopes, " ") != "sheets:read:*") {
			t.Errorf("%s: claims %+v", c.name, got)
		}
	}
}

// TestBadTokens: every bad token is refused for its own reason, whatever
// the algorithm of the key set.
func TestBadTokens(t *testing.T) {
	for _, alg := range jwtauth.Algorithms {
		t.Run(alg, func(t *testing.T) {
			is := jwtauthtest.New(t, alg)
			v := newVerifier(t, jwtauth.Options{Keys: jwtauthtest.WriteJWKS(t, t.TempDir(), is)})
			for _, bt := range is.BadTokens(t) {
				c, err := v.Verify(context.Background(), bt.Token)
				if !errors.Is(err, bt.Err) || c != nil {
					t.Errorf("%s: %v (claims %v), want %v", bt.Name, err, c, bt.Err)
				}
			}
		})
	}
}

// jwksServer serves a key set that the test changes, counting requests.
type jwksServer struct {
	mu     sync.Mutex
	body   []byte
	status int
	gets   atomic.Int64
	srv    *httptest.Server
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: 200}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(body []byte, status int) {
	s.mu.Lock()
	s.body, s.status = body, status
	s.mu.Unlock()
}

// TestRemoteKeySetRefresh: a remote key set is fetched at start; a token
// whose kid is unknown causes at most one fetch per minimum gap (then
// 401), however many such requests arrive at once; a rotated-in key is
// picked up; a failing fetch keeps the keys; the set is refetched on
// schedule, and a removed key stops verifying even for tokens seen
// before.
func TestRemoteKeySetRefresh(t *testing.T) {
	a, b := jwtauthtest.New(t, jwtauth.ES256), jwtauthtest.New(t, jwtauth.RS256)
	srv := newJWKSServer(t, jwtauthtest.JWKS(t, a))
	clock := &fakeClock{t: time.Unix(2_000_000_000, 0)}
	v := newVerifierAt(t, clock, jwtauth.Options{Keys: srv.srv.URL + "/jwks.json", MinRefreshGap: 30 * time.Second, RefreshEvery: time.Hour})
	ctx := context.Background()
	fetches := func(want int64) {
		t.Helper()
		if n := srv.gets.Load(); n != want {
			t.Fatalf("%d fetches, want %d", n, want)
		}
	}
	fetches(1)
	tokA := a.Sign(t, jwtauth.TokenSpec{Subject: "a", Now: clock.now()})
	tokB := b.Sign(t, jwtauth.TokenSpec{Subject: "b", Now: clock.now()})
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	// Within the gap after the start: refused, nothing fetched.
	if _, err := v.Verify(ctx, tokB); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatal(err)
	}
	fetches(1)
	// After the gap: one fetch, still unknown, refused.
	clock.add(31 * time.Second)
	if _, err := v.Verify(ctx, tokB); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatal(err)
	}
	fetches(2)
	// Many at once after the gap: one fetch between them.
	clock.add(31 * time.Second)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, err := v.Verify(ctx, tokB); !errors.Is(err, jwtauth.ErrUnknownKey) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	fetches(3)
	// The issuer rotates b in: picked up by the next unknown kid after
	// the gap.
	srv.set(jwtauthtest.JWKS(t, a, b), 200)
	if _, err := v.Verify(ctx, tokB); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("within the gap: %v", err)
	}
	clock.add(31 * time.Second)
	if c, err := v.Verify(ctx, tokB); err != nil || c.Subject != "b" {
		t.Fatalf("after rotation: %v", err)
	}
	fetches(4)
	// A failing issuer: the keys held still verify.
	srv.set([]byte("oops"), 500)
	clock.add(31 * time.Second)
	if _, err := v.Verify(ctx, a.Sign(t, jwtauth.TokenSpec{Subject: "a2", Now: clock.now()})); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, jwtauthtest.New(t, jwtauth.EdDSA).Sign(t, jwtauth.TokenSpec{Now: clock.now(), Issuer: jwtauthtest.IssuerName, Audience: []string{jwtauthtest.Audience}})); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatal(err)
	}
	fetches(5)
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("after a failed fetch: %v", err)
	}
	// a is retired: once the schedule refetches, a's tokens are refused,
	// even one verified (and cached) before.
	srv.set(jwtauthtest.JWKS(t, b), 200)
	if err := jwtauth.Refresh(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tokA); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("retired key: %v", err)
	}
}

// TestScheduledRefresh: the key set is fetched again on its own.
func TestScheduledRefresh(t *testing.T) {
	a := jwtauthtest.New(t, jwtauth.EdDSA)
	srv := newJWKSServer(t, jwtauthtest.JWKS(t, a))
	newVerifier(t, jwtauth.Options{Keys: srv.srv.URL, RefreshEvery: 20 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for srv.gets.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches", srv.gets.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFileKeySet: a key file is read again for an unknown kid too, so a
// rotated file needs no restart.
func TestFileKeySet(t *testing.T) {
	a, b := jwtauthtest.New(t, jwtauth.ES256), jwtauthtest.New(t, jwtauth.ES256)
	dir := t.TempDir()
	clock := &fakeClock{t: time.Now()}
	v := newVerifierAt(t, clock, jwtauth.Options{Keys: jwtauthtest.WriteJWKS(t, dir, a)})
	jwtauthtest.WriteJWKS(t, dir, a, b)
	tok := b.Sign(t, jwtauth.TokenSpec{Issuer: jwtauthtest.IssuerName, Audience: []string{jwtauthtest.Audience}, Now: clock.now()})
	clock.add(jwtauth.DefaultMinRefreshGap + time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

// TestCacheExpiry: a cached token is refused once it expires.
func TestCacheExpiry(t *testing.T) {
	a := jwtauthtest.New(t, jwtauth.ES256)
	clock := &fakeClock{t: time.Now()}
	v := newVerifierAt(t, clock, jwtauth.Options{Keys: jwtauthtest.WriteJWKS(t, t.TempDir(), a)})
	tok := a.Sign(t, jwtauth.TokenSpec{Now: clock.now(), TTL: 2 * time.Minute})
	ctx := context.Background()
	for _, step := range []time.Duration{0, time.Minute, time.Minute + 50*time.Second} {
		clock.add(step)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("at +%v: %v", step, err)
		}
	}
	clock.add(20 * time.Second) // exp + 70 s
	if _, err := v.Verify(ctx, tok); !errors.Is(err, jwtauth.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestKeySetErrors(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(s string) string {
		n++
		p := filepath.Join(dir, strings.Repeat("k", n)+".json")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, c := range map[string]struct {
		keys string
		want string
	}{
		"missing file":  {filepath.Join(dir, "none.json"), "no such file"},
		"not JSON":      {write("{"), "not a JWKS"},
		"symmetric key": {write(`{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"h"}]}`), "algorithm HS256"},
		"no keys":       {write(`{"keys":[]}`), "no usable signing key"},
		"small RSA":     {write(`{"keys":[{"kty":"RSA","kid":"r","n":"` + strings.Repeat("A", 170) + `w","e":"AQAB"}]}`), "RSA key of"},
		"encryption":    {write(`{"keys":[{"kty":"EC","use":"enc","crv":"P-256","x":"x","y":"y"}]}`), "use enc"},
		"unreachable":   {"http://127.0.0.1:1/jwks.json", "connect"},
	} {
		_, err := jwtauth.New(context.Background(), jwtauth.Options{Keys: c.keys, Issuer: "i", Audience: []string{"a"}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	for name, o := range map[string]jwtauth.Options{
		"no keys":     {Issuer: "i", Audience: []string{"a"}},
		"no issuer":   {Keys: "k", Audience: []string{"a"}},
		"no audience": {Keys: "k", Issuer: "i"},
	} {
		if _, err := jwtauth.New(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPrivatePartsDropped: a key set that (wrongly) holds a private key
// is read for its public part only.
func TestPrivatePartsDropped(t *testing.T) {
	a := jwtauthtest.New(t, jwtauth.ES256)
	raw := string(jwtauthtest.JWKS(t, a))
	raw = strings.Replace(raw, `"kty"`, `"d":"AAAA","kty"`, 1)
	v := newVerifier(t, jwtauth.Options{Keys: writeTemp(t, raw)})
	if _, err := v.Verify(context.Background(), a.Token(t, "x", "")); err != nil {
		t.Fatal(err)
	}
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newVerifierAt(t *testing.T, c *fakeClock, o jwtauth.Options) *jwtauth.Verifier {
	t.Helper()
	return newVerifier(t, jwtauth.WithClock(o, c.now))
}

func signingMethod(alg string) jwt.SigningMethod { return jwt.GetSigningMethod(alg) }
