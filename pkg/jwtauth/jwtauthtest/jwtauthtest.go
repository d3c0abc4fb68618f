// Package jwtauthtest is a token issuer for tests: it holds a signing key,
// writes or serves its key set, signs good tokens, and makes every kind of
// bad token a verifier must refuse, each with the reason it must give.
// The verifier's own tests, the server's loopback tests and the Lambda
// harness's use the same tokens.
package jwtauthtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sheetlog/sheetlog/pkg/jwtauth"
)

// Defaults of the tokens an Issuer signs.
const (
	IssuerName = "https://issuer.test.sheetlog/"
	Audience   = "sheetlog-test"
)

// Issuer signs tokens with Key.
type Issuer struct {
	Key      crypto.Signer
	KID      string
	Name     string // iss
	Audience string // aud
}

// New makes an issuer with a fresh key for alg.
func New(t testing.TB, alg string) *Issuer {
	t.Helper()
	var key crypto.Signer
	var err error
	if alg == jwtauth.RS256 {
		// The smallest size accepted: a test needs no more, and 3072-bit
		// keys take a second each to make.
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = jwtauth.GenerateKey(alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	kid, err := jwtauth.KeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Key: key, KID: kid, Name: IssuerName, Audience: Audience}
}

// JWKS is the public key set of the issuers' keys.
func JWKS(t testing.TB, issuers ...*Issuer) []byte {
	t.Helper()
	keys := make([]crypto.Signer, len(issuers))
	for i, is := range issuers {
		keys[i] = is.Key
	}
	raw, err := jwtauth.PublicJWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// WriteJWKS writes the issuers' key set into dir and returns its path.
func WriteJWKS(t testing.TB, dir string, issuers ...*Issuer) string {
	t.Helper()
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, JWKS(t, issuers...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Token signs a token for sub with scopes (and tenant, when not empty),
// issued now, valid for an hour, from this issuer to its audience.
func (is *Issuer) Token(t testing.TB, sub, tenant string, scopes ...string) string {
	t.Helper()
	return is.Sign(t, jwtauth.TokenSpec{Subject: sub, Tenant: tenant, Scopes: scopes})
}

// Sign signs spec, with the issuer's name and audience where spec has
// none.
func (is *Issuer) Sign(t testing.TB, spec jwtauth.TokenSpec) string {
	t.Helper()
	if spec.Issuer == "" {
		spec.Issuer = is.Name
	}
	if spec.Audience == nil {
		spec.Audience = []string{is.Audience}
	}
	tok, err := jwtauth.Sign(is.Key, spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Raw signs arbitrary claims with an arbitrary header, for tokens Sign
// would not make.
func (is *Issuer) Raw(t testing.TB, method jwt.SigningMethod, key any, header, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// BadToken is a token a verifier must refuse, and why.
type BadToken struct {
	Name  string
	Token string
	// Err is the jwtauth error it must be refused with.
	Err error
}

// BadTokens are tokens that must each be refused, all of them for
// sub "mallory" with the scope "sheets:write:*", which would allow
// anything if they were accepted.
func (is *Issuer) BadTokens(t testing.TB) []BadToken {
	t.Helper()
	now := time.Now()
	scope := []string{"sheets:write:*"}
	good := func(mod func(*jwtauth.TokenSpec)) string {
		spec := jwtauth.TokenSpec{Subject: "mallory", Scopes: scope}
		mod(&spec)
		return is.Sign(t, spec)
	}
	claims := map[string]any{
		"sub": "mallory", "iss": is.Name, "aud": is.Audience, "scope": "sheets:write:*",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	// "none": an unsigned token, header and claims encoded by hand.
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	none := enc(map[string]any{"alg": "none", "typ": "JWT", "kid": is.KID}) + "." + enc(claims) + "."
	// Algorithm confusion: HS256 keyed with the public key's PEM, which
	// a verifier that let the token pick the algorithm would accept.
	der, err := x509.MarshalPKIXPublicKey(is.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs256 := is.Raw(t, jwt.SigningMethodHS256, pubPEM, map[string]any{"kid": is.KID}, claims)
	// Another key: its own kid (not in the set), or this issuer's kid.
	other := New(t, jwtauth.ES256)
	unknownKID := other.Sign(t, jwtauth.TokenSpec{Subject: "mallory", Scopes: scope, Issuer: is.Name, Audience: []string{is.Audience}})
	forgedKID := is.Raw(t, jwt.SigningMethodES256, other.Key, map[string]any{"kid": is.KID}, claims)
	valid := good(func(*jwtauth.TokenSpec) {})
	truncated := valid[:len(valid)-8]
	// Properly signed, and 100 KB long.
	huge := good(func(s *jwtauth.TokenSpec) { s.Subject = strings.Repeat("m", 100<<10) })
	noExp := is.Raw(t, jwt.GetSigningMethod(mustAlg(t, is.Key)), is.Key, map[string]any{"kid": is.KID},
		map[string]any{"sub": "mallory", "iss": is.Name, "aud": is.Audience, "scope": "sheets:write:*"})
	return []BadToken{
		{"expired", good(func(s *jwtauth.TokenSpec) { s.Now = now.Add(-2 * time.Hour) }), jwtauth.ErrExpired},
		{"expired beyond the leeway", good(func(s *jwtauth.TokenSpec) { s.Now = now.Add(-time.Hour - 2*time.Minute) }), jwtauth.ErrExpired},
		{"not yet valid", good(func(s *jwtauth.TokenSpec) { s.Now = now.Add(10 * time.Minute) }), jwtauth.ErrNotYetValid},
		{"wrong issuer", good(func(s *jwtauth.TokenSpec) { s.Issuer = "https://evil.example/" }), jwtauth.ErrIssuer},
		{"wrong audience", good(func(s *jwtauth.TokenSpec) { s.Audience = []string{"another-api"} }), jwtauth.ErrAudience},
		{"no expiry", noExp, jwtauth.ErrNoExpiry},
		{"alg none", none, jwtauth.ErrAlgorithm},
		{"HS256 keyed with the public key", hs256, jwtauth.ErrAlgorithm},
		{"unknown kid", unknownKID, jwtauth.ErrUnknownKey},
		{"known kid, another key", forgedKID, jwtauth.ErrSignature},
		{"truncated signature", truncated, jwtauth.ErrSignature},
		{"100 KB", huge, jwtauth.ErrTooLarge},
		{"not a JWT", "not-a-jwt", jwtauth.ErrMalformed},
	}
}

func mustAlg(t testing.TB, key crypto.Signer) string {
	t.Helper()
	alg, err := jwtauth.Algorithm(key)
	if err != nil {
		t.Fatal(err)
	}
	return alg
}
