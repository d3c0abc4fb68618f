package api

import (
	"net/http"
	"strconv"
	"strings"
)

// TypeForbidden is the error type of the authorization check (403): the
// caller is authenticated, but its token's scopes allow nothing of the
// kind on the sheet.
const TypeForbidden = "Forbidden"

// Scope verbs. A scope is VERB + PATTERN.
const (
	ScopeRead  = "sheets:read:"
	ScopeWrite = "sheets:write:"
)

// TenantVar stands for the caller's tenant inside a pattern.
const TenantVar = "{tenant}"

// Claims is what the authorization rule reads of a verified token.
type Claims struct {
	// Subject is the token's sub, for the request log.
	Subject string
	// Scopes are the entries of the token's scope claim.
	Scopes []string
	// Tenant is the value of the deployment's tenant claim; empty when
	// the token has none.
	Tenant string
}

// Allowed is the authorization rule of the contract: whether a caller
// holding c may send method to the sheet's routes.
//
// sheets:read:PATTERN allows GET and HEAD; sheets:write:PATTERN allows
// those and POST (the only POST route is .../log). Nothing allows any
// other method. PATTERN is a sheet id, a prefix followed by "*", or "*"
// alone; "{tenant}" in it stands for c.Tenant. Two guards keep one
// tenant from reaching another's sheets, which the plain substitution
// would allow: a tenant value that contains the character following
// "{tenant}" in the pattern matches nothing (with "{tenant}-*", tenant
// "acme" would otherwise reach tenant "acme-eu"'s sheets), and neither
// does "{tenant}" directly followed by "*" (tenant "a" would reach
// tenant "ab"'s). A tenant must be 1 to 64 characters of a sheet id.
//
// It allocates nothing and reads nothing but its arguments.
func Allowed(c *Claims, method, sheet string) bool {
	if c == nil {
		return false
	}
	var write bool
	switch method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		write = true
	default:
		return false
	}
	for _, s := range c.Scopes {
		pattern, ok := strings.CutPrefix(s, ScopeWrite)
		if !ok && !write {
			pattern, ok = strings.CutPrefix(s, ScopeRead)
		}
		if ok && matchPattern(pattern, c.Tenant, sheet) {
			return true
		}
	}
	return false
}

// matchPattern reports whether pattern, with each {tenant} standing for
// tenant, matches sheet.
func matchPattern(pattern, tenant, sheet string) bool {
	prefix, wildcard := strings.CutSuffix(pattern, "*")
	if prefix == "" && !wildcard || strings.IndexByte(prefix, '*') >= 0 {
		return false
	}
	rest := sheet
	for {
		i := strings.Index(prefix, TenantVar)
		if i < 0 {
			break
		}
		lit, after := prefix[:i], prefix[i+len(TenantVar):]
		if !validTenant(tenant) {
			return false
		}
		switch {
		case after == "" && wildcard:
			return false
		case after != "" && strings.IndexByte(tenant, after[0]) >= 0:
			return false
		}
		if !strings.HasPrefix(rest, lit) || !strings.HasPrefix(rest[len(lit):], tenant) {
			return false
		}
		rest = rest[len(lit)+len(tenant):]
		prefix = after
	}
	if wildcard {
		return strings.HasPrefix(rest, prefix)
	}
	return rest == prefix
}

// validTenant: 1 to 64 of the characters a sheet id is made of, so that
// substituting it can neither add a wildcard nor reach outside the ids a
// pattern names.
func validTenant(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NeededScope is the narrowest scope that would allow method on sheet,
// named in a 403's WWW-Authenticate header (RFC 6750 insufficient_scope).
func NeededScope(method, sheet string) string {
	if method == http.MethodPost {
		return ScopeWrite + sheet
	}
	return ScopeRead + sheet
}

// TokenClaims says where a deployment's tokens carry what the rule reads.
// The zero value reads the standard scope claim and the claim "tenant".
type TokenClaims struct {
	// Tenant names the claim {tenant} stands for (default "tenant").
	Tenant string
	// ScopePrefix, when set, must begin every scope the rule reads, and
	// is removed first; scopes without it are ignored. Amazon Cognito
	// writes a resource server's scopes as "IDENTIFIER/NAME": with
	// ScopePrefix "IDENTIFIER/", the scope "IDENTIFIER/sheets:read:*"
	// reads as "sheets:read:*".
	ScopePrefix string
}

// TenantClaim is the name of the tenant claim.
func (tc TokenClaims) TenantClaim() string {
	if tc.Tenant == "" {
		return "tenant"
	}
	return tc.Tenant
}

// Claims picks what the rule reads out of a verified token's claims
// (decoded JSON): sub, the scope claim (a space-separated string, or an
// array of strings), and the tenant claim (a string, or an integer
// written in decimal).
func (tc TokenClaims) Claims(m map[string]any) *Claims {
	c := &Claims{}
	c.Subject, _ = m["sub"].(string)
	switch t := m[tc.TenantClaim()].(type) {
	case string:
		c.Tenant = t
	case float64:
		if t == float64(int64(t)) {
			c.Tenant = strconv.FormatInt(int64(t), 10)
		}
	}
	add := func(s string) {
		if tc.ScopePrefix != "" {
			var ok bool
			if s, ok = strings.CutPrefix(s, tc.ScopePrefix); !ok {
				return
			}
		}
		c.Scopes = append(c.Scopes, s)
	}
	switch v := m["scope"].(type) {
	case string:
		for _, s := range strings.Fields(v) {
			add(s)
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	case []string:
		for _, s := range v {
			add(s)
		}
	}
	return c
}
