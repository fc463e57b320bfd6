package sandbox

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// authorize runs the code flow up to the redirect and returns its query.
func authorize(t *testing.T, c *client, state string) url.Values {
	t.Helper()
	creds := c.srv.Credentials()
	q := url.Values{"client_id": {creds.ClientID}, "redirect_uri": {"https://app.example/cb"},
		"response_type": {"code"}, "scope": {"full"}, "state": {state}}
	resp, body := c.do("GET", "/app/oauth/authorize?"+q.Encode(), nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != "app.example" {
		t.Fatalf("authorize redirect %q: %v", resp.Header.Get("Location"), err)
	}
	return loc.Query()
}

func exchangeCode(t *testing.T, c *client, code string) (*http.Response, map[string]any) {
	creds := c.srv.Credentials()
	return c.form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"client_id": {creds.ClientID}, "client_secret": {creds.ClientSecret}, "redirect_uri": {"https://app.example/cb"}}, "", "")
}

func login(t *testing.T, c *client) map[string]any {
	t.Helper()
	resp, tok := exchangeCode(t, c, authorize(t, c, "s").Get("code"))
	if resp.StatusCode != 200 {
		t.Fatalf("code exchange: %d %v", resp.StatusCode, tok)
	}
	return tok
}

func refresh(c *client, rt string) (*http.Response, map[string]any) {
	creds := c.srv.Credentials()
	return c.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, creds.ClientID, creds.ClientSecret)
}

func TestOAuthCodeFlow(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, AutoApprove: true, Tenant: "ab123.infusionsoft.com"})
	c := newClient(t, srv, false)
	q := authorize(t, c, "xyz")
	if q.Get("state") != "xyz" || q.Get("code") == "" {
		t.Fatalf("redirect query %v: want code and state echoed", q)
	}
	resp, tok := exchangeCode(t, c, q.Get("code"))
	if resp.StatusCode != 200 {
		t.Fatalf("exchange: %d %v", resp.StatusCode, tok)
	}
	if tok["token_type"] != "bearer" || tok["scope"] != "full|ab123.infusionsoft.com" || tok["expires_in"] != float64(86400) || tok["refresh_token"] == "" {
		t.Fatalf("token response %v", tok)
	}
	c.withBearer(tok["access_token"].(string)).json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)

	// A code is single use.
	if resp, body := exchangeCode(t, c, q.Get("code")); resp.StatusCode != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("code reuse: %d %v", resp.StatusCode, body)
	}
	// Wrong client secret in the body.
	resp, body := c.form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {authorize(t, c, "").Get("code")},
		"client_id": {srv.Credentials().ClientID}, "client_secret": {"nope"}, "redirect_uri": {"https://app.example/cb"}}, "", "")
	if resp.StatusCode != 401 || body["error_description"] != "Unable to authenticate username and password" {
		t.Fatalf("bad secret: %d %v", resp.StatusCode, body)
	}
}

func TestOAuthConsentPageAndDeny(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{})
	c := newClient(t, srv, true)
	creds := srv.Credentials()
	q := url.Values{"client_id": {creds.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"}, "scope": {"full"}, "state": {"st"}}
	resp, body := c.do("GET", "/app/oauth/authorize?"+q.Encode(), nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `value="deny"`) {
		t.Fatalf("consent page: %d %s", resp.StatusCode, body)
	}
	for decision, want := range map[string]string{"deny": "error=access_denied", "allow": "code="} {
		f := url.Values{"decision": {decision}}
		for k, v := range q {
			f[k] = v
		}
		r, err := c.hc.PostForm(srv.URL()+"/app/oauth/authorize", f)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		loc := r.Header.Get("Location")
		if r.StatusCode != http.StatusFound || !strings.Contains(loc, want) || !strings.Contains(loc, "state=st") {
			t.Errorf("%s: %d %q, want %q and state", decision, r.StatusCode, loc, want)
		}
	}
	bad := url.Values{"client_id": {"someone-else"}, "redirect_uri": {"https://x/cb"}, "response_type": {"code"}}
	if resp, _ := c.do("GET", "/app/oauth/authorize?"+bad.Encode(), nil); resp.StatusCode != 400 {
		t.Errorf("unknown client: %d, want 400 without redirect", resp.StatusCode)
	}
}

func TestRefreshRotatesAndRejectsReuse(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{AutoApprove: true})
	c := newClient(t, srv, false)
	first := login(t, c)
	resp, second := refresh(c, first["refresh_token"].(string))
	if resp.StatusCode != 200 || second["refresh_token"] == first["refresh_token"] || second["access_token"] == first["access_token"] {
		t.Fatalf("refresh: %d %v", resp.StatusCode, second)
	}
	// The old refresh token died at once.
	resp, body := refresh(c, first["refresh_token"].(string))
	if resp.StatusCode != 400 || body["error"] != "invalid_grant" || body["error_description"] != "Invalid refresh token" {
		t.Fatalf("reuse: %d %v", resp.StatusCode, body)
	}
	// The new one works once more; client credentials must be HTTP Basic.
	if resp, _ := c.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second["refresh_token"].(string)},
		"client_id": {srv.Credentials().ClientID}, "client_secret": {srv.Credentials().ClientSecret}}, "", ""); resp.StatusCode != 401 {
		t.Fatalf("refresh with body credentials: %d, want 401", resp.StatusCode)
	}
	// That attempt failed client authentication, so it must not have burned the token.
	if resp, _ := refresh(c, second["refresh_token"].(string)); resp.StatusCode != 200 {
		t.Fatalf("refresh after a rejected client: %d, want 200", resp.StatusCode)
	}
	if resp, body := c.form("/token", url.Values{"grant_type": {"refresh_token"}}, srv.Credentials().ClientID, srv.Credentials().ClientSecret); resp.StatusCode != 400 || body["error"] != "invalid_request" {
		t.Fatalf("missing refresh_token: %d %v", resp.StatusCode, body)
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{AutoApprove: true})
	c := newClient(t, srv, false)
	tok := login(t, c)
	api := c.withBearer(tok["access_token"].(string))
	clock.Advance(24*time.Hour - time.Millisecond)
	api.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	clock.Advance(time.Millisecond)
	var fault map[string]map[string]any
	api.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 401, &fault)
	if fault["fault"]["faultstring"] != "Access Token expired" {
		t.Fatalf("expired body %v", fault)
	}
	// The refresh token outlives the access token but not 45 days.
	resp, next := refresh(c, tok["refresh_token"].(string))
	if resp.StatusCode != 200 {
		t.Fatalf("refresh after access expiry: %d", resp.StatusCode)
	}
	srv.Advance(45 * 24 * time.Hour)
	if resp, _ := refresh(c, next["refresh_token"].(string)); resp.StatusCode != 400 {
		t.Fatalf("refresh after 45 days: %d, want 400", resp.StatusCode)
	}
}

