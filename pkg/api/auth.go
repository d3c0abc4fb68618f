package api

import (
	"container/list"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the failed-authentication limiter.
const (
	// authFailureBurst is how many failed attempts an address may make
	// back to back before it is slowed down.
	authFailureBurst = 10
	// authFailureInterval is how often an address regains one attempt.
	authFailureInterval = time.Second
	// authFailureAddrs bounds the addresses remembered. When it is full
	// the least recently failing one is forgotten: memory stays bounded
	// whatever the number of addresses an attacker sends from.
	authFailureAddrs = 4096
)

// Authenticator tells who sent a request: the authentication check
// (401). Each deployment plugs in its own: a static token (Config.Token),
// a verifier of bearer tokens (BearerTokens), claims a front end has
// already verified and put in the request's context (ContextClaims), or
// none at all (a nil Authenticator).
type Authenticator interface {
	// Authenticate returns the caller's verified claims, which the
	// authorization rule (Allowed) is then applied to; or nil claims and
	// a nil error for a caller the rule does not apply to, who may do
	// everything (the static token's holder). An error refuses the
	// request with 401; its text is the reply's message, so it must say
	// what is wrong with the credentials and nothing else.
	Authenticate(r *http.Request) (*Claims, error)
}

// TokenVerifier verifies a bearer token (a JWT) and returns its claims.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*Claims, error)
}

// BearerTokens authenticates requests by the token of their
// "Authorization: Bearer" header, verified by v.
func BearerTokens(v TokenVerifier) Authenticator { return bearerTokens{v} }

type bearerTokens struct{ v TokenVerifier }

func (b bearerTokens) Authenticate(r *http.Request) (*Claims, error) {
	h := r.Header.Get("Authorization")
	// The scheme is case-insensitive (RFC 9110); the token is not.
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return nil, errNoBearer
	}
	c, err := b.v.Verify(r.Context(), strings.TrimSpace(h[7:]))
	if err == nil && c == nil {
		// A verifier that returned nothing must not grant everything.
		return nil, errors.New("the token carries no claims")
	}
	return c, err
}

var errNoBearer = errors.New("this API needs an Authorization: Bearer token")

type claimsKey struct{}

// WithClaims returns ctx carrying claims that a front end has verified
// (API Gateway's JWT authorizer, for the Lambda), for ContextClaims.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims WithClaims put in ctx, or nil.
func ClaimsFrom(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	return c
}

// ContextClaims authenticates requests by the claims their context
// carries (WithClaims): the front end verified the token. A request
// without claims is refused, so a misconfigured front end fails closed.
func ContextClaims() Authenticator { return contextClaims{} }

type contextClaims struct{}

func (contextClaims) Authenticate(r *http.Request) (*Claims, error) {
	if c := ClaimsFrom(r.Context()); c != nil {
		return c, nil
	}
	return nil, errors.New("the request carries no verified token claims")
}

// staticToken is the single-user token of Config.Token. Only its digest
// is kept.
type staticToken struct {
	// sum is the SHA-256 of the Authorization header a request must
	// carry.
	sum [sha256.Size]byte
}

func newStaticToken(token string) *staticToken {
	return &staticToken{sum: sha256.Sum256([]byte("Bearer " + token))}
}

func (s *staticToken) Authenticate(r *http.Request) (*Claims, error) {
	got := []byte(r.Header.Get("Authorization"))
	if len(got) >= 7 && strings.EqualFold(string(got[:7]), "Bearer ") {
		copy(got[:7], "Bearer ")
	}
	// Digests of fixed length are compared, so that neither the time
	// taken nor anything else depends on the length of the token.
	sum := sha256.Sum256(got)
	if subtle.ConstantTimeCompare(sum[:], s.sum[:]) == 1 {
		return nil, nil
	}
	return nil, errNoBearer
}

