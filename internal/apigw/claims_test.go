package apigw_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// TestClaimForms: what API Gateway hands the function for each kind of
// claim, and what the rule reads back.
func TestClaimForms(t *testing.T) {
	decoded := map[string]any{}
	if err := json.Unmarshal([]byte(`{"sub":"u1","exp":1735689600,"scope":["sheets:read:a","sheets:write:{tenant}.*"],
		"tenant":"acme","n":4.5,"ok":true,"groups":["g1"],"empty":[]}`), &decoded); err != nil {
		t.Fatal(err)
	}
	flat := apigw.FlattenClaims(decoded)
	want := map[string]string{"sub": "u1", "exp": "1735689600", "scope": "[sheets:read:a sheets:write:{tenant}.*]",
		"tenant": "acme", "n": "4.5", "ok": "true", "groups": "[g1]", "empty": "[]"}
	if !reflect.DeepEqual(flat, want) {
		t.Fatalf("flattened %v\nwant %v", flat, want)
	}
	for in, out := range map[string]any{
		"[a b]":          []any{"a", "b"},
		"[]":             []any{},
		`["a","b c"]`:    []any{"a", "b c"},
		"a b":            "a b",
		"[not closed":    "[not closed",
		"sheets:read:[x": "sheets:read:[x",
	} {
		if got := apigw.ClaimValues(map[string]string{"k": in})["k"]; !reflect.DeepEqual(got, out) {
			t.Errorf("%q: %#v, want %#v", in, got, out)
		}
	}
	for name, scope := range map[string]string{"array": flat["scope"], "string": "sheets:read:a sheets:write:{tenant}.*"} {
		c := api.TokenClaims{}.Claims(apigw.ClaimValues(map[string]string{"scope": scope, "tenant": "acme"}))
		if strings.Join(c.Scopes, "|") != "sheets:read:a|sheets:write:{tenant}.*" || c.Tenant != "acme" {
			t.Errorf("%s: %+v", name, c)
		}
	}
}

// TestScopeRuleBehindTheJWTAuthorizer: the API function as it runs under
// SHEETLOG_API_AUTH=jwt applies the rule to the claims in the event, in
// both forms of the scope claim; without claims it refuses; under IAM the
// rule is off.
func TestScopeRuleBehindTheJWTAuthorizer(t *testing.T) {
	handler := func(auth string) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		c, err := lambdarun.FromEnv(func(k string) string {
			return map[string]string{awsschema.EnvTable: "t", awsschema.EnvBucket: "b", awsschema.EnvAPIAuth: auth,
				awsschema.EnvJWTTenantClaim: "custom:org", awsschema.EnvJWTScopePrefix: "sheetlog/"}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		h, err := lambdarun.APIHandler(lambdarun.Stores{Logs: logmem.NewStore(logmem.Options{}), Blobs: blobmem.New(blobmem.Options{})},
			c, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return apigw.Handler(h, lambdarun.APIEventOptions(c)...)
	}
	withClaims := func(ev events.APIGatewayV2HTTPRequest, claims map[string]string) events.APIGatewayV2HTTPRequest {
		if claims != nil {
			ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims}}
		}
		return ev
	}
	appendBody := `{"sequenceId":0,"entry":{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1}}`
	post := func(sheet string) events.APIGatewayV2HTTPRequest {
		return event("POST", "/v1/sheets/"+sheet+"/log", "", map[string]string{"content-type": "application/json"}, appendBody)
	}
	get := func(sheet string) events.APIGatewayV2HTTPRequest {
		return event("GET", "/v1/sheets/"+sheet, "", nil, "")
	}
	arrayScopes := map[string]string{"sub": "u1", "custom:org": "acme",
		"scope": "[sheetlog/sheets:read:team-7-* sheetlog/sheets:write:{tenant}.* sheets:write:*]"}
	stringScopes := map[string]string{"sub": "u1", "custom:org": "acme",
		"scope": "openid sheetlog/sheets:read:team-7-* sheetlog/sheets:write:{tenant}.*"}
	jwt := handler("jwt")
	for _, c := range []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		claims map[string]string
		status int
	}{
		{"array: read", get("team-7-a"), arrayScopes, 200},
		{"array: no write", post("team-7-a"), arrayScopes, 403},
		{"array: tenant write", post("acme.plan"), arrayScopes, 200},
		{"array: other tenant", get("globex.plan"), arrayScopes, 403},
		{"string: read", get("team-7-b"), stringScopes, 200},
		{"string: no write", post("team-7-b"), stringScopes, 403},
		{"string: tenant write", post("acme.x"), stringScopes, 200},
		{"no claims", get("team-7-a"), nil, 401},
		{"empty claims", get("team-7-a"), map[string]string{}, 403},
	} {
		resp, err := jwt(context.Background(), withClaims(c.ev, c.claims))
		if err != nil || resp.StatusCode != c.status {
			t.Errorf("%s: %d %s %v", c.name, resp.StatusCode, resp.Body, err)
		}
		if resp.StatusCode == 403 && !strings.Contains(resp.Body, `"type":"Forbidden"`) {
			t.Errorf("%s: %s", c.name, resp.Body)
		}
	}
	iam := handler("iam")
	for _, ev := range []events.APIGatewayV2HTTPRequest{post("globex.plan"), withClaims(get("globex.plan"), stringScopes)} {
		if resp, _ := iam(context.Background(), ev); resp.StatusCode != 200 {
			t.Errorf("IAM: %d %s", resp.StatusCode, resp.Body)
		}
	}
	if _, err := lambdarun.FromEnv(func(k string) string {
		return map[string]string{awsschema.EnvTable: "t", awsschema.EnvBucket: "b", awsschema.EnvAPIAuth: "cognito"}[k]
	}); err == nil {
		t.Fatal("an unknown auth mode accepted")
	}
}
