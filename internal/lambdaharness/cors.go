package lambdaharness

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// CORS is an HTTP API's CORS configuration, applied as API Gateway applies
// it (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html):
//
//   - A preflight (OPTIONS with Origin and Access-Control-Request-Method)
//     is answered by the gateway itself from this configuration, before
//     any route, authorizer or integration: the function never sees it.
//   - On every other request the gateway ignores the CORS headers the
//     integration returned and adds the configured ones when the request
//     has an allowed Origin.
//
// What the documentation does not say is filled in as follows: a preflight
// is answered 204 No Content, and a preflight or request from an origin not
// allowed gets no CORS header at all (the browser then refuses it).
type CORS struct {
	AllowOrigins []string
	AllowMethods []string
	AllowHeaders []string
	MaxAge       int
}

// StackCORS is the configuration the CDK stack deploys for origins.
func StackCORS(origins ...string) *CORS {
	return &CORS{AllowOrigins: origins, AllowMethods: awsschema.CORSAllowMethods,
		AllowHeaders: awsschema.CORSAllowHeaders, MaxAge: awsschema.CORSMaxAgeSeconds}
}

// IsPreflight reports whether r is a CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowOrigin is the Access-Control-Allow-Origin value for origin, or "".
func (c *CORS) allowOrigin(origin string) string {
	switch {
	case origin == "":
		return ""
	case slices.Contains(c.AllowOrigins, "*"):
		return "*"
	case slices.Contains(c.AllowOrigins, origin):
		return origin
	}
	return ""
}

// Preflight answers a preflight request.
func (c *CORS) Preflight(w http.ResponseWriter, r *http.Request) {
	if o := c.allowOrigin(r.Header.Get("Origin")); o != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
		if c.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAge))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// Apply replaces the CORS headers of the function's reply with the
// gateway's, for a request from origin.
func (c *CORS) Apply(resp *events.APIGatewayV2HTTPResponse, origin string) {
	isCORS := func(k string) bool { return strings.HasPrefix(strings.ToLower(k), "access-control-") }
	for k := range resp.Headers {
		if isCORS(k) {
			delete(resp.Headers, k)
		}
	}
	for k := range resp.MultiValueHeaders {
		if isCORS(k) {
			delete(resp.MultiValueHeaders, k)
		}
	}
	if o := c.allowOrigin(origin); o != "" {
		if resp.Headers == nil {
			resp.Headers = map[string]string{}
		}
		resp.Headers["Access-Control-Allow-Origin"] = o
	}
}
