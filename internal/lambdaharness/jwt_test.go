package lambdaharness

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/pkg/jwtauth"
	"github.com/sheetlog/sheetlog/pkg/jwtauth/jwtauthtest"
	"github.com/sheetlog/sheetlog/pkg/webui"
)

// TestJWTFront: the front's authorizer refuses bad tokens as API Gateway
// does, without invoking the function, and hands a good token's claims
// on flattened as API Gateway does.
func TestJWTFront(t *testing.T) {
	is := jwtauthtest.New(t, jwtauth.RS256)
	o := &JWTOptions{Keys: jwtauthtest.WriteJWKS(t, t.TempDir(), is), Issuer: is.Name, Audience: []string{is.Audience},
		TenantClaim: "org", ScopePrefix: "rs/"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	auth, err := newAuthorizer(ctx, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen *events.APIGatewayV2HTTPRequest
	fn := InvokerFunc(func(_ context.Context, payload []byte) (Result, error) {
		seen = &events.APIGatewayV2HTTPRequest{}
		if err := json.Unmarshal(payload, seen); err != nil {
			return Result{}, err
		}
		b, _ := json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "ok"})
		return Result{Status: 200, Body: b}, nil
	})
	srv := httptest.NewServer(&Front{Fn: fn, Auth: auth})
	defer srv.Close()
	get := func(method, token string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+"/v1/sheets/s", nil)
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, bt := range append(is.BadTokens(t), jwtauthtest.BadToken{Name: "none", Token: ""}) {
		seen = nil
		tok := ""
		if bt.Token != "" {
			tok = "Bearer " + bt.Token
		}
		status, body, hdr := get("GET", tok)
		if status != 401 || body != `{"message":"Unauthorized"}` || seen != nil || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: %d %s %v (invoked: %v)", bt.Name, status, body, hdr, seen != nil)
		}
	}
	// The identity source takes the token with or without "Bearer ".
	good := is.Token(t, "u1", "", "rs/sheets:read:*")
	for _, tok := range []string{"Bearer " + good, good} {
		if status, body, _ := get("GET", tok); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		claims := seen.RequestContext.Authorizer.JWT.Claims
		if claims["sub"] != "u1" || claims["scope"] != "rs/sheets:read:*" || claims["aud"] != is.Audience || claims["exp"] == "" || strings.Contains(claims["exp"], "e+") {
			t.Fatalf("claims %v", claims)
		}
	}
	// Preflights pass, as API Gateway answers them before any authorizer,
	// and so do the web page's files, whose routes have none.
	if status, _, _ := get("OPTIONS", ""); status != 200 {
		t.Fatalf("OPTIONS: %d", status)
	}
	for _, p := range webui.Paths() {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	if env := o.apiEnv(); env["SHEETLOG_API_AUTH"] != "jwt" || env["SHEETLOG_JWT_TENANT_CLAIM"] != "org" || env["SHEETLOG_JWT_SCOPE_PREFIX"] != "rs/" {
		t.Fatalf("env %v", env)
	}
	if (*JWTOptions)(nil).apiEnv() != nil {
		t.Fatal("env without JWT")
	}
}
