package sheetlogstack

import (
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// TestAPIAuthEnv: the API function is told how the front door
// authenticates, so that it applies the per-sheet scope rule behind the
// JWT authorizer only, with the tenant claim and scope prefix given.
func TestAPIAuthEnv(t *testing.T) {
	for name, c := range map[string]struct {
		ctx  map[string]string
		want map[string]any
	}{
		"jwt": {map[string]string{CtxJWTIssuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc", CtxJWTAudience: "client1",
			CtxJWTTenantClaim: "tenant", CtxJWTScopePrefix: "sheetlog/"},
			map[string]any{awsschema.EnvAPIAuth: "jwt", awsschema.EnvJWTTenantClaim: "tenant", awsschema.EnvJWTScopePrefix: "sheetlog/"}},
		"jwt, defaults": {map[string]string{CtxJWTIssuer: "https://issuer.example.com/", CtxJWTAudience: "a"},
			map[string]any{awsschema.EnvAPIAuth: "jwt", awsschema.EnvJWTTenantClaim: nil, awsschema.EnvJWTScopePrefix: nil}},
		"anonymous": {map[string]string{CtxAllowAnonymous: "true"}, map[string]any{awsschema.EnvAPIAuth: "none"}},
	} {
		s := synth(t, c.ctx)
		vars := props(s.resources("AWS::Lambda::Function")[logicalID(s, s.stack.API)])["Environment"].(map[string]any)["Variables"].(map[string]any)
		for k, v := range c.want {
			if vars[k] != v {
				t.Errorf("%s: %s = %v, want %v", name, k, vars[k], v)
			}
		}
	}
}

func TestJWTClaimPropsNeedJWT(t *testing.T) {
	for name, p := range map[string]Props{
		"tenant claim without jwt": {JWTTenantClaim: "org"},
		"scope prefix without jwt": {JWTScopePrefix: "rs/"},
	} {
		if _, err := p.withDefaults(); err == nil || !strings.Contains(err.Error(), "needs a JWT authorizer") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
