package apigw

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/pkg/api"
)

// API Gateway's JWT authorizer hands the function the claims it verified
// in requestContext.authorizer.jwt.claims, every value a string: numbers
// in decimal ("exp": "1735689600"), and arrays and objects as Go prints
// them, an array of strings as "[a b c]" (elements space-separated, no
// quotes). So a scope claim that was the array ["sheets:read:a",
// "sheets:write:b"] arrives as "[sheets:read:a sheets:write:b]", and a
// space-separated scope string arrives unchanged. FlattenClaims does what
// API Gateway does (for the local front); ClaimValues undoes it as far as
// the scope rule needs.

// Option changes how Handler serves events.
type Option func(*options)

type options struct {
	contexts []func(context.Context, events.APIGatewayV2HTTPRequest) context.Context
}

// WithJWTClaims puts the claims API Gateway's JWT authorizer verified
// into each request's context (api.WithClaims), read as tc says, for
// api.ContextClaims. An event without them gets no claims: the handler
// then refuses the request (401), it never grants everything.
func WithJWTClaims(tc api.TokenClaims) Option {
	return func(o *options) {
		o.contexts = append(o.contexts, func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) context.Context {
			if claims := JWTClaims(ev); claims != nil {
				return api.WithClaims(ctx, tc.Claims(ClaimValues(claims)))
			}
			return ctx
		})
	}
}

// JWTClaims are the event's verified JWT claims; nil when no JWT
// authorizer ran.
func JWTClaims(ev events.APIGatewayV2HTTPRequest) map[string]string {
	a := ev.RequestContext.Authorizer
	if a == nil || a.JWT == nil {
		return nil
	}
	if a.JWT.Claims == nil {
		return map[string]string{}
	}
	return a.JWT.Claims
}

// ClaimValues turns flattened claims back into values: "[a b]" into the
// array ["a", "b"] (a JSON array of strings, should API Gateway ever
// send one as JSON, too); everything else stays a string.
func ClaimValues(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = claimValue(v)
	}
	return out
}

func claimValue(v string) any {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return v
	}
	var list []string
	if json.Unmarshal([]byte(v), &list) == nil {
		return toAny(list)
	}
	return toAny(strings.Fields(v[1 : len(v)-1]))
}

func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// FlattenClaims renders decoded JWT claims as API Gateway passes them to
// the function.
func FlattenClaims(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = flatten(v)
	}
	return out
}

func flatten(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		return t.String()
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = flatten(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}
