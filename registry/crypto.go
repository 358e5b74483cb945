package registry

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// keyCheckLabel is MACed with the key; the result, stored in the database,
// tells whether a key file belongs to it.
const keyCheckLabel = "passerelle key check v1"

// loadKey reads the 32-byte key from path; a missing file is an error
// wrapping fs.ErrNotExist.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: key file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("registry: key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("registry: key file %s is readable by others (mode %v): chmod 600 %s", path, st.Mode().Perm(), path)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("registry: key file %s does not hold a %d-byte hex key", path, chacha20poly1305.KeySize)
	}
	return key, nil
}

func createKey(path string) ([]byte, error) {
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("registry: generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("registry: key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("registry: create key file: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("registry: write key file: %w", err)
	}
	return key, nil
}

// sealer encrypts secret values with XChaCha20-Poly1305, binding each to
// the record and field it belongs to.
type sealer struct {
	aead cipher.AEAD
	key  []byte
}

func newSealer(key []byte) (*sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("registry: key: %w", err)
	}
	return &sealer{aead: aead, key: key}, nil
}

func (s *sealer) check() []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(keyCheckLabel))
	return m.Sum(nil)
}

func additionalData(user, transport, field string) []byte {
	return []byte(user + "\x00" + transport + "\x00" + field)
}

func (s *sealer) seal(user, transport, field, value string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(value)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, []byte(value), additionalData(user, transport, field)), nil
}

func (s *sealer) open(user, transport, field string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", errors.New("sealed value too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], additionalData(user, transport, field))
	if err != nil {
		return "", fmt.Errorf("secret %q of %s/%s does not decrypt with this key", field, user, transport)
	}
	return string(plain), nil
}
