package keapauth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	sb    *sandbox.Server
	clock *sandbox.ManualClock
	url   string // database
	keys  string
	logs  *bytes.Buffer
}

func newEnv(t *testing.T, autoApprove bool) *env {
	t.Helper()
	clock := sandbox.NewManualClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	sb, err := sandbox.New(sandbox.Options{Clock: clock, Seed: 1, Contacts: 3, AutoApprove: autoApprove, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	key := keapauth.NewKey()
	return &env{sb: sb, clock: clock, url: pgtest.URL(t), keys: key, logs: &bytes.Buffer{}}
}

func (e *env) keeper(t *testing.T, keys string) *keapauth.Keeper {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	kr, err := keapauth.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	c := e.sb.Credentials()
	k, err := keapauth.New(keapauth.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		AuthURL: e.sb.URL() + "/app/oauth/authorize", TokenURL: e.sb.URL() + "/token",
		Clock: e.clock, Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, pool, kr)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func login(t *testing.T, e *env, k *keapauth.Keeper) string {
	t.Helper()
	var out bytes.Buffer
	account, tenant, err := k.Login(context.Background(), keapauth.LoginOptions{Follow: true, Out: &out, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	if tenant != e.sb.Credentials().Tenant {
		t.Errorf("tenant = %q, want %q", tenant, e.sb.Credentials().Tenant)
	}
	return account
}

// apiWorks calls the sandbox's REST API with the account's current token.
func apiWorks(t *testing.T, e *env, k *keapauth.Keeper, account string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.sb.URL()+"/crm/rest/v1/contacts?limit=1", nil)
	if err := k.For(account).Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("API call with the kept token: %d", resp.StatusCode)
	}
}

func TestLoginStoresOnlyCiphertext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	account := login(t, e, k)
	tok, err := k.Token(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	apiWorks(t, e, k, account)

	// No secret in any table, in plaintext.
	pool, _ := pgxpool.New(context.Background(), e.url)
	defer pool.Close()
	var everything string
	err = pool.QueryRow(context.Background(), `select string_agg(x, ' ') from (
	    select row_to_json(t)::text x from keapsync.oauth_tokens t
	    union all select row_to_json(a)::text from keapsync.accounts a
	    union all select row_to_json(h)::text from keapsync.change_history h) s`).Scan(&everything)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"access": tok.AccessToken, "refresh": tok.RefreshToken, "client secret": e.sb.Credentials().ClientSecret} {
		if strings.Contains(everything, secret) {
			t.Errorf("the %s token is in the database in plaintext", name)
		}
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the %s token is in the logs", name)
		}
	}
	if s := tok.String(); strings.Contains(s, tok.AccessToken) || strings.Contains(s, tok.RefreshToken) {
		t.Errorf("Token.String shows a secret: %s", s)
	}
}

func TestTwoKeepersThousandRefreshCycles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	a, b := e.keeper(t, e.keys), e.keeper(t, e.keys)
	account := login(t, e, a)
	ctx := context.Background()
	e.sb.ClearRequests()
	const cycles = 1000
	for i := 0; i < cycles; i++ {
		e.clock.Advance(22 * time.Hour) // inside the 3h refresh-ahead window of a 24h token
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, k := range []*keapauth.Keeper{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = k.Token(ctx, account)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	refreshes := 0
	for _, r := range e.sb.Requests() {
		if r.Path == "/token" {
			refreshes++
			if r.Status != 200 {
				t.Errorf("a refresh failed with %d: no invalid_grant allowed", r.Status)
			}
		}
	}
	if refreshes != cycles {
		t.Errorf("%d refreshes in %d cycles: want exactly one per cycle (single-flight)", refreshes, cycles)
	}
	apiWorks(t, e, b, account)
}

func TestQuietAccountIsKeptAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	account := login(t, e, k)
	ctx := context.Background()
	// 44 days without a single API call; the scheduler runs daily.
	for day := 0; day < 44; day++ {
		e.clock.Advance(24 * time.Hour)
		if _, err := k.RefreshDue(ctx); err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
	}
	e.clock.Advance(2 * 24 * time.Hour) // past the original refresh token's 45 days
	if _, err := k.Refresh(ctx, account, ""); err != nil {
		t.Fatalf("refresh after 46 quiet days: %v", err)
	}
}

func TestRevokedTokenNeedsReauth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	account := login(t, e, k)
	ctx := context.Background()
	tok, _ := k.Token(ctx, account)
	if n := e.sb.RevokeTokens(tok.RefreshToken); n != 1 {
		t.Fatalf("sandbox revoked %d tokens", n)
	}
	e.clock.Advance(22 * time.Hour)
	_, err := k.Token(ctx, account)
	if !errors.Is(err, keapauth.ErrNeedsReauth) {
		t.Fatalf("err = %v, want ErrNeedsReauth", err)
	}
	pool, _ := pgxpool.New(ctx, e.url)
	defer pool.Close()
	var needs bool
	var lastErr string
	if err := pool.QueryRow(ctx, `select a.needs_reauth, t.last_error from keapsync.accounts a
	    join keapsync.oauth_tokens t on t.account_id = a.id where a.id = $1`, account).Scan(&needs, &lastErr); err != nil {
		t.Fatal(err)
	}
	if !needs || !strings.Contains(lastErr, "Invalid refresh token") {
		t.Errorf("needs_reauth=%v last_error=%q, want true and Keap's message", needs, lastErr)
	}
	// Logging in again reconnects the same account.
	if again := login(t, e, k); again != account {
		t.Errorf("re-login made account %s, want %s", again, account)
	}
}

func TestTamperedWrongAndRotatedKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	account := login(t, e, k)
	ctx := context.Background()
	pool, _ := pgxpool.New(ctx, e.url)
	defer pool.Close()

	other := keapauth.NewKey()
	if _, err := e.keeper(t, other).Token(ctx, account); !errors.Is(err, keapauth.ErrUnknownKey) {
		t.Errorf("wrong key: err = %v, want ErrUnknownKey", err)
	}

	// Rotation: the new key first, the old after it; reading re-seals under the new key.
	rotated := e.keeper(t, other+","+e.keys)
	if _, err := rotated.Token(ctx, account); err != nil {
		t.Fatalf("rotated keyring: %v", err)
	}
	kr, _ := keapauth.ParseKeyring(other)
	var keyID string
	_ = pool.QueryRow(ctx, `select key_id from keapsync.oauth_tokens where account_id = $1`, account).Scan(&keyID)
	if keyID != kr.CurrentID() {
		t.Errorf("after rotation the token is sealed with %s, want the new key %s", keyID, kr.CurrentID())
	}

	if _, err := pool.Exec(ctx, `update keapsync.oauth_tokens set ciphertext = overlay(ciphertext placing '\xff' from 20 for 1)`); err != nil {
		t.Fatal(err)
	}
	_, err := e.keeper(t, other).Token(ctx, account)
	if err == nil || !strings.Contains(err.Error(), "failed authentication") {
		t.Errorf("tampered ciphertext: err = %v", err)
	}
	if _, err := pool.Exec(ctx, `update keapsync.oauth_tokens set ciphertext = '\x00'`); err != nil {
		t.Fatal(err)
	}
	if _, err = e.keeper(t, other).Token(ctx, account); err == nil || !strings.Contains(err.Error(), "open token of account "+account+": sealed token is truncated") {
		t.Errorf("truncated ciphertext: err = %v", err)
	}
}

func TestDenyOnConsentPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	k := e.keeper(t, e.keys)
	out := &testlog.Buffer{}
	res := make(chan error, 1)
	go func() {
		_, _, err := k.Login(context.Background(), keapauth.LoginOptions{Out: out, Timeout: 20 * time.Second})
		res <- err
	}()
	var authURL string
	for deadline := time.Now().Add(10 * time.Second); authURL == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		authURL = regexp.MustCompile(`http://\S+/app/oauth/authorize\S+`).FindString(out.String())
	}
	u, err := url.Parse(authURL)
	if err != nil || authURL == "" {
		t.Fatalf("no authorize URL printed: %q", out.String())
	}
	form := u.Query()
	form.Set("decision", "deny")
	resp, err := http.PostForm(e.sb.URL()+"/app/oauth/authorize", form) // a person clicks Deny
	if err != nil {
		t.Fatal(err) // the callback server closed before its page was sent
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(page), "keapsync is not connected") || !strings.Contains(string(page), "access_denied") {
		t.Errorf("the person's browser shows %q (%v), want that keapsync is not connected and why", page, err)
	}
	if err := <-res; err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("login after a deny: err = %v, want access_denied", err)
	}
}

func TestConnectHandlerChecksStateOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	srv := connectServer(t, k)
	var callback string
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/oauth/callback") {
			callback = r.URL.String()
		}
		return nil
	}}
	status, body := get(t, client, connectLink(t, e, srv.URL))
	if status != 200 || !strings.Contains(body, "connected to "+e.sb.Credentials().Tenant) {
		t.Fatalf("connect flow: %d %s", status, body)
	}
	status, body = get(t, http.DefaultClient, callback) // the same callback, replayed
	if status != 400 || !strings.Contains(body, "unknown or expired state") {
		t.Errorf("replayed callback: %d %s", status, body)
	}
}

// connectServer serves k's connect flow at its own URL, as serve does.
func connectServer(t *testing.T, k *keapauth.Keeper) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.ConnectHandler(srv.URL).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// connectLink is what `keapsync auth link` prints.
func connectLink(t *testing.T, e *env, publicURL string) string {
	t.Helper()
	link, _, err := keapauth.NewConnectLink(context.Background(), e.pool(t), publicURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

func (e *env) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func (e *env) count(t *testing.T, sql string) int {
	t.Helper()
	var n int
	if err := e.pool(t).QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func get(t *testing.T, client *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(bytes.Buffer)
	body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String()
}

// Issue #12: /oauth/start was open to anyone, and every anonymous GET left a state row behind.
func TestConnectNeedsAOneTimeLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	srv := connectServer(t, k)
	unknown := keapauth.NewState()
	for i := 0; i < 200; i++ {
		q := []string{"", "?link=", "?link=x", "?link=" + unknown, "?link=%00", "?link=%ff" + unknown[2:]}[i%6]
		if status, body := get(t, http.DefaultClient, srv.URL+"/oauth/start"+q); status != 401 && status != 403 {
			t.Fatalf("anonymous GET /oauth/start%s: %d %s", q, status, body)
		}
	}
	for _, q := range []string{"", "?state=%00", "?state=%ff", "?state=" + unknown, "?state=" + unknown + "&code=x"} {
		if status, body := get(t, http.DefaultClient, srv.URL+"/oauth/callback"+q); status != 400 || !strings.Contains(body, "unknown or expired state") {
			t.Errorf("GET /oauth/callback%s: %d %s", q, status, body)
		}
	}
	if n := e.count(t, `select count(*) from keapsync.oauth_states`); n != 0 {
		t.Fatalf("anonymous requests left %d oauth_states rows", n)
	}
	if n := e.count(t, `select count(*) from keapsync.accounts`); n != 0 {
		t.Fatalf("anonymous requests made %d accounts", n)
	}
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("bad input logged as an error:\n%s", e.logs.String())
	}

	// Expired leftovers go when the next flow starts.
	if _, err := e.pool(t).Exec(context.Background(), `insert into keapsync.oauth_states (state, redirect_uri, expires_at)
	    select 'old' || g, 'https://x', now() - interval '1 second' from generate_series(1, 50) g;
	  insert into keapsync.oauth_links (link_hash, expires_at) values (sha256('old'), now() - interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	link := connectLink(t, e, srv.URL)
	if status, body := get(t, http.DefaultClient, link); status != 200 || !strings.Contains(body, "connected to "+e.sb.Credentials().Tenant) {
		t.Fatalf("connect with a link: %d %s", status, body)
	}
	if n := e.count(t, `select (select count(*) from keapsync.oauth_states) + (select count(*) from keapsync.oauth_links)`); n != 0 {
		t.Errorf("%d expired or used states and links remain", n)
	}
	if n := e.count(t, `select count(*) from keapsync.accounts`); n != 1 {
		t.Errorf("%d accounts after connecting with a link, want 1", n)
	}
	if status, _ := get(t, http.DefaultClient, link); status != 403 {
		t.Errorf("a used link: %d, want 403", status)
	}
}

func TestAllowedTenantsRefuseOthersBeforeAnyAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	kr, _ := keapauth.ParseKeyring(e.keys)
	c := e.sb.Credentials()
	cfg := keapauth.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		AuthURL: e.sb.URL() + "/app/oauth/authorize", TokenURL: e.sb.URL() + "/token", Clock: e.clock,
		AllowedTenants: []string{"someone-else.infusionsoft.com"}}
	refusing, err := keapauth.New(cfg, e.pool(t), kr)
	if err != nil {
		t.Fatal(err)
	}
	srv := connectServer(t, refusing)
	if status, body := get(t, http.DefaultClient, connectLink(t, e, srv.URL)); status != 400 || !strings.Contains(body, "KEAPSYNC_ALLOWED_TENANTS") {
		t.Fatalf("a tenant outside the allow-list: %d %s", status, body)
	}
	if n := e.count(t, `select (select count(*) from keapsync.accounts) + (select count(*) from keapsync.oauth_tokens)`); n != 0 {
		t.Fatalf("a refused tenant left %d account or token rows", n)
	}
	cfg.AllowedTenants = []string{" " + strings.ToUpper(c.Tenant) + " "}
	allowing, err := keapauth.New(cfg, e.pool(t), kr)
	if err != nil {
		t.Fatal(err)
	}
	srv = connectServer(t, allowing)
	if status, body := get(t, http.DefaultClient, connectLink(t, e, srv.URL)); status != 200 || !strings.Contains(body, "connected to "+c.Tenant) {
		t.Fatalf("an allowed tenant: %d %s", status, body)
	}
}

// Token.LogValue must be slog's (returning slog.Value) or slog prints the struct, secrets included.
func TestLoggedTokenShowsNoSecret(t *testing.T) {
	t.Parallel()
	tok := keapauth.Token{AccessToken: "access-SECRET-1", RefreshToken: "refresh-SECRET-2", Scope: "full|ab1.infusionsoft.com"}
	var _ slog.LogValuer = tok
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("token", "token", tok, "ptr", &tok, "group", slog.GroupValue(slog.Any("t", tok)))
	}
	if strings.Contains(buf.String(), "SECRET") || !strings.Contains(buf.String(), "ab1.infusionsoft.com") {
		t.Fatalf("logged token:\n%s", buf.String())
	}
}

// Keap wants HTTPS redirect URIs, which `auth login` cannot listen on: the person pastes the
// address the browser was sent to (or its code), and login connects with it. A pasted address
// from another login (other state) is refused.
func TestLoginByPastingTheRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	const redirect = "https://keapsync.example.com/oauth/callback"
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// approve stands in for the person's browser: it returns where Keap sent it.
	approve := func(authURL string) string {
		resp, err := noFollow.Get(authURL)
		if err != nil {
			t.Error(err)
			return ""
		}
		resp.Body.Close()
		return resp.Header.Get("Location")
	}
	for _, tc := range []struct {
		name  string
		paste func(location string) string
		err   string
	}{
		{"whole address", func(loc string) string { return loc }, ""},
		{"code only", func(loc string) string { u, _ := url.Parse(loc); return u.Query().Get("code") }, ""},
		{"address of another login", func(loc string) string {
			u, _ := url.Parse(loc)
			q := u.Query()
			q.Set("state", "someone-else")
			u.RawQuery = q.Encode()
			return u.String()
		}, "state does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			var out bytes.Buffer
			account, tenant, err := k.Login(context.Background(), keapauth.LoginOptions{
				Out: &out, Timeout: 20 * time.Second, RedirectURI: redirect, Paste: pr,
				OnURL: func(authURL string) {
					loc := approve(authURL)
					if !strings.HasPrefix(loc, redirect+"?") {
						t.Errorf("Keap redirected to %q", loc)
					}
					go io.WriteString(pw, tc.paste(loc)+"\n")
				},
			})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || tenant != e.sb.Credentials().Tenant {
				t.Fatalf("login by paste: %v %q\n%s", err, tenant, out.String())
			}
			if !strings.Contains(out.String(), "Paste the whole address") {
				t.Errorf("no paste prompt: %s", out.String())
			}
			apiWorks(t, e, k, account)
		})
	}
}
