package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// localToken signs claims as local mode does (HS256 with the test secret), starting from an
// access token of adminA valid for an hour; a nil value drops the claim.
func localToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return signLocal(t, testSecret, claims)
}

// signLocal is localToken signed with secret.
func signLocal(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	base := jwt.MapClaims{"iss": localIssuer, "aud": audience, "sub": adminA, "role": "authenticated",
		"email": "demo@keapsync.local", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, base).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withSession is a browser holding these access and refresh cookies.
func (e *env) withSession(access, refresh string) *client {
	c := e.withToken(access)
	u, _ := url.Parse(e.ts.URL)
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookieRefresh, Value: refresh}})
	return c
}

func cookieOf(resp *http.Response, name string) (*http.Cookie, bool) {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// Local mode's sessions renew like Supabase's: an expired access token with the refresh cookie
// local sign-in gave gets a new pair and the page; a refresh token signed with another secret,
// expired, or an access token passed off as one, ends the session on the sign-in page with its
// cookies cleared.
func TestLocalSessionRenewsWithItsRefreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.withToken("")
	resp, _ := c.post("/signin/local", url.Values{"next": {"/health"}})
	refresh, ok := cookieOf(resp, cookieRefresh)
	if resp.StatusCode != 303 || !ok || refresh.Value == "" {
		t.Fatalf("local sign-in: %d, refresh cookie %v", resp.StatusCode, refresh)
	}
	expired := localToken(t, jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix(), "iat": time.Now().Add(-time.Hour).Unix()})

	resp, body := e.withSession(expired, refresh.Value).get("/health")
	if resp.StatusCode != 200 || !strings.Contains(body, "Sync health") {
		t.Fatalf("expired access token with the refresh cookie: %d, want the page", resp.StatusCode)
	}
	renewed, ok := cookieOf(resp, cookieAccess)
	if !ok {
		t.Fatal("the renewed session was not stored")
	}
	claims, err := e.srv.verify.Verify(renewed.Value)
	if err != nil || claims.Subject != adminA || !claims.Expires.After(time.Now()) {
		t.Fatalf("renewed access token: %+v, %v; want a valid one for the same person", claims, err)
	}

	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": localIssuer, "aud": localRefresh, "sub": adminB,
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("another-secret-another-secret-another-1"))
	for name, rt := range map[string]string{
		"forged refresh token":          forged,
		"expired refresh token":         localToken(t, jwt.MapClaims{"aud": localRefresh, "exp": time.Now().Add(-time.Minute).Unix()}),
		"access token as refresh token": localToken(t, nil),
	} {
		resp, _ := e.withSession(expired, rt).get("/health")
		if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
			t.Errorf("%s: %d %s, want the sign-in page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		if c, ok := cookieOf(resp, cookieAccess); !ok || c.MaxAge >= 0 {
			t.Errorf("%s: session cookies not cleared", name)
		}
	}
}

// An access token about to expire whose refresh fails still serves its last minutes: the
// page, not the sign-in form, and the cookies as they were.
func TestFailedRefreshKeepsAValidSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	soon := localToken(t, jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()}) // inside RefreshBefore
	resp, _ := e.withSession(soon, "not-a-refresh-token").get("/conflicts")
	if resp.StatusCode != 200 {
		t.Fatalf("%d, want the page while the access token is valid", resp.StatusCode)
	}
	if _, ok := cookieOf(resp, cookieAccess); ok {
		t.Error("the session cookies were replaced though nothing was refreshed")
	}
}

// A token without a subject is nobody: refused like a forged one.
func TestTokenWithoutSubjectIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp, _ := e.withToken(localToken(t, jwt.MapClaims{"sub": nil})).get("/")
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Fatalf("token without sub: %d %s, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The Realtime client gets the person's own access token (the cookie is HttpOnly), never cached;
// signed out, the endpoint answers 401 in JSON rather than a redirect a script cannot follow.
func TestLiveTokenIsThePersonsOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := localToken(t, nil)
	resp, body := e.withToken(tok).get("/live/token")
	var got struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   int64  `json:"expires_at"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("live token: %d %s", resp.StatusCode, body)
	}
	claims, _ := e.srv.verify.Verify(tok)
	if got.AccessToken != tok || got.ExpiresAt != claims.Expires.Unix() || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("live token: %+v, Cache-Control %q; want the cookie's token, its expiry, no-store", got, resp.Header.Get("Cache-Control"))
	}
	resp, body = e.withToken("").get("/live/token")
	if resp.StatusCode != 401 || !strings.Contains(body, `"signed_out"`) {
		t.Errorf("signed out: %d %s, want 401 signed_out", resp.StatusCode, body)
	}
}
