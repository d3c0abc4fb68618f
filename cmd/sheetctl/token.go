package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
)

var tokenFlags struct {
	dir, alg, sub, scope, tenant, tenantClaim, iss, aud string
	ttl                                                 time.Duration
}

func init() {
	register(&command{
		name: "token", args: "[--scope SCOPES] [--sub S] [--tenant T] [--ttl D] [--keys DIR]", minArgs: 0, maxArgs: 0,
		short: "print a development JWT for a server started with -jwt-keys (pkg/jwtauth)",
		long: `The key pair lives in --keys (made on first use, with the public key set
jwks.json beside it); stderr says the server flags that accept the token:

  make run RUN_ARGS="-jwt-keys .cache/devkeys/jwks.json -jwt-issuer sheetlog-dev -jwt-audience sheetlog"
  export SHEETLOG_TOKEN=$(sheetctl token --scope 'sheets:write:team-7-*')

  --scope SCOPES    space- or comma-separated: sheets:read:PATTERN,
                    sheets:write:PATTERN (default sheets:write:*)
  --sub S           subject (default dev)
  --tenant T        the tenant claim, what {tenant} in a pattern stands for
  --tenant-claim C  its name (default tenant)
  --iss I, --aud A  issuer and audience (default sheetlog-dev, sheetlog)
  --ttl D           lifetime (default 12h)
  --keys DIR        key directory (default .cache/devkeys)
  --alg A           algorithm of a new key (` + strings.Join(jwtauth.Algorithms, ", ") + `; default ES256)

Anyone holding the private key can sign any scope: keep the directory to
yourself. The command talks to no server.`,
		flags: func(fs *flag.FlagSet) {
			f := &tokenFlags
			fs.StringVar(&f.dir, "keys", ".cache/devkeys", "")
			fs.StringVar(&f.alg, "alg", jwtauth.ES256, "")
			fs.StringVar(&f.sub, "sub", "dev", "")
			fs.StringVar(&f.scope, "scope", "sheets:write:*", "")
			fs.StringVar(&f.tenant, "tenant", "", "")
			fs.StringVar(&f.tenantClaim, "tenant-claim", "tenant", "")
			fs.StringVar(&f.iss, "iss", "sheetlog-dev", "")
			fs.StringVar(&f.aud, "aud", "sheetlog", "")
			fs.DurationVar(&f.ttl, "ttl", 12*time.Hour, "")
		},
		run: runToken,
	})
}

func runToken(e *env, _ *client.Client, _ []string) error {
	f := tokenFlags
	if f.ttl <= 0 {
		return usagef("--ttl: want a positive duration, got %v", f.ttl)
	}
	key, jwks, err := jwtauth.DevKeys(f.dir, f.alg)
	if err != nil {
		return err
	}
	tok, err := jwtauth.Sign(key, jwtauth.TokenSpec{
		Subject: f.sub, Issuer: f.iss, Audience: []string{f.aud},
		Scopes: strings.FieldsFunc(f.scope, func(r rune) bool { return r == ' ' || r == ',' }),
		Tenant: f.tenant, TenantClaim: f.tenantClaim, TTL: f.ttl,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "a server accepts it with: -jwt-keys %s -jwt-issuer %s -jwt-audience %s\n", jwks, f.iss, f.aud)
	fmt.Fprintln(e.stdout, tok)
	return nil
}
