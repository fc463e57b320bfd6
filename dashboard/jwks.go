package dashboard

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// jwks caches the project's public signing keys by kid. An unknown kid triggers one refetch (keys
// rotate), at most every minRefetch so that forged kids cannot make us hammer the auth server.
type jwks struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefetch time.Duration

	mu      sync.Mutex
	keys    map[string]any
	fetched time.Time
}

func newJWKS(supabaseURL string, client *http.Client, now func() time.Time) *jwks {
	return &jwks{url: supabaseURL + "/auth/v1/.well-known/jwks.json", client: client, now: now,
		minRefetch: 30 * time.Second}
}

func (j *jwks) key(kid, alg string) (any, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	k, ok := j.keys[kid]
	if !ok && (j.fetched.IsZero() || j.now().Sub(j.fetched) >= j.minRefetch) {
		if err := j.fetch(); err != nil {
			return nil, err
		}
		k, ok = j.keys[kid]
	}
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	switch k.(type) {
	case *ecdsa.PublicKey:
		if alg != "ES256" {
			return nil, fmt.Errorf("kid %q is an EC key, token says %s", kid, alg)
		}
	case *rsa.PublicKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("kid %q is an RSA key, token says %s", kid, alg)
		}
	}
	return k, nil
}

type jwk struct {
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// fetch replaces the key set; called with mu held.
func (j *jwks) fetch() error {
	j.fetched = j.now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks: %s", resp.Status)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("jwks: decode: %w", err)
	}
	keys := make(map[string]any, len(set.Keys))
	for _, k := range set.Keys {
		pub, err := k.public()
		if err != nil {
			continue // a key type we do not use (e.g. oct) must not hide the others
		}
		keys[k.Kid] = pub
	}
	j.keys = keys
	return nil
}

func (k jwk) public() (any, error) {
	b := func(s string) (*big.Int, error) {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, err
		}
		return new(big.Int).SetBytes(raw), nil
	}
	switch k.Kty {
	case "EC":
		if k.Crv != "P-256" {
			return nil, fmt.Errorf("curve %s", k.Crv)
		}
		x, err1 := b(k.X)
		y, err2 := b(k.Y)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
		if !pub.Curve.IsOnCurve(x, y) { //nolint:staticcheck // validates untrusted input
			return nil, errors.New("point not on curve")
		}
		return pub, nil
	case "RSA":
		n, err1 := b(k.N)
		e, err2 := b(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if n.BitLen() < 2048 || !e.IsInt64() {
			return nil, errors.New("weak RSA key")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	}
	return nil, fmt.Errorf("kty %s", k.Kty)
}
