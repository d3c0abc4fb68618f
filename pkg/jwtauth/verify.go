// Package jwtauth verifies the JWTs callers of the single-machine server
// present, against a JSON Web Key Set (a file or a URL), and signs such
// tokens for development from a local key pair.
//
// Verification is github.com/golang-jwt/jwt/v5's, with keys looked up by
// github.com/MicahParks/keyfunc/v3 in a github.com/MicahParks/jwkset
// storage; this package chooses what is accepted:
//
//   - RS256, ES256 and EdDSA only: "none", HMAC (the algorithm-confusion
//     attack that signs with the public key as the secret), RSA-PSS and
//     every other algorithm is refused before any key is looked up.
//   - exp is required; exp, nbf and iat are checked with 60 s of leeway.
//   - iss must be the configured issuer; aud must hold one of the
//     configured audiences or, when the token has no aud, client_id must
//     be one (Amazon Cognito's access tokens carry client_id only; API
//     Gateway's JWT authorizer accepts either in the same way).
//   - A token whose kid is not in the set makes the set be read again, at
//     most once per minimum gap (30 s by default), then it is refused.
//     The set is also read again every hour, so rotated keys arrive.
//   - Tokens longer than MaxTokenBytes are refused unparsed.
//
// A verified token's claims are kept (bounded in bytes, until the token
// expires, for at most 5 minutes, and never across a change of the key
// set), so a client that sends the same token again costs a map lookup,
// not a signature verification.
package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sheetlog/sheetlog/pkg/api"
)

// The algorithms verified and signed.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Algorithms is every algorithm accepted.
var Algorithms = []string{RS256, ES256, EdDSA}

func accepted(alg string) bool { return slices.Contains(Algorithms, alg) }

// Limits and defaults.
const (
	// MaxTokenBytes bounds a token: longer ones are refused before they
	// are decoded. Real access tokens take one to a few KB.
	MaxTokenBytes = 16 << 10
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway = 60 * time.Second
	// DefaultRefreshEvery is how often the key set is read again.
	DefaultRefreshEvery = time.Hour
	// DefaultMinRefreshGap is the least time between two reads of the
	// key set caused by unknown key ids.
	DefaultMinRefreshGap = 30 * time.Second
	// DefaultCacheBytes bounds the verified tokens kept.
	DefaultCacheBytes = 8 << 20
	// maxCacheAge bounds how long a verified token is trusted without
	// being verified again.
	maxCacheAge = 5 * time.Minute
)

// Why a token is refused. The texts are what a client is told (401).
var (
	ErrTooLarge    = fmt.Errorf("the token is longer than %d bytes", MaxTokenBytes)
	ErrMalformed   = errors.New("the token is not a well-formed JWT")
	ErrAlgorithm   = errors.New("the token's signing algorithm is not accepted (RS256, ES256 or EdDSA only)")
	ErrUnknownKey  = errors.New("the token's key id is not in the key set")
	ErrSignature   = errors.New("the token's signature does not verify")
	ErrExpired     = errors.New("the token has expired")
	ErrNotYetValid = errors.New("the token is not valid yet (nbf)")
	ErrIssuedLater = errors.New("the token was issued in the future (iat)")
	ErrNoExpiry    = errors.New("the token has no expiry (exp)")
	ErrIssuer      = errors.New("the token is from another issuer")
	ErrAudience    = errors.New("the token is for another audience")
	ErrInvalid     = errors.New("the token is not valid")
)

// Options configure a Verifier.
type Options struct {
	// Keys is the JWKS document: a file path, or an http(s) URL.
	// Required.
	Keys string
	// Issuer is the iss every token must carry. Required.
	Issuer string
	// Audience holds the accepted aud (or client_id) values. Required.
	Audience []string
	// Claims says where tokens carry the tenant and which scopes count.
	Claims api.TokenClaims
	// HTTPClient fetches a remote key set (default: a plain client).
	HTTPClient *http.Client
	// Logger receives key set loads and failures (nil discards).
	Logger *slog.Logger
	// RefreshEvery and MinRefreshGap: see the package documentation.
	RefreshEvery, MinRefreshGap time.Duration
	// CacheBytes bounds the verified tokens kept; negative keeps none.
	CacheBytes int

	// now replaces time.Now in tests.
	now func() time.Time
}

// Verifier verifies tokens. It implements api.TokenVerifier.
type Verifier struct {
	o      Options
	keys   *keySet
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
	cache  *tokenCache
	stop   context.CancelFunc
	done   chan struct{}
}

// New loads the key set (an error if it cannot be read or holds no usable
// key) and starts refreshing it until Close, or until ctx ends.
func New(ctx context.Context, o Options) (*Verifier, error) {
	switch {
	case o.Keys == "":
		return nil, errors.New("jwtauth: no key set")
	case o.Issuer == "":
		return nil, errors.New("jwtauth: no issuer")
	case len(o.Audience) == 0:
		return nil, errors.New("jwtauth: no audience")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = DefaultRefreshEvery
	}
	if o.MinRefreshGap <= 0 {
		o.MinRefreshGap = DefaultMinRefreshGap
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.now == nil {
		o.now = time.Now
	}
	v := &Verifier{o: o, cache: newTokenCache(o.CacheBytes), done: make(chan struct{})}
	v.keys = newKeySet(o.Keys, o.HTTPClient, o.Logger, o.now, o.MinRefreshGap)
	v.keys.changed = v.cache.clear
	if err := v.keys.refresh(ctx); err != nil {
		return nil, fmt.Errorf("jwtauth: key set %s: %w", o.Keys, err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: v.keys})
	if err != nil {
		return nil, err
	}
	v.kf = kf
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(Algorithms),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(o.Issuer),
		jwt.WithTimeFunc(o.now),
	)
	rctx, stop := context.WithCancel(ctx)
	v.stop = stop
	go v.refreshLoop(rctx)
	return v, nil
}

