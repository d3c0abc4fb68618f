package api

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAllowedTable: every method × pattern kind × match or not, for a
// read scope and a write scope.
func TestAllowedTable(t *testing.T) {
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"}
	kinds := []struct {
		name, pattern, tenant string
		match, miss           []string
	}{
		{"exact", "team-7-plan", "", []string{"team-7-plan"}, []string{"team-7-plan2", "team-7-pla", "team-7", "TEAM-7-PLAN"}},
		{"prefix", "team-7-*", "", []string{"team-7-", "team-7-plan", "team-7-x.y_z"}, []string{"team-7", "team-70-plan", "team-8-plan", "Team-7-plan"}},
		{"any", "*", "", []string{"a", "team-7-plan", strings.Repeat("z", 64)}, nil},
		{"tenant exact", "{tenant}", "acme", []string{"acme"}, []string{"acme-1", "acm", "other"}},
		{"tenant prefix", "{tenant}.*", "acme", []string{"acme.", "acme.plan"}, []string{"acme", "acme-plan", "acmex.plan", "globex.plan"}},
		{"tenant inside", "t-{tenant}.*", "acme", []string{"t-acme.plan"}, []string{"acme.plan", "t-globex.plan", "t-acme"}},
		{"tenant twice", "{tenant}.{tenant}", "a1", []string{"a1.a1"}, []string{"a1.a2", "a1.a1.a1"}},
	}
	for _, verb := range []string{ScopeRead, ScopeWrite} {
		for _, k := range kinds {
			c := &Claims{Scopes: []string{"openid", verb + k.pattern, "profile"}, Tenant: k.tenant}
			for _, m := range methods {
				for _, sheet := range k.match {
					want := m == "GET" || m == "HEAD" || m == "POST" && verb == ScopeWrite
					if got := Allowed(c, m, sheet); got != want {
						t.Errorf("%s%s (%s), tenant %q: %s %q = %v, want %v", verb, k.pattern, k.name, k.tenant, m, sheet, got, want)
					}
				}
				for _, sheet := range k.miss {
					if Allowed(c, m, sheet) {
						t.Errorf("%s%s (%s), tenant %q: %s %q allowed", verb, k.pattern, k.name, k.tenant, m, sheet)
					}
				}
			}
		}
	}
}

