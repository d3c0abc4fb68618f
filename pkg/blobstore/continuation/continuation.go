// Package continuation seals the continuation tokens of blob store
// listings. A token carries the store's own position (the last name
// listed, or S3's token) and an HMAC that binds it to the store, the sheet
// and the directory that issued it. Tokens need no server-side state, yet
// a token used in another directory or sheet, or altered in any way, is
// refused with NoContinuationError, as the blob store contract requires.
package continuation

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

const macLen = 16

var encoding = base64.RawURLEncoding.Strict()

// Sealer seals and opens tokens with one key. The domain separates the
// tokens of different kinds of store (and versions of their format).
type Sealer struct {
	key    []byte
	domain string
}

// NewSealer returns a sealer; key should be secret and shared by every
// process that serves the same store.
func NewSealer(key []byte, domain string) Sealer {
	return Sealer{key: append([]byte(nil), key...), domain: domain}
}

// mac covers the domain, every scope element and the position, each
// length-prefixed so that no two different inputs share an encoding.
func (s Sealer) mac(scope []string, position string) []byte {
	m := hmac.New(sha256.New, s.key)
	field := func(v string) {
		m.Write(binary.AppendUvarint(nil, uint64(len(v))))
		m.Write([]byte(v))
	}
	field(s.domain)
	m.Write(binary.AppendUvarint(nil, uint64(len(scope))))
	for _, v := range scope {
		field(v)
	}
	field(position)
	return m.Sum(nil)[:macLen]
}

// Seal returns the token of a non-empty position in the directory named
// by scope (e.g. the sheet and the directory's path).
func (s Sealer) Seal(scope []string, position string) string {
	return encoding.EncodeToString(append(s.mac(scope, position), position...))
}

// Open returns the position sealed in token, or a *errs.NoContinuationError
// when the token was not issued for this scope by this sealer's key.
func (s Sealer) Open(scope []string, token string) (string, error) {
	raw, err := encoding.DecodeString(token)
	if err != nil || len(raw) <= macLen {
		return "", errs.NoContinuation("continuation token is not one of this blob store's tokens")
	}
	position := string(raw[macLen:])
	if !hmac.Equal(raw[:macLen], s.mac(scope, position)) {
		return "", errs.NoContinuation("continuation token does not belong to this directory")
	}
	return position, nil
}
