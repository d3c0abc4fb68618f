package jwtauth

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Files of a development key directory.
const (
	PrivateKeyFile = "private.pem"
	JWKSFile       = "jwks.json"
)

// DevKeys returns the signing key kept in dir, making it (a new key for
// alg, written with mode 0600) and the directory (0700) on first use, and
// (re)writes dir/jwks.json, the public key set the single-machine server
// reads with -jwt-keys. An existing key is kept whatever alg says, so
// that tokens signed before stay valid.
func DevKeys(dir, alg string) (key crypto.Signer, jwksPath string, err error) {
	keyPath := filepath.Join(dir, PrivateKeyFile)
	jwksPath = filepath.Join(dir, JWKSFile)
	raw, err := os.ReadFile(keyPath)
	switch {
	case err == nil:
		if key, err = ParsePrivateKey(raw); err != nil {
			return nil, "", fmt.Errorf("%s: %w", keyPath, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if key, err = GenerateKey(alg); err != nil {
			return nil, "", err
		}
		pemBytes, err := EncodePrivateKey(key)
		if err != nil {
			return nil, "", err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", err
		}
		if err := writeFileAtomic(keyPath, pemBytes, 0o600); err != nil {
			return nil, "", err
		}
	default:
		return nil, "", err
	}
	jwks, err := PublicJWKS(key)
	if err != nil {
		return nil, "", err
	}
	if err := writeFileAtomic(jwksPath, append(jwks, '\n'), 0o644); err != nil {
		return nil, "", err
	}
	return key, jwksPath, nil
}

// writeFileAtomic writes through a temporary file and a rename, so that
// a server reading the key set never sees half of it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