// authenticate is the authentication check (401). Every way of proving
// who the caller is goes through it, behind the one failure limiter, so
// that the order of checks stays in serve.
func (h *handler) authenticate(rq *request) error {
	if h.auth == nil {
		return nil
	}
	challenge := `Bearer realm="sheetlog"`
	key := addrKey(rq.r.RemoteAddr)
	if wait := h.failures.wait(key); wait > 0 {
		// The credentials are not even checked: while an address is
		// held back, guessing from it gets no answer, right or wrong.
		secs := int((wait + time.Second - 1) / time.Second)
		rq.w.Header().Set("Retry-After", strconv.Itoa(secs))
		return rq.unauthorized("too many failed attempts from this address; retry in "+strconv.Itoa(secs)+" s", challenge)
	}
	claims, err := h.auth.Authenticate(rq.r)
	if err != nil {
		h.failures.fail(key)
		if !errors.Is(err, errNoBearer) {
			// RFC 6750: a token was sent and is not good.
			challenge += `, error="invalid_token"`
		}
		return rq.unauthorized(err.Error(), challenge)
	}
	rq.claims = claims
	return nil
}

// authorize is the authorization check (403): the rule, applied to the
// claims authentication found, for requests to a sheet's routes. Other
// /v1 paths (the OpenAPI document, unknown routes) need authentication
// only.
func (h *handler) authorize(rq *request) error {
	if rq.claims == nil || rq.m.sheet == "" {
		return nil
	}
	sheet, err := url.PathUnescape(rq.m.sheet)
	if err != nil {
		sheet = rq.m.sheet
	}
	if Allowed(rq.claims, rq.r.Method, sheet) {
		return nil
	}
	rq.w.Header().Set("WWW-Authenticate", `Bearer realm="sheetlog", error="insufficient_scope", scope="`+
		quoteSafe(NeededScope(rq.r.Method, sheet))+`"`)
	return newError(http.StatusForbidden, TypeForbidden,
		"not allowed on this sheet: the token's scopes do not allow "+truncate(rq.r.Method, 16)+" on sheet "+
			strconv.Quote(truncate(sheet, 80)))
}

// quoteSafe keeps what may stand inside a quoted header parameter.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, truncate(s, 100))
}

// unauthorized is a 401; challenge is the WWW-Authenticate header.
func (rq *request) unauthorized(msg, challenge string) *apiError {
	rq.w.Header().Set("WWW-Authenticate", challenge)
	return newError(http.StatusUnauthorized, TypeUnauthorized, msg)
}

// addrKey is the unit the limiter counts failures by: an IPv4 address,
// or the /64 of an IPv6 one (a single host is usually given a whole /64).
// RemoteAddr is "host:port" from net/http, a bare address from the
// API Gateway adapter.
func addrKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	addr := ap.Addr()
	if err != nil {
		if addr, err = netip.ParseAddr(remote); err != nil {
			return "?"
		}
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// failureLimiter holds back addresses that fail authentication too often.
// Each address has a theoretical arrival time (the generic cell rate
// algorithm): every failure pushes it one interval further; an address
// whose time is more than burst intervals ahead is held back until it
// is not. One time value per address, and addresses whose time has
// passed are as good as forgotten.
type failureLimiter struct {
	burst    int
	interval time.Duration
	max      int
	now      func() time.Time

	mu    sync.Mutex
	addrs map[string]*list.Element
	lru   list.List // of *failureEntry, most recent failure at the front
}

type failureEntry struct {
	key string
	tat time.Time
}

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{
		burst: authFailureBurst, interval: authFailureInterval, max: authFailureAddrs,
		now: time.Now, addrs: map[string]*list.Element{},
	}
}

// wait is how long key is held back; 0 when it may try.
func (l *failureLimiter) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.addrs[key]
	if !ok {
		return 0
	}
	ahead := el.Value.(*failureEntry).tat.Sub(l.now())
	// One more failure would put the time more than burst intervals
	// ahead: that attempt has to wait.
	if limit := time.Duration(l.burst-1) * l.interval; ahead > limit {
		return ahead - limit
	}
	return 0
}

// fail records one failed attempt from key.
func (l *failureLimiter) fail(key string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.addrs[key]; ok {
		e := el.Value.(*failureEntry)
		e.tat = later(e.tat, now).Add(l.interval)
		l.lru.MoveToFront(el)
		return
	}
	if len(l.addrs) >= l.max {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.addrs, oldest.Value.(*failureEntry).key)
	}
	l.addrs[key] = l.lru.PushFront(&failureEntry{key: key, tat: now.Add(l.interval)})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