func TestGatewayAuthFaults(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1, AutoApprove: true})
	c := newClient(t, srv, false)
	cases := []struct {
		name   string
		header http.Header
		path   string
		code   string
	}{
		{"no credentials", http.Header{}, "/crm/rest/v1/contacts", "oauth.v2.InvalidAccessToken"},
		{"unknown path without credentials", http.Header{}, "/crm/rest/v1/no/such/thing", "oauth.v2.InvalidAccessToken"},
		{"malformed authorization", http.Header{"Authorization": {"Token abc"}}, "/crm/rest/v1/contacts", "oauth.v2.InvalidAccessToken"},
		{"unknown bearer", http.Header{"Authorization": {"Bearer abc"}}, "/crm/rest/v1/contacts", "keymanagement.service.invalid_access_token"},
		{"unknown key", http.Header{"X-Keap-Api-Key": {"KeapAK-nope"}}, "/crm/rest/v1/contacts", "oauth.v2.InvalidApiKey"},
	}
	raw := newClient(t, srv, true) // one case is off-spec on purpose
	for _, tc := range cases {
		cc := *raw
		cc.header = tc.header
		var body struct {
			Fault struct {
				Detail struct{ Errorcode string } `json:"detail"`
			} `json:"fault"`
		}
		resp, _ := cc.do("GET", tc.path, nil)
		cc.json("GET", tc.path, nil, 401, &body)
		if got := body.Fault.Detail.Errorcode; got != tc.code {
			t.Errorf("%s: errorcode %q, want %q", tc.name, got, tc.code)
		}
		if resp.Header.Get("x-keap-tenant-id") == "" {
			t.Errorf("%s: no tenant headers on 401", tc.name)
		}
	}
	// A personal key also works as a bearer token.
	c.withBearer(srv.Credentials().PersonalKey).json("GET", "/crm/rest/v1/contacts", nil, 200, nil)
	// Revocation through the test surface kills issued tokens at once.
	tok := login(t, c)
	api := c.withBearer(tok["access_token"].(string))
	api.json("GET", "/crm/rest/v1/contacts", nil, 200, nil)
	c.json("POST", "/_sandbox/tokens/revoke", map[string]string{"token": tok["access_token"].(string)}, 200, nil)
	api.json("GET", "/crm/rest/v1/contacts", nil, 401, nil)
	if resp, _ := refresh(c, tok["refresh_token"].(string)); resp.StatusCode != 200 {
		t.Fatalf("revoking one access token must leave the refresh token: %d", resp.StatusCode)
	}
	if n := srv.RevokeTokens(""); n == 0 {
		t.Fatal("RevokeTokens revoked nothing")
	}
}

func TestIssueTokensAndOptions(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1})
	c := newClient(t, srv, false)
	tok := srv.IssueTokens()
	c.withBearer(tok.AccessToken).json("GET", "/crm/rest/v1/contacts/1", nil, 200, nil)
	if resp, _ := refresh(c, tok.RefreshToken); resp.StatusCode != 200 {
		t.Fatalf("refresh of issued token: %d", resp.StatusCode)
	}
	for _, o := range []Options{{Addr: "0.0.0.0:0"}, {Addr: "10.1.2.3:80"}, {Contacts: -1}, {HookDelay: -time.Second}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
