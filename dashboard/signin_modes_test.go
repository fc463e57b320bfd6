package dashboard

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Each sign-in form answers in the mode it does not belong to with what to do instead, and a
// form without its CSRF token is refused before anything is asked of anyone.
func TestSignInFormsOfTheOtherMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.withToken("")
	for _, tc := range []struct {
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"/signin", url.Values{"email": {"a@example.com"}, "password": {"x"}}, 400, "runs in local mode"},
		{"/signin/magic", url.Values{"email": {"a@example.com"}}, 400, "runs in local mode"},
		{"/signin/magic", url.Values{"email": {"a@example.com"}, "csrf": {"wrong"}}, 403, "The sign-in form expired"},
		{"/signin/local", url.Values{"csrf": {"wrong"}}, 403, "The sign-in form expired"},
		{"/signout", url.Values{"csrf": {"wrong"}}, 403, "This form has expired"},
	} {
		resp, body := c.post(tc.path, tc.form)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("POST %s %v: %d, want %d saying %q", tc.path, tc.form, resp.StatusCode, tc.status, tc.says)
		}
	}
	if resp, body := c.get("/auth/callback?code=abc"); resp.StatusCode != 400 || !strings.Contains(body, "incomplete") {
		t.Errorf("magic-link callback in local mode: %d, want 400 saying the link is incomplete", resp.StatusCode)
	}

	auth := newFakeAuth(t)
	s := supabaseEnv(t, e.db, auth.URL).withToken("")
	if resp, body := s.post("/signin/local", url.Values{}); resp.StatusCode != 404 || !strings.Contains(body, "Local sign-in is off") {
		t.Errorf("local sign-in in Supabase mode: %d, want 404 saying it is off", resp.StatusCode)
	}
}

// Supabase Auth misbehaving: down, answering garbage, issuing tokens that do not verify, or
// failing a sign-out. Each sign-in says what happened (502, never a signed-in page); sign-out
// clears the cookies whatever Auth answered; a JWKS that cannot be read refuses every token.
func TestSignInWhenSupabaseAuthMisbehaves(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	authSrv := httptest.NewServer(mux)
	t.Cleanup(authSrv.Close)
	mux.HandleFunc("POST /auth/v1/token", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch {
		case r.URL.Query().Get("grant_type") == "pkce":
			w.Write([]byte(`{"access_token": 12`)) // cut off
		case body["email"] == "down@example.com":
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
		default: // a token signed with a key the JWKS does not have
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": authSrv.URL + "/auth/v1", "aud": "authenticated",
				"sub": adminA, "role": "authenticated", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("whatever-secret-whatever-secret-000"))
			_ = json.NewEncoder(w).Encode(session{AccessToken: tok, RefreshToken: "rt", ExpiresIn: 3600})
		}
	})
	mux.HandleFunc("POST /auth/v1/otp", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "mailer down", http.StatusBadGateway)
	})
	mux.HandleFunc("POST /auth/v1/logout", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /auth/v1/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	})
	e := supabaseEnv(t, newEnv(t).db, authSrv.URL)
	c := e.withToken("")
	for _, tc := range []struct {
		path string
		form url.Values
		says string
	}{
		{"/signin", url.Values{"email": {"down@example.com"}, "password": {"x"}}, "Supabase Auth did not answer"},
		{"/signin", url.Values{"email": {"demo@keapsync.local"}, "password": {"x"}}, "the token could not be verified"},
		{"/signin/magic", url.Values{"email": {"demo@keapsync.local"}}, "Supabase Auth did not answer"},
	} {
		resp, body := c.post(tc.path, tc.form)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, tc.says) {
			t.Errorf("POST %s %v: %d, want 502 saying %q", tc.path, tc.form, resp.StatusCode, tc.says)
		}
		if _, ok := cookieOf(resp, cookieAccess); ok {
			t.Errorf("POST %s %v: a session was stored", tc.path, tc.form)
		}
	}
	// The magic-link form left its PKCE cookie: the callback's exchange answers garbage.
	if resp, body := c.get("/auth/callback?code=c1"); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Supabase Auth did not answer") {
		t.Errorf("callback with an unreadable exchange: %d, want 502", resp.StatusCode)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": authSrv.URL + "/auth/v1", "aud": "authenticated",
		"sub": adminA, "role": "authenticated", "exp": time.Now().Add(time.Hour).Unix()})
	es.Header["kid"] = "k1"
	tok, _ := es.SignedString(key)
	signedIn := e.withToken(tok)
	if resp, _ := signedIn.get("/"); resp.StatusCode != 303 {
		t.Errorf("a token while the JWKS cannot be read: %d, want the sign-in page", resp.StatusCode)
	}
	resp, _ := signedIn.post("/signout", url.Values{})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/signin?done=signedout" {
		t.Errorf("sign-out with Auth failing: %d %s, want signed out here anyway", resp.StatusCode, resp.Header.Get("Location"))
	}
	if ck, ok := cookieOf(resp, cookieAccess); !ok || ck.MaxAge >= 0 {
		t.Error("sign-out with Auth failing left the session cookie")
	}
}

