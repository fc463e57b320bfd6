package keapauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Keyring seals token pairs with AES-256-GCM. The first key seals; every key opens, so a key can
// be rotated: configure the new key first and the old one after it, and each token is re-sealed
// under the new key the next time it is read.
type Keyring struct {
	keys []sealKey
}

type sealKey struct {
	id   string // first 8 bytes of SHA-256 of the key, hex: names the key without revealing it
	aead cipher.AEAD
}

// ErrUnknownKey means a token was sealed with a key that is not configured.
var ErrUnknownKey = errors.New("token was sealed with a key that is not configured")

// ParseKeyring reads KEAPSYNC_SECRET_KEY-style values: base64 of 32 random bytes, several
// separated by commas (current first).
func ParseKeyring(value string) (*Keyring, error) {
	var kr Keyring
	for i, part := range strings.Split(value, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64: %w", i+1, err)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("key %d has %d bytes, want 32 (keapsync keygen prints one)", i+1, len(raw))
		}
		// Neither can fail: AES takes a 32-byte key (checked above), GCM AES's 16-byte blocks.
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		sum := sha256.Sum256(raw)
		kr.keys = append(kr.keys, sealKey{id: hex.EncodeToString(sum[:8]), aead: aead})
	}
	if len(kr.keys) == 0 {
		return nil, errors.New("no key given (keapsync keygen prints one)")
	}
	return &kr, nil
}

// NewKey returns a fresh key in the form ParseKeyring reads (crypto/rand.Read cannot fail).
func NewKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// CurrentID names the sealing key.
func (k *Keyring) CurrentID() string { return k.keys[0].id }

// Seal encrypts plaintext under the current key. aad binds the ciphertext to its owner (the
// account id), so a ciphertext copied to another account's row does not open.
func (k *Keyring) Seal(plaintext, aad []byte) (keyID string, sealed []byte) {
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize())
	rand.Read(nonce)
	return key.id, key.aead.Seal(nonce, nonce, plaintext, aad)
}

// Open decrypts what Seal produced with the key named keyID.
func (k *Keyring) Open(keyID string, sealed, aad []byte) ([]byte, error) {
	for _, key := range k.keys {
		if key.id != keyID {
			continue
		}
		n := key.aead.NonceSize()
		if len(sealed) < n {
			return nil, errors.New("sealed token is truncated")
		}
		plain, err := key.aead.Open(nil, sealed[:n], sealed[n:], aad)
		if err != nil {
			return nil, errors.New("sealed token failed authentication: it was altered, or belongs to another account")
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, keyID)
}
