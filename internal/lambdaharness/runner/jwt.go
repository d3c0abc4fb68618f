package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/sheetlog/sheetlog/internal/lambdaharness"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
)

// The JWT configuration of the harness (-jwt): the issuer and audience
// its authorizer accepts.
const (
	jwtIssuer   = "https://issuer.e2e.sheetlog.test/"
	jwtAudience = "sheetlog-e2e"
)

// jwtSetup makes a key pair in dir for the harness's JWT authorizer and
// returns its options and what the suite is told: the signing key (so it
// can make tokens of any scope), the issuer and audience, and a token
// allowed everything (SHEETLOG_E2E_TOKEN) for the tests that do not care.
func jwtSetup(dir string) (*lambdaharness.JWTOptions, []string, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "sheetlog-e2e-jwt-"); err != nil {
			return nil, nil, err
		}
	}
	dir = filepath.Join(dir, "jwt")
	key, jwks, err := jwtauth.DevKeys(dir, jwtauth.RS256)
	if err != nil {
		return nil, nil, err
	}
	all, err := jwtauth.Sign(key, jwtauth.TokenSpec{Subject: "e2e", Issuer: jwtIssuer, Audience: []string{jwtAudience},
		Scopes: []string{"sheets:write:*"}, TTL: 2 * time.Hour})
	if err != nil {
		return nil, nil, err
	}
	return &lambdaharness.JWTOptions{Keys: jwks, Issuer: jwtIssuer, Audience: []string{jwtAudience}}, []string{
		"SHEETLOG_E2E_JWT_KEY=" + filepath.Join(dir, jwtauth.PrivateKeyFile),
		"SHEETLOG_E2E_JWT_ISSUER=" + jwtIssuer,
		"SHEETLOG_E2E_JWT_AUDIENCE=" + jwtAudience,
		"SHEETLOG_E2E_TOKEN=" + all,
	}, nil
}