// Close stops refreshing the key set.
func (v *Verifier) Close() {
	v.stop()
	<-v.done
}

func (v *Verifier) refreshLoop(ctx context.Context) {
	defer close(v.done)
	t := time.NewTicker(v.o.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := v.keys.refresh(ctx); err != nil && ctx.Err() == nil {
				v.o.Logger.Warn("reading the JWT key set failed; keeping the keys held", "keys", v.o.Keys, "err", err)
			}
		}
	}
}

// Verify checks a token and returns what the authorization rule reads of
// it. The claims returned may be shared between requests: read only.
func (v *Verifier) Verify(ctx context.Context, token string) (*api.Claims, error) {
	if len(token) > MaxTokenBytes {
		return nil, ErrTooLarge
	}
	now := v.o.now()
	if c := v.cache.get(token, now); c != nil {
		return c, nil
	}
	gen := v.cache.generation()
	mc, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	c := v.o.Claims.Claims(mc)
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, ErrNoExpiry
	}
	until := exp.Add(Leeway)
	if latest := now.Add(maxCacheAge); until.After(latest) {
		until = latest
	}
	v.cache.put(token, c, now, until, gen)
	return c, nil
}

// VerifyClaims checks a token as Verify does, bypassing the cache, and
// returns all its claims as decoded JSON: for a stand-in of API Gateway's
// JWT authorizer, which hands every claim on.
func (v *Verifier) VerifyClaims(ctx context.Context, token string) (map[string]any, error) {
	if len(token) > MaxTokenBytes {
		return nil, ErrTooLarge
	}
	return v.verify(ctx, token)
}

func (v *Verifier) verify(ctx context.Context, token string) (jwt.MapClaims, error) {
	mc := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, mc, v.kf.KeyfuncCtx(ctx))
	if err != nil {
		return nil, explain(tok, mc, err)
	}
	if !v.audienceOK(mc) {
		return nil, ErrAudience
	}
	return mc, nil
}

// audienceOK: aud holds a configured audience; without aud, client_id is
// one.
func (v *Verifier) audienceOK(mc jwt.MapClaims) bool {
	if _, has := mc["aud"]; has {
		aud, err := mc.GetAudience()
		if err != nil {
			return false
		}
		for _, a := range aud {
			if slices.Contains(v.o.Audience, a) {
				return true
			}
		}
		return false
	}
	id, ok := mc["client_id"].(string)
	return ok && slices.Contains(v.o.Audience, id)
}

// explain turns the library's error into the reason a client is told.
func explain(tok *jwt.Token, mc jwt.MapClaims, err error) error {
	if errors.Is(err, jwt.ErrTokenMalformed) {
		return ErrMalformed
	}
	if tok != nil {
		if alg, _ := tok.Header["alg"].(string); !accepted(alg) {
			return ErrAlgorithm
		}
	}
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrIssuedLater
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if _, has := mc["exp"]; !has {
			return ErrNoExpiry
		}
		return ErrIssuer
	}
	return ErrInvalid
}

// tokenCache keeps verified tokens' claims, keyed by the whole token
// (no hash that could collide), bounded in bytes. When full, expired
// entries go first, then arbitrary ones (Go's map order): an attacker
// holding many valid tokens can only make others verify again.
type tokenCache struct {
	max int

	mu   sync.RWMutex
	m    map[string]cacheEntry
	size int
	gen  uint64
}

type cacheEntry struct {
	c     *api.Claims
	until time.Time
}

// entryOverhead approximates an entry's memory besides its token.
const entryOverhead = 256

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: map[string]cacheEntry{}}
}

func (t *tokenCache) get(token string, now time.Time) *api.Claims {
	t.mu.RLock()
	e, ok := t.m[token]
	t.mu.RUnlock()
	if ok && now.Before(e.until) {
		return e.c
	}
	return nil
}

func (t *tokenCache) generation() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.gen
}

// put keeps c until then, unless the key set changed since gen (the
// token was verified with keys that may be gone).
func (t *tokenCache) put(token string, c *api.Claims, now, until time.Time, gen uint64) {
	cost := len(token) + entryOverhead
	if t.max < 0 || cost > t.max {
		return
	}
	for _, s := range c.Scopes {
		cost += len(s)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen {
		return
	}
	if old, ok := t.m[token]; ok {
		t.m[token] = cacheEntry{c: c, until: later(old.until, until)}
		return
	}
	if t.size+cost > t.max {
		for k, e := range t.m {
			if !now.Before(e.until) {
				t.drop(k)
			}
		}
		for k := range t.m {
			if t.size+cost <= t.max {
				break
			}
			t.drop(k)
		}
	}
	t.m[string([]byte(token))] = cacheEntry{c: c, until: until}
	t.size += cost
}

func (t *tokenCache) drop(k string) {
	e := t.m[k]
	cost := len(k) + entryOverhead
	for _, s := range e.c.Scopes {
		cost += len(s)
	}
	delete(t.m, k)
	t.size -= cost
}

// clear forgets every token: the key set changed.
func (t *tokenCache) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.m)
	t.size = 0
	t.gen++
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
