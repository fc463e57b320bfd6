package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// gotrue is a plain-HTTP client for the four Supabase Auth (GoTrue) endpoints the dashboard
// uses. Plain HTTP rather than gotrue-go: we need password, magic link with PKCE, refresh and
// logout only, with our context and timeouts, and no extra module graph.
type gotrue struct {
	base   string // <SUPABASE_URL>/auth/v1
	apikey string
	client *http.Client
}

// session is what GoTrue returns for a sign-in or refresh.
type session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// errAuthRefused is GoTrue saying no (wrong password, used refresh token); the page says so.
var errAuthRefused = errors.New("sign-in refused")

func (g *gotrue) post(ctx context.Context, path string, q url.Values, body any, bearer string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("auth %s: %w", path, err)
	}
	u := g.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("auth %s: %w", path, err)
	}
	req.Header.Set("apikey", g.apikey)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("auth %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("auth %s: %w", path, err)
	}
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return fmt.Errorf("auth %s: %s: %w", path, resp.Status, errAuthRefused)
	case resp.StatusCode >= 300:
		return fmt.Errorf("auth %s: %s", path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("auth %s: decode: %w", path, err)
	}
	return nil
}

func (g *gotrue) password(ctx context.Context, email, password string) (*session, error) {
	var s session
	err := g.post(ctx, "/token", url.Values{"grant_type": {"password"}},
		map[string]string{"email": email, "password": password}, "", &s)
	return &s, err
}

func (g *gotrue) refresh(ctx context.Context, refreshToken string) (*session, error) {
	var s session
	err := g.post(ctx, "/token", url.Values{"grant_type": {"refresh_token"}},
		map[string]string{"refresh_token": refreshToken}, "", &s)
	return &s, err
}

// magicLink asks GoTrue to email a sign-in link. PKCE: the link comes back to redirectTo with a
// ?code= the server can read (the implicit flow would put tokens in a #fragment only JS sees).
func (g *gotrue) magicLink(ctx context.Context, email, redirectTo, challenge string) error {
	return g.post(ctx, "/otp", url.Values{"redirect_to": {redirectTo}}, map[string]any{
		"email": email, "create_user": false,
		"code_challenge": challenge, "code_challenge_method": "s256",
	}, "", nil)
}

func (g *gotrue) exchange(ctx context.Context, code, verifier string) (*session, error) {
	var s session
	err := g.post(ctx, "/token", url.Values{"grant_type": {"pkce"}},
		map[string]string{"auth_code": code, "code_verifier": verifier}, "", &s)
	return &s, err
}

func (g *gotrue) logout(ctx context.Context, accessToken string) error {
	return g.post(ctx, "/logout", nil, struct{}{}, accessToken, nil)
}

// pkcePair returns a random verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}