// TestAllowedEdges: what matches nothing, and the tenant guards.
func TestAllowedEdges(t *testing.T) {
	cases := []struct {
		name   string
		c      *Claims
		method string
		sheet  string
		want   bool
	}{
		{"nil claims", nil, "GET", "s", false},
		{"no scopes", &Claims{}, "GET", "s", false},
		{"read does not write", &Claims{Scopes: []string{"sheets:read:*"}}, "POST", "s", false},
		{"write and read", &Claims{Scopes: []string{"sheets:read:a", "sheets:write:b"}}, "POST", "b", true},
		{"read of one, write of another", &Claims{Scopes: []string{"sheets:read:a", "sheets:write:b"}}, "POST", "a", false},
		{"empty pattern", &Claims{Scopes: []string{"sheets:read:"}}, "GET", "", false},
		{"star inside", &Claims{Scopes: []string{"sheets:read:a*b"}}, "GET", "axb", false},
		{"two stars", &Claims{Scopes: []string{"sheets:read:a**"}}, "GET", "ab", false},
		{"verb case", &Claims{Scopes: []string{"Sheets:Read:*"}}, "GET", "s", false},
		{"no colon", &Claims{Scopes: []string{"sheets:read*"}}, "GET", "s", false},
		{"other verb", &Claims{Scopes: []string{"sheets:admin:*"}}, "GET", "s", false},
		{"a scope prefixed by something", &Claims{Scopes: []string{"x/sheets:read:*"}}, "GET", "s", false},
		{"no tenant claim", &Claims{Scopes: []string{"sheets:write:{tenant}.*"}}, "GET", ".x", false},
		{"no tenant claim, exact", &Claims{Scopes: []string{"sheets:write:{tenant}"}}, "GET", "", false},
		{"tenant with the separator", &Claims{Scopes: []string{"sheets:write:{tenant}-*"}, Tenant: "acme-eu"}, "GET", "acme-eu-plan", false},
		{"tenant without it", &Claims{Scopes: []string{"sheets:write:{tenant}-*"}, Tenant: "acme"}, "GET", "acme-plan", true},
		{"tenant then star", &Claims{Scopes: []string{"sheets:write:{tenant}*"}, Tenant: "a"}, "GET", "ab", false},
		{"tenant with a star", &Claims{Scopes: []string{"sheets:write:{tenant}"}, Tenant: "*"}, "GET", "*", false},
		{"tenant with a slash", &Claims{Scopes: []string{"sheets:write:{tenant}"}, Tenant: "a/b"}, "GET", "a/b", false},
		{"tenant too long", &Claims{Scopes: []string{"sheets:write:{tenant}"}, Tenant: strings.Repeat("t", 65)}, "GET", strings.Repeat("t", 65), false},
		{"a pattern without {tenant} ignores the tenant", &Claims{Scopes: []string{"sheets:read:x"}, Tenant: "bad/tenant"}, "GET", "x", true},
		{"literal braces", &Claims{Scopes: []string{"sheets:read:{tenan}"}, Tenant: "a"}, "GET", "a", false},
	}
	for _, c := range cases {
		if got := Allowed(c.c, c.method, c.sheet); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAllowedAllocatesNothing(t *testing.T) {
	c := &Claims{Scopes: []string{"openid", "sheets:read:{tenant}.*", "sheets:write:team-7-*"}, Tenant: "acme"}
	if n := testing.AllocsPerRun(100, func() {
		Allowed(c, "GET", "acme.plan")
		Allowed(c, "POST", "team-8-x")
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestTokenClaims(t *testing.T) {
	cases := []struct {
		name string
		tc   TokenClaims
		m    map[string]any
		want Claims
	}{
		{"space-separated", TokenClaims{}, map[string]any{"sub": "u1", "scope": " sheets:read:a  sheets:write:b ", "tenant": "t"},
			Claims{Subject: "u1", Scopes: []string{"sheets:read:a", "sheets:write:b"}, Tenant: "t"}},
		{"array", TokenClaims{}, map[string]any{"scope": []any{"sheets:read:a", 7, "sheets:write:b"}},
			Claims{Scopes: []string{"sheets:read:a", "sheets:write:b"}}},
		{"other tenant claim", TokenClaims{Tenant: "custom:org"}, map[string]any{"tenant": "no", "custom:org": "yes"},
			Claims{Tenant: "yes"}},
		{"numeric tenant", TokenClaims{}, map[string]any{"tenant": float64(42)}, Claims{Tenant: "42"}},
		{"fractional tenant", TokenClaims{}, map[string]any{"tenant": 4.5}, Claims{}},
		{"tenant of another type", TokenClaims{}, map[string]any{"tenant": []any{"a"}}, Claims{}},
		{"scope prefix", TokenClaims{ScopePrefix: "sheetlog/"}, map[string]any{"scope": "openid sheetlog/sheets:read:* sheets:write:* other/sheets:write:*"},
			Claims{Scopes: []string{"sheets:read:*"}}},
		{"no scope", TokenClaims{}, map[string]any{"scp": "sheets:read:*"}, Claims{}},
	}
	for _, c := range cases {
		got := c.tc.Claims(c.m)
		if got.Subject != c.want.Subject || got.Tenant != c.want.Tenant || strings.Join(got.Scopes, "|") != strings.Join(c.want.Scopes, "|") {
			t.Errorf("%s: %+v, want %+v", c.name, *got, c.want)
		}
	}
}

// tokenTable is a TokenVerifier for handler tests: known tokens and
// their claims.
type tokenTable map[string]*Claims

func (tt tokenTable) Verify(_ context.Context, token string) (*Claims, error) {
	if c, ok := tt[token]; ok {
		return c, nil
	}
	return nil, errors.New("the token's signature is invalid")
}

// TestAuthorizationInTheHandler: the rule runs after authentication and
// before the body size, route and method checks; the 403 is the
// contract's, with an insufficient_scope challenge; what needs no token
// needs no scope.
func TestAuthorizationInTheHandler(t *testing.T) {
	f := newFixture(t, fixtureOptions{auth: BearerTokens(tokenTable{
		"reader": {Subject: "r", Scopes: []string{"sheets:read:team-7-*"}},
		"writer": {Subject: "w", Scopes: []string{"sheets:write:{tenant}.*"}, Tenant: "acme"},
		"none":   {Subject: "n"},
	})})
	append0 := `{"sequenceId":0,"entry":{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1}}`
	as := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	cases := []struct {
		method, target, body, token string
		status                      int
		typ                         string
	}{
		{"GET", "/v1/sheets/team-7-a", "", "reader", 200, ""},
		{"HEAD", "/v1/sheets/team-7-a/log", "", "reader", 200, ""},
		{"GET", "/v1/sheets/team-7-a/cells?range=A1", "", "reader", 200, ""},
		{"GET", "/v1/sheets/team-7-a/blobs/", "", "reader", 200, ""},
		{"GET", "/v1/sheets/team-8-a", "", "reader", 403, TypeForbidden},
		{"POST", "/v1/sheets/team-7-a/log", append0, "reader", 403, TypeForbidden},
		{"POST", "/v1/sheets/acme.plan/log", append0, "writer", 200, ""},
		{"GET", "/v1/sheets/acme.plan/log", "", "writer", 200, ""},
		{"POST", "/v1/sheets/globex.plan/log", append0, "writer", 403, TypeForbidden},
		{"GET", "/v1/sheets/acme.plan", "", "none", 403, TypeForbidden},
		// Authentication first.
		{"GET", "/v1/sheets/team-7-a", "", "forged", 401, TypeUnauthorized},
		{"GET", "/v1/sheets/team-7-a", "", "", 401, TypeUnauthorized},
		// Authorization before the body size and the method.
		{"POST", "/v1/sheets/team-8-a/log", `{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "reader", 403, TypeForbidden},
		{"POST", "/v1/sheets/acme.plan/log", `{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "writer", 413, TypePayloadTooLarge},
		{"DELETE", "/v1/sheets/acme.plan/log", "", "writer", 403, TypeForbidden},
		{"POST", "/v1/sheets/acme.plan", "", "writer", 405, TypeMethodNotAllowed},
		// Validation after it.
		{"GET", "/v1/sheets/team-7-a/log?start=x", "", "reader", 400, "ValidationError"},
		// Routes that are no sheet's need authentication only.
		{"GET", "/v1/openapi.yaml", "", "none", 200, ""},
		{"GET", "/v1/nothing", "", "none", 404, TypeNotFound},
		{"GET", "/v1/sheets/team-8-a/nothing", "", "reader", 404, TypeNotFound},
		// What needs no token needs no scope.
		{"GET", "/healthz", "", "", 200, ""},
		{"OPTIONS", "/v1/sheets/team-8-a/log", "", "", 204, ""},
	}
	for _, c := range cases {
		hdr := as(c.token)
		if c.token == "" {
			hdr = []string{"Authorization", ""}
		}
		r := f.do(c.method, c.target, c.body, hdr...)
		if r.status != c.status {
			t.Errorf("%s %s as %q: %d, want %d: %s", c.method, c.target, c.token, r.status, c.status, r.body)
			continue
		}
		if c.typ != "" && c.method != "HEAD" && r.json(t)["type"] != c.typ {
			t.Errorf("%s %s as %q: %s, want %s", c.method, c.target, c.token, r.body, c.typ)
		}
		if r.status == 403 {
			ch := r.header.Get("WWW-Authenticate")
			if !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(string(r.body), "not allowed on this sheet") {
				t.Errorf("%s %s: %q %s", c.method, c.target, ch, r.body)
			}
		}
		if r.status == 401 && c.token == "forged" && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("forged token: challenge %q", r.header.Get("WWW-Authenticate"))
		}
	}
	// The 403 names the scope that would do.
	r := f.do("POST", "/v1/sheets/team-7-a/log", append0, as("reader")...)
	if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, `scope="sheets:write:team-7-a"`) {
		t.Fatalf("challenge %q", ch)
	}
	// Nothing was written by the refused appends.
	for sheet, want := range map[string]string{"team-7-a": `"endSequenceId":"0"`, "globex.plan": `"endSequenceId":"0"`, "acme.plan": `"endSequenceId":"1"`} {
		if r := f.unauthenticated(t, "/v1/sheets/"+sheet); !strings.Contains(string(r.body), want) {
			t.Errorf("%s: %s", sheet, r.body)
		}
	}
}

// unauthenticated GETs target from a handler over the same stores that
// needs no credentials.
func (f *fixture) unauthenticated(t *testing.T, target string) reply {
	t.Helper()
	h, err := New(Config{Logs: f.logs, Blobs: f.blobs, Engines: f.engines})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	return reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// TestContextClaims: the claims a front end verified, from the request's
// context; a request without them is refused (fails closed).
func TestContextClaims(t *testing.T) {
	f := newFixture(t, fixtureOptions{auth: ContextClaims()})
	req := httptest.NewRequest("GET", "/v1/sheets/s1", nil)
	if r := f.serve(req, nil); r.status != 401 {
		t.Fatalf("no claims: %d", r.status)
	}
	req = req.WithContext(WithClaims(req.Context(), &Claims{Scopes: []string{"sheets:read:s*"}}))
	if r := f.serve(req, nil); r.status != 200 {
		t.Fatalf("claims: %d %s", r.status, r.body)
	}
	req = httptest.NewRequest("GET", "/v1/sheets/t1", nil)
	req = req.WithContext(WithClaims(req.Context(), &Claims{Scopes: []string{"sheets:read:s*"}}))
	if r := f.serve(req, nil); r.status != 403 {
		t.Fatalf("another sheet: %d %s", r.status, r.body)
	}
}

// TestBearerTokensNeedClaims: a verifier that answers nil claims without
// an error does not grant everything.
func TestBearerTokensNeedClaims(t *testing.T) {
	f := newFixture(t, fixtureOptions{auth: BearerTokens(tokenTable{"empty": nil})})
	if r := f.do("GET", "/v1/sheets/s1", "", "Authorization", "Bearer empty"); r.status != 401 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if _, err := New(Config{Logs: f.logs, Blobs: f.blobs, Engines: f.engines, Token: "x", Auth: ContextClaims()}); err == nil {
		t.Fatal("Token and Auth together")
	}
	req := httptest.NewRequest("GET", "/v1/sheets/s1", nil)
	req.Header.Set("Authorization", "bEaReR  empty ")
	if _, err := (bearerTokens{tokenTable{"empty": {}}}).Authenticate(req); err != nil {
		t.Fatalf("scheme case and spaces: %v", err)
	}
	req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	if _, err := (bearerTokens{tokenTable{}}).Authenticate(req); !errors.Is(err, errNoBearer) {
		t.Fatalf("basic: %v", err)
	}
}
