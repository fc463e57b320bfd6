package dashboard

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Config{
		"local with SUPABASE_URL": {Local: true, SupabaseURL: "https://x.supabase.co"},
		"no auth at all":          {},
		"no anon key":             {SupabaseURL: "https://x.supabase.co"},
		"short secret":            {Local: true, JWTSecret: "short"},
		"bad url":                 {SupabaseURL: "x.supabase.co", AnonKey: "k"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, c := range map[string]Config{
		"local":    {Local: true},
		"supabase": {SupabaseURL: "https://x.supabase.co", AnonKey: "k"},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Forged, expired, wrongly addressed or non-user tokens all end on the sign-in page.
func TestBadTokensGetSigninPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	sign := func(secret string, claims jwt.MapClaims) string { return signLocal(t, secret, claims) }
	good := sign(testSecret, nil)
	if resp, _ := e.withToken(good).get("/"); resp.StatusCode != 200 {
		t.Fatalf("good token: %d", resp.StatusCode)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": localIssuer, "aud": "authenticated",
		"sub": adminA, "role": "authenticated", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(good, ".")
	for name, tok := range map[string]string{
		"forged signature": sign("another-secret-another-secret-another-1", nil),
		"expired":          sign(testSecret, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()}),
		"no exp":           sign(testSecret, jwt.MapClaims{"exp": nil}),
		"wrong audience":   sign(testSecret, jwt.MapClaims{"aud": "anon"}),
		"wrong issuer":     sign(testSecret, jwt.MapClaims{"iss": "https://evil.example/auth/v1"}),
		"service role":     sign(testSecret, jwt.MapClaims{"role": "service_role"}),
		"alg none":         none,
		"tampered payload": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+adminB+`","role":"authenticated","aud":"authenticated","iss":"keapsync-local","exp":9999999999}`)) + "." + parts[2],
		"garbage":          "not-a-jwt",
	} {
		c := e.withToken(tok)
		resp, _ := c.get("/conflicts")
		if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
			t.Errorf("%s: GET %d %s, want redirect to sign-in", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, body := c.post("/conflicts/"+e.conflictID(accountA)+"/resolve", url.Values{"choice": {"keap"}})
		if resp.StatusCode != 401 || !strings.Contains(body, "Sign in") {
			t.Errorf("%s: POST %d, want the sign-in page", name, resp.StatusCode)
		}
	}
	if got := e.scalar(`select count(*)::text from keapsync.conflicts where status = 'open'`); got != "2" {
		t.Fatalf("open conflicts %s after bad tokens", got)
	}
}

func TestLocalSignInFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.withToken("")
	resp, body := c.get("/signin")
	if resp.StatusCode != 200 || !strings.Contains(body, "Sign in as the demo user") {
		t.Fatalf("signin page: %d", resp.StatusCode)
	}
	resp, _ = c.post("/signin/local", url.Values{"next": {"/health"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/health" {
		t.Fatalf("local sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ = c.get("/health"); resp.StatusCode != 200 {
		t.Fatalf("after sign-in: %d", resp.StatusCode)
	}
	if resp, _ = c.post("/signin/local", url.Values{"next": {"//evil.example/"}}); resp.Header.Get("Location") != "/" {
		t.Fatalf("open redirect: %s", resp.Header.Get("Location"))
	}
}

// fakeAuth is a stand-in Supabase Auth: JWKS with an ES256 and an RS256 key, password and
// refresh grants.
type fakeAuth struct {
	*httptest.Server
	mux       *http.ServeMux
	challenge atomic.Value // the PKCE challenge of the last magic link
	ec        *ecdsa.PrivateKey
	rsa       *rsa.PrivateKey
	fetches   atomic.Int32
	refreshs  atomic.Int32
	logouts   atomic.Value // the bearer token of the last logout
}

func newFakeAuth(t *testing.T) *fakeAuth {
	f := &fakeAuth{}
	f.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/v1/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		f.fetches.Add(1)
		b64 := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.Bytes()) }
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{
			{"kid": "ec1", "kty": "EC", "crv": "P-256", "x": b64(f.ec.X), "y": b64(f.ec.Y), "alg": "ES256"},
			{"kid": "rsa1", "kty": "RSA", "n": b64(f.rsa.N), "e": b64(big.NewInt(int64(f.rsa.E))), "alg": "RS256"},
		}})
	})
	mux.HandleFunc("POST /auth/v1/otp", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["code_challenge_method"] != "s256" || !strings.HasSuffix(r.URL.Query().Get("redirect_to"), "/auth/callback?next=%2Fhealth") {
			http.Error(w, "bad otp request", 400)
			return
		}
		f.challenge.Store(body["code_challenge"])
	})
	mux.HandleFunc("POST /auth/v1/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("apikey") != "anon-key" {
			http.Error(w, "no apikey", 401)
			return
		}
		var raw map[string]any
		_ = json.NewDecoder(r.Body).Decode(&raw)
		body := map[string]string{}
		for k, v := range raw {
			body[k], _ = v.(string)
		}
		switch r.URL.Query().Get("grant_type") {
		case "password":
			if body["email"] != "demo@keapsync.local" || body["password"] != "right" {
				http.Error(w, `{"error":"invalid_grant"}`, 400)
				return
			}
		case "pkce":
			sum := sha256.Sum256([]byte(body["code_verifier"]))
			if body["auth_code"] != "code-1" || base64.RawURLEncoding.EncodeToString(sum[:]) != f.challenge.Load() {
				http.Error(w, `{"error":"invalid_grant"}`, 400)
				return
			}
		case "refresh_token":
			f.refreshs.Add(1)
			if body["refresh_token"] != "rt-1" {
				http.Error(w, `{"error":"invalid_grant"}`, 400)
				return
			}
		default:
			http.Error(w, "grant", 400)
			return
		}
		_ = json.NewEncoder(w).Encode(session{AccessToken: f.token(t, "ec1", time.Hour, nil), RefreshToken: "rt-1", ExpiresIn: 3600})
	})
	mux.HandleFunc("POST /auth/v1/logout", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("apikey") != "anon-key" {
			http.Error(w, "no apikey", 401)
			return
		}
		f.logouts.Store(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		w.WriteHeader(http.StatusNoContent)
	})
	f.mux = mux
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAuth) token(t *testing.T, kid string, ttl time.Duration, extra jwt.MapClaims) string {
	now := time.Now()
	claims := jwt.MapClaims{"iss": f.URL + "/auth/v1", "aud": "authenticated", "sub": adminA, "role": "authenticated",
		"email": "demo@keapsync.local", "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "session_id": "s1"}
	for k, v := range extra {
		claims[k] = v
	}
	var tok *jwt.Token
	var key any
	if kid == "rsa1" {
		tok, key = jwt.NewWithClaims(jwt.SigningMethodRS256, claims), f.rsa
	} else {
		tok, key = jwt.NewWithClaims(jwt.SigningMethodES256, claims), f.ec
	}
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSupabaseAuthMode(t *testing.T) {
	t.Parallel()
	auth := newFakeAuth(t)
	e := supabaseEnv(t, newEnv(t).db, auth.URL)

	// Password sign-in through GoTrue.
	c := e.withToken("")
	if resp, _ := c.post("/signin", url.Values{"email": {"demo@keapsync.local"}, "password": {"wrong"}}); resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ := c.post("/signin", url.Values{"email": {"demo@keapsync.local"}, "password": {"right"}, "next": {"/conflicts"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/conflicts" {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, ck := range resp.Cookies() {
		if (ck.Name == cookieAccess || ck.Name == cookieRefresh) && (!ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode) {
			t.Errorf("cookie %s not HttpOnly+SameSite", ck.Name)
		}
	}
	resp, body := c.get("/conflicts")
	if resp.StatusCode != 200 || !strings.Contains(body, "Ada (Keap)") {
		t.Fatalf("after sign-in: %d", resp.StatusCode)
	}
	var signedIn string
	u0, _ := url.Parse(e.ts.URL)
	for _, ck := range c.hc.Jar.Cookies(u0) {
		if ck.Name == cookieAccess {
			signedIn = ck.Value
		}
	}
	if !strings.Contains(body, `data-realtime-socket="ws://`+strings.TrimPrefix(auth.URL, "http://")+`/realtime/v1/websocket"`) {
		t.Error("page lacks the Realtime socket URL (html/template may have rewritten it)")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "ws://"+strings.TrimPrefix(auth.URL, "http://")) {
		t.Errorf("CSP lacks the Realtime socket: %s", csp)
	}

	// Magic link with PKCE: the verifier stays in an HttpOnly cookie, the code comes back.
	m := e.withToken("")
	if resp, _ := m.post("/signin/magic", url.Values{"email": {"demo@keapsync.local"}, "next": {"/health"}}); resp.StatusCode != 303 {
		t.Fatalf("magic link: %d", resp.StatusCode)
	}
	if resp, _ := m.get("/auth/callback?code=wrong&next=/health"); resp.StatusCode != 401 {
		t.Fatalf("callback with a wrong code: %d", resp.StatusCode)
	}
	if resp, _ := m.post("/signin/magic", url.Values{"email": {"demo@keapsync.local"}, "next": {"/health"}}); resp.StatusCode != 303 {
		t.Fatalf("magic link: %d", resp.StatusCode)
	}
	if resp, _ := m.get("/auth/callback?code=code-1&next=/health"); resp.StatusCode != 303 || resp.Header.Get("Location") != "/health" {
		t.Fatalf("callback: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := m.get("/health"); resp.StatusCode != 200 {
		t.Fatalf("after magic link: %d", resp.StatusCode)
	}

	// The JSON API takes the same Supabase token as a bearer, verified by the JWKS.
	if status, _, body := newAPIClient(t, e.ts.URL, auth.token(t, "ec1", time.Hour, nil)).get("/api/v1/accounts"); status != 200 || !strings.Contains(string(body), accountA) {
		t.Fatalf("API with a Supabase token: %d %s", status, body)
	}

	// RS256 by kid works too; an unknown kid refetches the JWKS once, then is refused.
	if resp, _ := e.withToken(auth.token(t, "rsa1", time.Hour, nil)).get("/"); resp.StatusCode != 200 {
		t.Fatalf("RS256: %d", resp.StatusCode)
	}
	before := auth.fetches.Load()
	if resp, _ := e.withToken(auth.token(t, "nope", time.Hour, nil)).get("/"); resp.StatusCode != 303 {
		t.Fatalf("unknown kid: %d", resp.StatusCode)
	}
	if resp, _ := e.withToken(auth.token(t, "nope2", time.Hour, nil)).get("/"); resp.StatusCode != 303 {
		t.Fatalf("unknown kid: %d", resp.StatusCode)
	}
	if got := auth.fetches.Load() - before; got > 1 {
		t.Fatalf("unknown kids fetched the JWKS %d times; want at most one per 30 s", got)
	}
	// HS256 is refused when no legacy secret is configured (alg confusion).
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": auth.URL + "/auth/v1", "aud": "authenticated",
		"sub": adminA, "role": "authenticated", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("anon-key"))
	if resp, _ := e.withToken(hs).get("/"); resp.StatusCode != 303 {
		t.Fatalf("HS256 without secret: %d", resp.StatusCode)
	}

	// An expired access token with a refresh cookie is refreshed, once for parallel requests.
	jar := e.withToken(auth.token(t, "ec1", -time.Minute, jwt.MapClaims{"iat": time.Now().Add(-time.Hour).Unix()}))
	u, _ := url.Parse(e.ts.URL)
	jar.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookieRefresh, Value: "rt-1"}})
	resp, _ = jar.get("/")
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	if auth.refreshs.Load() != 1 {
		t.Fatalf("refreshes: %d", auth.refreshs.Load())
	}
	var renewed bool
	for _, ck := range resp.Cookies() {
		renewed = renewed || ck.Name == cookieAccess && ck.Value != ""
	}
	if !renewed {
		t.Fatal("refreshed session not stored")
	}
	// A revoked refresh token ends the session.
	bad := e.withToken(auth.token(t, "ec1", -time.Minute, jwt.MapClaims{"iat": time.Now().Add(-time.Hour).Unix()}))
	bad.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookieRefresh, Value: "revoked"}})
	if resp, _ := bad.get("/"); resp.StatusCode != 303 {
		t.Fatalf("revoked refresh: %d", resp.StatusCode)
	}

	// Sign-out revokes the session at Supabase Auth with the person's own token.
	if resp, _ := c.post("/signout", url.Values{}); resp.StatusCode != 303 || resp.Header.Get("Location") != "/signin?done=signedout" {
		t.Fatalf("sign-out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got, _ := auth.logouts.Load().(string); got == "" || got != signedIn {
		t.Fatalf("logout at Supabase Auth with %q, want the session's access token", got)
	}
}

// Our context reaches supabase-go's requests through its HTTP client hook: a cancelled sign-in
// stops waiting for a Supabase Auth that does not answer.
func TestAuthCallsCarryContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	g, err := newGotrue(hang.URL, "anon-key", &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err = g.password(ctx, "demo@keapsync.local", "right")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sign-in: %v, want context.Canceled", err)
	}
	if errors.Is(err, errAuthRefused) {
		t.Fatal("a cancelled call reads as a refusal")
	}
}

func TestRealtimeURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://abc.supabase.co":  "wss://abc.supabase.co/realtime/v1/websocket",
		"http://127.0.0.1:54321":   "ws://127.0.0.1:54321/realtime/v1/websocket",
		"https://abc.supabase.co/": "wss://abc.supabase.co/realtime/v1/websocket",
	} {
		if got := realtimeURL(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
