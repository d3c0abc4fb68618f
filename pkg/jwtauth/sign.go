package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// GenerateKey makes a new private key for alg (RS256: RSA 3072 bits,
// ES256: P-256, EdDSA: Ed25519).
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand.Reader, 3072)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("jwtauth: algorithm %q: want one of %s", alg, strings.Join(Algorithms, ", "))
}

// Algorithm is the algorithm a key signs with.
func Algorithm(key crypto.Signer) (string, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("jwtauth: RSA key of %d bits; want at least %d", k.N.BitLen(), minRSABits)
		}
		return RS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("jwtauth: EC key on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return ES256, nil
	case ed25519.PrivateKey:
		return EdDSA, nil
	}
	return "", fmt.Errorf("jwtauth: unsupported key type %T", key)
}

// EncodePrivateKey writes key as PEM (PKCS #8).
func EncodePrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PEM private key: PKCS #8 ("PRIVATE KEY", as
// openssl genpkey writes), or the older "EC PRIVATE KEY" and "RSA
// PRIVATE KEY" forms.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("jwtauth: no PEM private key found")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue // EC PARAMETERS and the like
		}
		if err != nil {
			return nil, fmt.Errorf("jwtauth: %s: %w", block.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("jwtauth: unsupported key type %T", key)
		}
		if _, err := Algorithm(s); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// KeyID is the RFC 7638 thumbprint of a public key (SHA-256, base64url):
// the same key always gets the same id.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		return "", err
	}
	m := jwk.Marshal()
	// The required members only, in lexicographic order, no spaces.
	var members []string
	q := func(k, v string) string { return fmt.Sprintf("%q:%q", k, v) }
	switch m.KTY {
	case jwkset.KtyRSA:
		members = []string{q("e", m.E), q("kty", "RSA"), q("n", m.N)}
	case jwkset.KtyEC:
		members = []string{q("crv", string(m.CRV)), q("kty", "EC"), q("x", m.X), q("y", m.Y)}
	case jwkset.KtyOKP:
		members = []string{q("crv", string(m.CRV)), q("kty", "OKP"), q("x", m.X)}
	default:
		return "", fmt.Errorf("jwtauth: no thumbprint for key type %s", m.KTY)
	}
	sum := sha256.Sum256([]byte("{" + strings.Join(members, ",") + "}"))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// PublicJWKS is the JWKS document (public parts only) of the keys, each
// with its key id (KeyID), algorithm and use "sig": what -jwt-keys reads.
func PublicJWKS(keys ...crypto.Signer) ([]byte, error) {
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		alg, err := Algorithm(k)
		if err != nil {
			return nil, err
		}
		kid, err := KeyID(k.Public())
		if err != nil {
			return nil, err
		}
		jwk, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(alg), KID: kid, USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	return json.MarshalIndent(set, "", "  ")
}

// TokenSpec is what a development token says.
type TokenSpec struct {
	// Subject (sub), Issuer (iss) and Audience (aud) of the token.
	Subject  string
	Issuer   string
	Audience []string
	// Scopes go into the scope claim, space-separated
	// ("sheets:write:team-7-*").
	Scopes []string
	// Tenant, when not empty, goes into the claim TenantClaim (default
	// "tenant").
	Tenant, TenantClaim string
	// TTL is the token's lifetime from Now (default one hour).
	TTL time.Duration
	// Now is when the token is issued (default: the current time).
	Now time.Time
}

// Sign makes a token of spec signed with key, whose algorithm follows
// from the key's type and whose kid is KeyID(key.Public()).
func Sign(key crypto.Signer, spec TokenSpec) (string, error) {
	alg, err := Algorithm(key)
	if err != nil {
		return "", err
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return "", err
	}
	now := spec.Now
	if now.IsZero() {
		now = time.Now()
	}
	ttl := spec.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	claims := jwt.MapClaims{
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	set := func(k, v string) {
		if v != "" {
			claims[k] = v
		}
	}
	set("sub", spec.Subject)
	set("iss", spec.Issuer)
	set("scope", strings.Join(spec.Scopes, " "))
	if spec.Tenant != "" {
		name := spec.TenantClaim
		if name == "" {
			name = "tenant"
		}
		claims[name] = spec.Tenant
	}
	switch len(spec.Audience) {
	case 0:
	case 1:
		claims["aud"] = spec.Audience[0]
	default:
		claims["aud"] = spec.Audience
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	t.Header["kid"] = kid
	return t.SignedString(key)
}
