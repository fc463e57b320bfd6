package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	localIssuer  = "keapsync-local"
	audience     = "authenticated"
	localRefresh = "keapsync-local-refresh" // audience of local mode's refresh tokens
)

// errBadToken covers every reason a token is refused; the reason goes to the log, never the page.
var errBadToken = errors.New("invalid session token")

// Claims are the verified claims of a user's access token. Raw is the exact JSON given to
// Postgres as request.jwt.claims, so auth.uid(), auth.role() and auth.jwt() see what GoTrue signed.
type Claims struct {
	Subject string
	Email   string
	Expires time.Time
	Raw     []byte
}

// verifier checks access tokens: signature (HS256 with the legacy secret, or ES256/RS256 by kid
// from the JWKS), then exp, aud and iss.
type verifier struct {
	issuer string
	secret []byte // nil: HS256 refused
	jwks   *jwks  // nil: asymmetric tokens refused (local mode)
	now    func() time.Time
}

func (v *verifier) methods() []string {
	var m []string
	if v.secret != nil {
		m = append(m, "HS256")
	}
	if v.jwks != nil {
		m = append(m, "ES256", "RS256")
	}
	return m
}

func (v *verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case "HS256":
		return v.secret, nil
	case "ES256", "RS256":
		kid, _ := t.Header["kid"].(string)
		return v.jwks.key(kid, t.Method.Alg())
	}
	return nil, fmt.Errorf("alg %s not accepted", t.Method.Alg())
}

// Verify returns the claims of a valid access token for a signed-in person.
func (v *verifier) Verify(token string) (*Claims, error) {
	mc := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods(v.methods()),
		jwt.WithAudience(audience),
		jwt.WithIssuer(v.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(v.now),
		jwt.WithLeeway(5*time.Second),
	).ParseWithClaims(token, mc, v.key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	// Only people: a service_role or anon token must never reach the database as a user, because
	// keapsync.require_admin lets the service role through.
	if role, _ := mc["role"].(string); role != "authenticated" {
		return nil, fmt.Errorf("%w: role %q", errBadToken, role)
	}
	sub, _ := mc["sub"].(string)
	if sub == "" {
		return nil, fmt.Errorf("%w: no sub", errBadToken)
	}
	exp, _ := mc.GetExpirationTime()
	raw, err := json.Marshal(mc)
	if err != nil {
		return nil, fmt.Errorf("encode claims: %w", err)
	}
	email, _ := mc["email"].(string)
	return &Claims{Subject: sub, Email: email, Expires: exp.Time, Raw: raw}, nil
}

// minter issues local mode's tokens, shaped like GoTrue's so the database cannot tell them apart.
type minter struct {
	secret []byte
	now    func() time.Time
	ttl    time.Duration
}

func (m *minter) access(sub, email string) (string, time.Time, error) {
	now := m.now()
	exp := now.Add(m.ttl)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": localIssuer, "aud": audience, "sub": sub, "email": email, "role": "authenticated",
		"aal": "aal1", "iat": now.Unix(), "exp": exp.Unix(), "session_id": "local",
		"app_metadata": map[string]any{"provider": "local"},
	}).SignedString(m.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign local token: %w", err)
	}
	return tok, exp, nil
}

// refresh is a week-long token that only the refresh path accepts (its audience differs).
func (m *minter) refresh(sub, email string) (string, error) {
	now := m.now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": localIssuer, "aud": localRefresh, "sub": sub, "email": email,
		"iat": now.Unix(), "exp": now.Add(7 * 24 * time.Hour).Unix(),
	}).SignedString(m.secret)
	if err != nil {
		return "", fmt.Errorf("sign local refresh token: %w", err)
	}
	return tok, nil
}

func (m *minter) checkRefresh(tok string) (sub, email string, err error) {
	mc := jwt.MapClaims{}
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(localRefresh),
		jwt.WithIssuer(localIssuer), jwt.WithExpirationRequired(), jwt.WithTimeFunc(m.now)).
		ParseWithClaims(tok, mc, func(*jwt.Token) (any, error) { return m.secret, nil })
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", errBadToken, err)
	}
	sub, _ = mc["sub"].(string)
	email, _ = mc["email"].(string)
	return sub, email, nil
}
