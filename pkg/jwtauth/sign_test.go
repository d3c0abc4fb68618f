package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/jwtauth"
)

// TestKeyIDIsTheRFC7638Thumbprint: the example of RFC 7638, section 3.1.
func TestKeyIDIsTheRFC7638Thumbprint(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	kid, err := jwtauth.KeyID(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if kid != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("kid %s", kid)
	}
}

func TestParsePrivateKeyForms(t *testing.T) {
	ec, err := jwtauth.GenerateKey(jwtauth.ES256)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	// openssl ecparam -genkey writes the curve's parameters first.
	legacy := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	if k, err := jwtauth.ParsePrivateKey(legacy); err != nil || !k.(*ecdsa.PrivateKey).Equal(ec) {
		t.Fatalf("SEC 1: %v", err)
	}
	for _, alg := range jwtauth.Algorithms {
		k, err := jwtauth.GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := jwtauth.EncodePrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		back, err := jwtauth.ParsePrivateKey(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := jwtauth.Algorithm(back); got != alg {
			t.Fatalf("%s came back as %s", alg, got)
		}
	}
	if _, err := jwtauth.ParsePrivateKey([]byte("nothing")); err == nil {
		t.Fatal("no PEM accepted")
	}
	if _, err := jwtauth.GenerateKey("HS256"); err == nil {
		t.Fatal("HS256 key made")
	}
}

// TestDevKeys: the first use makes a key (0600) and a key set the
// verifier accepts; the next use keeps the key.
func TestDevKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	key, jwks, err := jwtauth.DevKeys(dir, jwtauth.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, jwtauth.PrivateKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st.Mode(), err)
	}
	again, _, err := jwtauth.DevKeys(dir, jwtauth.RS256)
	if err != nil {
		t.Fatal(err)
	}
	if alg, _ := jwtauth.Algorithm(again); alg != jwtauth.EdDSA {
		t.Fatalf("the key was replaced by a %s key", alg)
	}
	tok, err := jwtauth.Sign(key, jwtauth.TokenSpec{Subject: "dev", Issuer: "iss", Audience: []string{"aud"},
		Scopes: []string{"sheets:write:*"}, Tenant: "t1", TenantClaim: "org"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwtauth.New(context.Background(), jwtauth.Options{Keys: jwks, Issuer: "iss", Audience: []string{"aud"}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, err := v.Verify(context.Background(), tok)
	if err != nil || c.Subject != "dev" || c.Tenant != "" || len(c.Scopes) != 1 {
		t.Fatalf("%+v %v", c, err)
	}
}
