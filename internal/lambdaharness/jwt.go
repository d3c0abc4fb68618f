package lambdaharness

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
	"github.com/sheetlog/sheetlog/pkg/webui"
)

// Authorizer stands for the authorizer API Gateway runs before the
// function: it either completes the event (ev) or answers the request
// itself and returns false.
type Authorizer interface {
	Authorize(w http.ResponseWriter, r *http.Request, ev *events.APIGatewayV2HTTPRequest) bool
}

// JWTOptions put the harness in the JWT configuration of the stack: the
// front verifies each request's bearer token with these keys, as API
// Gateway's JWT authorizer does, refuses a bad one as it does (401
// {"message":"Unauthorized"}, the function is not invoked), and hands the
// function the claims of a good one in requestContext.authorizer.jwt.claims,
// flattened to strings as API Gateway flattens them. The API function
// runs with the environment the stack gives it then
// (SHEETLOG_API_AUTH=jwt, the tenant claim, the scope prefix).
type JWTOptions struct {
	// Keys is the key set (a file or a URL); Issuer and Audience what
	// the authorizer is configured with.
	Keys     string
	Issuer   string
	Audience []string
	// TenantClaim and ScopePrefix go to the function.
	TenantClaim, ScopePrefix string
}

// apiEnv is the API function's environment under o (nil: IAM, the
// stack's default, where the rule is off).
func (o *JWTOptions) apiEnv() map[string]string {
	if o == nil {
		return nil
	}
	return awsschema.APIAuthEnv(awsschema.APIAuthJWT, o.TenantClaim, o.ScopePrefix)
}

// newAuthorizer is the front's authorizer under o: nil without JWTs. Its
// key set is refreshed until ctx ends.
func newAuthorizer(ctx context.Context, o *JWTOptions, log *slog.Logger) (Authorizer, error) {
	if o == nil {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := jwtauth.New(ctx, jwtauth.Options{Keys: o.Keys, Issuer: o.Issuer, Audience: o.Audience, Logger: log})
	if err != nil {
		return nil, err
	}
	return &jwtAuthorizer{v: v, log: log}, nil
}

// jwtAuthorizer verifies tokens with jwtauth: the same checks as API
// Gateway's (issuer, audience or client_id, exp, nbf, iat, signature by a
// key of the set), with asymmetric algorithms only (API Gateway takes
// RSA only; the harness takes ES256 and EdDSA too, so tests may use
// either).
type jwtAuthorizer struct {
	v   *jwtauth.Verifier
	log *slog.Logger
}

func (a *jwtAuthorizer) Authorize(w http.ResponseWriter, r *http.Request, ev *events.APIGatewayV2HTTPRequest) bool {
	// API Gateway answers CORS preflight requests itself, before any
	// authorizer (here the function answers them); the web page's routes
	// have no authorizer in the stack.
	if r.Method == http.MethodOptions || slices.Contains(webui.Paths(), r.URL.EscapedPath()) {
		return true
	}
	// The identity source is the Authorization header: the token, with
	// or without "Bearer ".
	tok := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(tok) >= 7 && strings.EqualFold(tok[:7], "Bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	var claims map[string]any
	err := errors.New("no token")
	if tok != "" {
		claims, err = a.v.VerifyClaims(r.Context(), tok)
	}
	if err != nil {
		a.log.Debug("front: JWT refused", "path", r.URL.Path, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token" error_description=`+strconv.Quote(err.Error()))
		gatewayError(w, http.StatusUnauthorized, "Unauthorized")
		return false
	}
	ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: apigw.FlattenClaims(claims)},
	}
	return true
}