// Supabase mode with the legacy JWT secret accepts the project's HS256 tokens too.
func TestSupabaseModeWithLegacySecret(t *testing.T) {
	t.Parallel()
	auth := newFakeAuth(t)
	db := newEnv(t).db
	srv, ts := serveDashboard(t, db, func(publicURL string) Config {
		return Config{SupabaseURL: auth.URL, AnonKey: "anon-key", JWTSecret: testSecret, PublicURL: publicURL, Log: testLogger(t)}
	})
	t.Cleanup(ts.Close)
	e := &env{t: t, db: db, srv: srv, ts: ts}
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": auth.URL + "/auth/v1", "aud": "authenticated",
		"sub": adminA, "role": "authenticated", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(testSecret))
	if resp, _ := e.withToken(hs).get("/"); resp.StatusCode != 200 {
		t.Errorf("HS256 token with the legacy secret configured: %d, want the page", resp.StatusCode)
	}
}

// The JWKS decides which keys sign: keys too weak, on another curve, off the curve, of a type
// keapsync does not use, or not decodable are dropped without hiding the good ones; a token is
// accepted only under the algorithm of its key (no RSA token under an EC kid or the reverse),
// and a JWKS that cannot be fetched or read accepts nothing.
func TestJWKSTrustsOnlyKeysItCanCheck(t *testing.T) {
	t.Parallel()
	b64 := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.Bytes()) }
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	good, _ := rsa.GenerateKey(rand.Reader, 2048)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	keys := []map[string]string{
		{"kid": "ec", "kty": "EC", "crv": "P-256", "x": b64(ec.X), "y": b64(ec.Y)},
		{"kid": "rsa", "kty": "RSA", "n": b64(good.N), "e": b64(big.NewInt(int64(good.E)))},
		{"kid": "weak", "kty": "RSA", "n": b64(weak.N), "e": b64(big.NewInt(int64(weak.E)))},
		{"kid": "p384", "kty": "EC", "crv": "P-384", "x": b64(p384.X), "y": b64(p384.Y)},
		{"kid": "offcurve", "kty": "EC", "crv": "P-256", "x": b64(big.NewInt(1)), "y": b64(big.NewInt(1))},
		{"kid": "bad-ec", "kty": "EC", "crv": "P-256", "x": "!!", "y": b64(ec.Y)},
		{"kid": "bad-rsa", "kty": "RSA", "n": b64(good.N), "e": "!!"},
		{"kid": "oct", "kty": "oct"},
	}
	answer := func(w http.ResponseWriter) { _ = json.NewEncoder(w).Encode(map[string]any{"keys": keys}) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer(w) }))
	t.Cleanup(srv.Close)
	j := newJWKS(srv.URL, srv.Client(), time.Now)
	j.minRefetch = 0
	for _, kid := range []string{"weak", "p384", "offcurve", "bad-ec", "bad-rsa", "oct", "nope"} {
		if _, err := j.key(kid, "RS256"); err == nil || !strings.Contains(err.Error(), "unknown kid") {
			t.Errorf("kid %s: %v; want it dropped", kid, err)
		}
	}
	if k, err := j.key("ec", "ES256"); err != nil || !k.(*ecdsa.PublicKey).Equal(&ec.PublicKey) {
		t.Errorf("the good EC key: %v", err)
	}
	if k, err := j.key("rsa", "RS256"); err != nil || !k.(*rsa.PublicKey).Equal(&good.PublicKey) {
		t.Errorf("the good RSA key: %v", err)
	}
	if _, err := j.key("ec", "RS256"); err == nil {
		t.Error("an RS256 token under an EC key's kid was given the key")
	}
	if _, err := j.key("rsa", "ES256"); err == nil {
		t.Error("an ES256 token under an RSA key's kid was given the key")
	}

	for name, a := range map[string]func(w http.ResponseWriter){
		"500":     func(w http.ResponseWriter) { http.Error(w, "oops", 500) },
		"garbage": func(w http.ResponseWriter) { w.Write([]byte("<html>")) },
	} {
		answer = a
		j := newJWKS(srv.URL, srv.Client(), time.Now)
		if _, err := j.key("ec", "ES256"); err == nil || !strings.HasPrefix(err.Error(), "jwks: ") {
			t.Errorf("JWKS answering %s: %v; want its error", name, err)
		}
	}
	srv.Close()
	if _, err := newJWKS(srv.URL, srv.Client(), time.Now).key("ec", "ES256"); err == nil {
		t.Error("an unreachable JWKS gave a key")
	}
}
