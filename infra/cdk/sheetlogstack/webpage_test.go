package sheetlogstack

import (
	"slices"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/webui"
)

// isWebPageRoute tells the web page's routes (GET or HEAD of one of its
// files) from the API's.
func isWebPageRoute(r map[string]any) bool {
	method, path, _ := strings.Cut(props(r)["RouteKey"].(string), " ")
	return (method == "GET" || method == "HEAD") && slices.Contains(webui.Paths(), path)
}

// The web page's files, and only they, are reachable without credentials,
// whatever authorizer guards the API; they go to the API function like
// every other route.
func TestWebPageRoutes(t *testing.T) {
	for name, ctx := range map[string]map[string]string{
		"iam":       nil,
		"jwt":       {CtxJWTIssuer: "https://issuer.example.com/", CtxJWTAudience: "sheetlog"},
		"cors":      {CtxCORSOrigins: "https://app.example.com"},
		"anonymous": {CtxAllowAnonymous: "true"},
	} {
		t.Run(name, func(t *testing.T) {
			s := synth(t, ctx)
			integID, _ := s.only(t, "AWS::ApiGatewayV2::Integration")
			want := map[string]bool{}
			for _, p := range webui.Paths() {
				want["GET "+p] = true
				want["HEAD "+p] = true
			}
			got := map[string]bool{}
			for id, r := range s.resources("AWS::ApiGatewayV2::Route") {
				p := props(r)
				key := p["RouteKey"].(string)
				if !isWebPageRoute(r) {
					preflight := strings.HasPrefix(key, "OPTIONS ") // TestCORSPreflightRoutes
					if name != "anonymous" && p["AuthorizationType"] == "NONE" && !preflight {
						t.Errorf("route %s (%s) is anonymous", id, key)
					}
					continue
				}
				got[key] = true
				if p["AuthorizationType"] != "NONE" || p["AuthorizerId"] != nil {
					t.Errorf("%s: AuthorizationType %v, authorizer %v: the page must load without credentials", key, p["AuthorizationType"], p["AuthorizerId"])
				}
				if !strings.Contains(show(p["Target"]), integID) {
					t.Errorf("%s targets %s, not the API function's integration %s", key, show(p["Target"]), integID)
				}
			}
			if !jsonEqual(got, want) {
				t.Errorf("web page routes %v, want %v", got, want)
			}
		})
	}
	// A function URL has no routes: the page is served there as the whole
	// function is (IAM or, with allowAnonymous, open).
	s := synth(t, map[string]string{CtxEndpoint: "functionurl"})
	if n := len(s.resources("AWS::ApiGatewayV2::Route")); n != 0 {
		t.Errorf("function URL stack has %d routes", n)
	}
}
