// Command devtoken issues JWTs for development against the single-machine
// server: it keeps a key pair in a directory (made on first use), writes
// the public key set the server reads with -jwt-keys, and prints a token
// signed with the private key.
//
//	go run ./cmd/devtoken -sub alice -scope 'sheets:write:team-7-*'
//	make run RUN_ARGS="-jwt-keys .cache/devkeys/jwks.json -jwt-issuer sheetlog-dev -jwt-audience sheetlog"
//
// The token goes to stdout, the server flags that accept it to stderr.
// Tokens carry no secret of the server's: anyone holding the private key
// can sign any scope, so keep the directory to yourself.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sheetlog/sheetlog/pkg/jwtauth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devtoken:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devtoken", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".cache/devkeys", "directory of the key pair ("+jwtauth.PrivateKeyFile+", "+jwtauth.JWKSFile+")")
	alg := fs.String("alg", jwtauth.ES256, "algorithm of a new key: "+strings.Join(jwtauth.Algorithms, ", ")+" (an existing key keeps its own)")
	sub := fs.String("sub", "dev", "subject (sub)")
	scope := fs.String("scope", "sheets:write:*", "scopes, space- or comma-separated (sheets:read:PATTERN, sheets:write:PATTERN)")
	tenant := fs.String("tenant", "", "tenant claim value (what {tenant} in a pattern stands for)")
	tenantClaim := fs.String("tenant-claim", "tenant", "name of the tenant claim")
	iss := fs.String("iss", "sheetlog-dev", "issuer (iss); the server's -jwt-issuer")
	aud := fs.String("aud", "sheetlog", "audience (aud); the server's -jwt-audience")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime of the token")
	keysOnly := fs.Bool("keys-only", false, "make the key pair and key set if needed, print no token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	key, jwks, err := jwtauth.DevKeys(*dir, *alg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "key set %s; the server accepts these tokens with:\n  -jwt-keys %s -jwt-issuer %s -jwt-audience %s\n",
		jwks, jwks, *iss, *aud)
	if *keysOnly {
		return nil
	}
	tok, err := jwtauth.Sign(key, jwtauth.TokenSpec{
		Subject: *sub, Issuer: *iss, Audience: []string{*aud},
		Scopes: strings.FieldsFunc(*scope, func(r rune) bool { return r == ' ' || r == ',' }),
		Tenant: *tenant, TenantClaim: *tenantClaim, TTL: *ttl,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
