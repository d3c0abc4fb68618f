package api

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
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

// authenticate is the authentication check (401). Every way of proving
// who the caller is goes here, behind the one failure limiter, so that
// the order of checks stays in serve.
func (h *handler) authenticate(rq *request) error {
	if h.tokenSum == nil {
		return nil
	}
	key := addrKey(rq.r.RemoteAddr)
	if wait := h.failures.wait(key); wait > 0 {
		// The credentials are not even compared: while an address is
		// held back, guessing from it gets no answer, right or wrong.
		secs := int((wait + time.Second - 1) / time.Second)
		rq.w.Header().Set("Retry-After", strconv.Itoa(secs))
		return rq.unauthorized("too many failed attempts from this address; retry in " + strconv.Itoa(secs) + " s")
	}
	got := []byte(rq.r.Header.Get("Authorization"))
	// The scheme is case-insensitive (RFC 9110); the token is not.
	if len(got) >= 7 && strings.EqualFold(string(got[:7]), "Bearer ") {
		copy(got[:7], "Bearer ")
	}
	// Digests of fixed length are compared, so that neither the time
	// taken nor anything else depends on the length of the token.
	sum := sha256.Sum256(got)
	if subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) == 1 {
		return nil
	}
	h.failures.fail(key)
	return rq.unauthorized("this API needs an Authorization: Bearer token")
}

func (rq *request) unauthorized(msg string) *apiError {
	rq.w.Header().Set("WWW-Authenticate", `Bearer realm="sheetlog"`)
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
