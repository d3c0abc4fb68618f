package lambdarun

import (
	"fmt"
	"strings"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// authFromEnv reads how the front door authenticates callers
// (awsschema.EnvAPIAuth) and, for JWTs, where tokens carry what the scope
// rule reads.
func authFromEnv(getenv func(string) string, c *Config) error {
	switch v := strings.ToLower(strings.TrimSpace(getenv(awsschema.EnvAPIAuth))); v {
	case "", awsschema.APIAuthIAM:
		c.APIAuth = awsschema.APIAuthIAM
	case awsschema.APIAuthJWT, awsschema.APIAuthNone:
		c.APIAuth = v
	default:
		return fmt.Errorf("%s=%q: want %s, %s or %s", awsschema.EnvAPIAuth, v, awsschema.APIAuthJWT, awsschema.APIAuthIAM, awsschema.APIAuthNone)
	}
	c.JWTClaims = api.TokenClaims{
		Tenant:      strings.TrimSpace(getenv(awsschema.EnvJWTTenantClaim)),
		ScopePrefix: strings.TrimSpace(getenv(awsschema.EnvJWTScopePrefix)),
	}
	return nil
}

// APIAuthenticator is the API handler's authentication: behind API
// Gateway's JWT authorizer, the claims it verified (a request without
// them is refused), held to the scope rule; behind IAM or nothing, none
// (the front door decided, and IAM policies say who may touch which
// sheet). Verifying costs nothing here: API Gateway did it.
func APIAuthenticator(c Config) api.Authenticator {
	if c.APIAuth == awsschema.APIAuthJWT {
		return api.ContextClaims()
	}
	return nil
}

// APIEventOptions are the options of apigw.Handler that go with
// APIAuthenticator: under JWT, the event's claims go into the request's
// context.
func APIEventOptions(c Config) []apigw.Option {
	if c.APIAuth == awsschema.APIAuthJWT {
		return []apigw.Option{apigw.WithJWTClaims(c.JWTClaims)}
	}
	return nil
}
