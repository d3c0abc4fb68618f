package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
)

// TestTokenVerifies: the printed token verifies against the key set
// written beside the key, with the flags printed, and says what it was
// asked to.
func TestTokenVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var out, errOut bytes.Buffer
	if err := run([]string{"-dir", dir, "-alg", "EdDSA", "-sub", "alice", "-scope", "sheets:read:team-7-*,sheets:write:{tenant}.*",
		"-tenant", "acme", "-tenant-claim", "org", "-ttl", "5m"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(dir, jwtauth.JWKSFile)
	if !strings.Contains(errOut.String(), "-jwt-keys "+jwks+" -jwt-issuer sheetlog-dev -jwt-audience sheetlog") {
		t.Fatalf("stderr: %s", errOut.String())
	}
	v, err := jwtauth.New(context.Background(), jwtauth.Options{Keys: jwks, Issuer: "sheetlog-dev", Audience: []string{"sheetlog"},
		Claims: api.TokenClaims{Tenant: "org"}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, err := v.Verify(context.Background(), strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Tenant != "acme" || !api.Allowed(c, "POST", "acme.x") || api.Allowed(c, "POST", "team-7-x") {
		t.Fatalf("%+v", c)
	}
	if err := run([]string{"-dir", dir, "-keys-only"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"extra"}, io.Discard, io.Discard); err == nil {
		t.Fatal("extra argument accepted")
	}
}
