package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/jwtauth"
	"github.com/sheetlog/sheetlog/pkg/jwtauth/jwtauthtest"
)

// jwtIssuer is the issuer of a JWT deployment's tokens, when the suite
// holds its signing key: SHEETLOG_E2E_JWT_KEY (a PEM private key file),
// SHEETLOG_E2E_JWT_ISSUER and SHEETLOG_E2E_JWT_AUDIENCE (what the
// deployment's authorizer is configured with), SHEETLOG_E2E_JWT_TENANT_CLAIM
// (default "tenant"). `make e2e-jwt` sets them for the local harness.
func jwtIssuer(t *testing.T) (*jwtauthtest.Issuer, string) {
	t.Helper()
	needDeployment(t)
	path := os.Getenv("SHEETLOG_E2E_JWT_KEY")
	if path == "" {
		t.Skip("not a JWT deployment whose signing key the suite holds (SHEETLOG_E2E_JWT_KEY): `make e2e-jwt` runs this against the harness in its JWT configuration")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwtauth.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := jwtauth.KeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	claim := os.Getenv("SHEETLOG_E2E_JWT_TENANT_CLAIM")
	if claim == "" {
		claim = "tenant"
	}
	return &jwtauthtest.Issuer{Key: key, KID: kid, Name: os.Getenv("SHEETLOG_E2E_JWT_ISSUER"),
		Audience: os.Getenv("SHEETLOG_E2E_JWT_AUDIENCE")}, claim
}

// send is one request with the given bearer token (none when empty).
func send(t *testing.T, method, path, token string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(context.Background(), method, cfg.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func oneEntry(seq int) map[string]any {
	return map[string]any{"sequenceId": seq, "entry": map[string]any{"type": "SetCellValueAndFormat", "row": seq, "column": 0, "value": seq}}
}

// TestSheetScopes runs the scope table through the deployment's front
// door: every method (GET, HEAD, POST) × pattern kind (exact, prefix, any,
// {tenant}) × scope (read, write) × a sheet it matches and one it does
// not; then every kind of bad token, refused by the authorizer without
// changing anything.
func TestSheetScopes(t *testing.T) {
	is, tenantClaim := jwtIssuer(t)
	prefix := "sc" + cfg.runID
	mine, other := prefix+"-a", "x"+prefix+"-a"
	tenant := "t" + cfg.runID
	kinds := []struct {
		name, pattern, tenant string
		match, miss           string
	}{
		{"exact", mine, "", mine, prefix + "-b"},
		{"prefix", prefix + "-*", "", mine, other},
		{"any", "*", "", mine, ""},
		{"tenant", "{tenant}.*", tenant, tenant + ".plan", "u" + tenant + ".plan"},
	}
	// next is each sheet's next sequence id, as far as this test wrote.
	next := map[string]int{}
	for _, verb := range []string{"read", "write"} {
		for _, k := range kinds {
			tok := is.Sign(t, jwtauth.TokenSpec{Subject: "e2e-" + verb + "-" + k.name, Tenant: k.tenant, TenantClaim: tenantClaim,
				Scopes: []string{"openid", "sheets:" + verb + ":" + k.pattern}})
			for _, sheet := range []string{k.match, k.miss} {
				if sheet == "" {
					continue
				}
				matches := sheet == k.match
				for _, method := range []string{"GET", "HEAD", "POST"} {
					want := 403
					if matches && (method != "POST" || verb == "write") {
						want = 200
					}
					var r reply
					if method == "POST" {
						r = send(t, method, sheetPath(sheet)+"/log", tok, oneEntry(next[sheet]))
					} else {
						r = send(t, method, sheetPath(sheet), tok, nil)
					}
					what := fmt.Sprintf("sheets:%s:%s (%s), %s %s", verb, k.pattern, k.name, method, sheet)
					r.expect(t, want, what)
					if want == 200 && method == "POST" {
						next[sheet]++
					}
					if want == 403 && method != "HEAD" && !strings.Contains(string(r.body), `"type":"Forbidden"`) {
						t.Fatalf("%s: %s", what, r.body)
					}
				}
			}
		}
	}

	// Bad tokens: each refused at the front door (API Gateway's 401), the
	// log unchanged.
	reader := is.Token(t, "e2e-reader", "", "sheets:read:*")
	before := send(t, "GET", sheetPath(mine), reader, nil).expect(t, 200, "status")
	for _, bt := range is.BadTokens(t) {
		r := send(t, "POST", sheetPath(mine)+"/log", bt.Token, oneEntry(next[mine]))
		if r.status != 401 {
			t.Errorf("%s: %d %s", bt.Name, r.status, truncate(string(r.body), 200))
		}
	}
	if r := send(t, "POST", sheetPath(mine)+"/log", "", oneEntry(next[mine])); r.status != 401 {
		t.Errorf("no token: %d %s", r.status, r.body)
	}
	after := send(t, "GET", sheetPath(mine), reader, nil).expect(t, 200, "status")
	var b, a struct {
		End string `json:"endSequenceId"`
	}
	before.decode(t, &b)
	after.decode(t, &a)
	if a.End != b.End || a.End != fmt.Sprint(next[mine]) {
		t.Fatalf("the log changed under bad tokens: %s, then %s (this test wrote %d)", b.End, a.End, next[mine])
	}
}
