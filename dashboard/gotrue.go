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

	authapi "github.com/supabase-community/gotrue-go"
	"github.com/supabase-community/gotrue-go/types"
	supabase "github.com/supabase-community/supabase-go"
)

// authTimeout bounds every call to Supabase Auth: a sign-in page must answer, not hang.
const authTimeout = 10 * time.Second

// gotrue is the dashboard's Supabase Auth (GoTrue) client. Password sign-in, refresh and sign-out
// go through supabase-go's auth client; the magic link and its PKCE exchange are plain HTTP
// because that client cannot do them (see doc.go, "Supabase Auth").
type gotrue struct {
	base   string // <SUPABASE_URL>/auth/v1
	apikey string
	client *http.Client
	sb     authapi.Client // supabase-go's Auth: an immutable value, one copy per call
}

func newGotrue(supabaseURL, anonKey string, client *http.Client) (*gotrue, error) {
	sc, err := supabase.NewClient(supabaseURL, anonKey, nil)
	if err != nil {
		return nil, fmt.Errorf("supabase client: %w", err)
	}
	return &gotrue{base: supabaseURL + "/auth/v1", apikey: anonKey, client: client, sb: sc.Auth}, nil
}

// session is what GoTrue returns for a sign-in or refresh.
type session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// errAuthRefused is GoTrue saying no (wrong password, used refresh token); the page says so.
var errAuthRefused = errors.New("sign-in refused")

// call runs one supabase-go Auth call with our context and timeout. gotrue-go builds its
// requests without a context, so its HTTP client hook (WithClient) gets a transport that puts
// ours on the request; the transport also notes the status, because gotrue-go reports a refusal
// only as text.
func (g *gotrue) call(ctx context.Context, what, bearer string, fn func(authapi.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, authTimeout)
	defer cancel()
	rt := &ctxTransport{ctx: ctx, base: g.client.Transport}
	c := g.sb.WithClient(http.Client{Transport: rt, Timeout: authTimeout})
	if bearer != "" {
		c = c.WithToken(bearer)
	}
	err := fn(c)
	switch {
	case err == nil:
		return nil
	case rt.status >= 400 && rt.status < 500:
		return fmt.Errorf("auth %s: %w: %w", what, errAuthRefused, err)
	}
	return fmt.Errorf("auth %s: %w", what, err)
}

// ctxTransport gives every request of one call the call's context and remembers the status.
type ctxTransport struct {
	ctx    context.Context
	base   http.RoundTripper
	status int
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req.WithContext(t.ctx))
	if err == nil {
		t.status = resp.StatusCode
	}
	return resp, err
}

func fromTypes(s types.Session) *session {
	return &session{AccessToken: s.AccessToken, RefreshToken: s.RefreshToken, ExpiresIn: s.ExpiresIn}
}

func (g *gotrue) password(ctx context.Context, email, password string) (*session, error) {
	var s *session
	err := g.call(ctx, "password", "", func(c authapi.Client) error {
		tr, err := c.SignInWithEmailPassword(email, password)
		if err == nil {
			s = fromTypes(tr.Session)
		}
		return err
	})
	return s, err
}

func (g *gotrue) refresh(ctx context.Context, refreshToken string) (*session, error) {
	var s *session
	err := g.call(ctx, "refresh", "", func(c authapi.Client) error {
		tr, err := c.RefreshToken(refreshToken)
		if err == nil {
			s = fromTypes(tr.Session)
		}
		return err
	})
	return s, err
}

func (g *gotrue) logout(ctx context.Context, accessToken string) error {
	return g.call(ctx, "logout", accessToken, func(c authapi.Client) error { return c.Logout() })
}

// magicLink asks GoTrue to email a sign-in link. PKCE: the link comes back to redirectTo with a
// ?code= the server can read (the implicit flow would put tokens in a #fragment only JS sees).
func (g *gotrue) magicLink(ctx context.Context, email, redirectTo, challenge string) error {
	return g.post(ctx, "/otp", url.Values{"redirect_to": {redirectTo}}, map[string]any{
		"email": email, "create_user": false,
		"code_challenge": challenge, "code_challenge_method": "s256",
	}, nil)
}

func (g *gotrue) exchange(ctx context.Context, code, verifier string) (*session, error) {
	var s session
	err := g.post(ctx, "/token", url.Values{"grant_type": {"pkce"}},
		map[string]string{"auth_code": code, "code_verifier": verifier}, &s)
	return &s, err
}

// post is the plain-HTTP call for what supabase-go cannot send (the PKCE magic link).
func (g *gotrue) post(ctx context.Context, path string, q url.Values, body any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, authTimeout)
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

// pkcePair returns a random verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}
