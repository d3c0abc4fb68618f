package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// maxKeySetBytes bounds a key set document; real ones are a few KB.
const maxKeySetBytes = 1 << 20

// minRSABits: smaller RSA keys are refused when a key set is loaded.
const minRSABits = 2048

// keySet holds the verification keys: a JWKS document read from a file
// or fetched from a URL at start, again every refresh interval, and when
// a token names a key id the set does not hold (at most once per minimum
// gap, so that tokens with made-up key ids cannot make the server hammer
// the issuer). A failed read keeps the keys held.
//
// It is the jwkset.Storage keyfunc reads keys from: KeyRead is where an
// unknown key id leads to a refresh; everything else is the memory
// storage's.
type keySet struct {
	*jwkset.MemoryJWKSet

	src    string
	remote bool
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	minGap time.Duration
	// changed is called after the keys were replaced by different ones.
	changed func()

	mu        sync.Mutex // serializes reads of the source
	lastRead  time.Time
	lastBytes []byte
	// reads counts the reads of the source that have finished.
	reads atomic.Int64
}

func newKeySet(src string, client *http.Client, log *slog.Logger, now func() time.Time, minGap time.Duration) *keySet {
	remote := strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://")
	return &keySet{
		MemoryJWKSet: jwkset.NewMemoryStorage(),
		src:          src, remote: remote, client: client, log: log, now: now, minGap: minGap,
		changed: func() {},
	}
}

// KeyRead implements jwkset.Storage: a key id the set does not hold leads
// to one refresh, unless the last read of the source is more recent than
// the minimum gap.
func (k *keySet) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	seen := k.reads.Load()
	jwk, err := k.MemoryJWKSet.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return jwk, err
	}
	if !k.refreshForUnknown(ctx, seen) {
		return jwk, err
	}
	return k.MemoryJWKSet.KeyRead(ctx, kid)
}

// refreshForUnknown reads the source again if the gap allows, and
// reports whether the keys may have changed since the caller looked
// (when the reads finished numbered seen).
func (k *keySet) refreshForUnknown(ctx context.Context, seen int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.reads.Load() != seen {
		// The source was read since the caller looked (perhaps while it
		// waited for the read in flight): look again, read nothing.
		return true
	}
	if !k.lastRead.IsZero() && k.now().Sub(k.lastRead) < k.minGap {
		return false
	}
	// A client that hangs up must not spoil the read for the others
	// waiting on it; the read has its own timeout.
	if err := k.readLocked(context.WithoutCancel(ctx)); err != nil {
		k.log.Warn("reading the JWT key set for an unknown key id failed; keeping the keys held", "keys", k.src, "err", err)
	}
	return true
}

// refresh reads the source again.
func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.readLocked(ctx)
}

func (k *keySet) readLocked(ctx context.Context) error {
	k.lastRead = k.now()
	defer k.reads.Add(1)
	raw, err := k.fetch(ctx)
	if err != nil {
		return err
	}
	if string(raw) == string(k.lastBytes) {
		return nil
	}
	keys, skipped, err := parseKeySet(raw)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		k.log.Warn("JWT key set: a key is not used", "keys", k.src, "why", s)
	}
	if err := k.KeyReplaceAll(ctx, keys); err != nil {
		return err
	}
	k.lastBytes = raw
	k.log.Info("JWT key set loaded", "keys", k.src, "count", len(keys), "kids", kids(keys))
	k.changed()
	return nil
}

func (k *keySet) fetch(ctx context.Context) ([]byte, error) {
	if !k.remote {
		f, err := os.Open(k.src)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readBounded(f)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.src, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", k.src, resp.StatusCode)
	}
	return readBounded(resp.Body)
}

func readBounded(r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxKeySetBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxKeySetBytes {
		return nil, fmt.Errorf("the key set is larger than %d bytes", maxKeySetBytes)
	}
	return raw, nil
}

// parseKeySet keeps the public signing keys of a JWKS document that can
// verify an accepted algorithm: RSA keys of 2048 bits or more, P-256 EC
// keys, Ed25519 keys. Private parts are dropped; symmetric keys and keys
// for encryption or for another algorithm are skipped (and said why).
func parseKeySet(raw []byte) (keys []jwkset.JWK, skipped []string, err error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, nil, fmt.Errorf("the key set is not a JWKS document: %w", err)
	}
	for i, m := range set.Keys {
		name := fmt.Sprintf("key %d (kid %q)", i, m.KID)
		if m.USE != "" && m.USE != jwkset.UseSig {
			skipped = append(skipped, name+": use "+string(m.USE))
			continue
		}
		if m.ALG != "" && !accepted(string(m.ALG)) {
			skipped = append(skipped, name+": algorithm "+string(m.ALG))
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: false}, jwkset.JWKValidateOptions{})
		if err != nil {
			skipped = append(skipped, name+": "+err.Error())
			continue
		}
		switch pub := jwk.Key().(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				skipped = append(skipped, fmt.Sprintf("%s: RSA key of %d bits", name, pub.N.BitLen()))
				continue
			}
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				skipped = append(skipped, name+": curve "+pub.Curve.Params().Name+" (ES256 needs P-256)")
				continue
			}
		case ed25519.PublicKey:
		default:
			skipped = append(skipped, fmt.Sprintf("%s: key type %s", name, m.KTY))
			continue
		}
		keys = append(keys, jwk)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("the key set holds no usable signing key (%s)", strings.Join(skipped, "; "))
	}
	return keys, skipped, nil
}

func kids(keys []jwkset.JWK) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Marshal().KID
	}
	return out
}
