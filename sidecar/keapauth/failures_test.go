package keapauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// keeperWith is a keeper on e's database and sandbox with cfg's changes applied.
func (e *env) keeperWith(t *testing.T, pool *pgxpool.Pool, change func(*keapauth.Config)) *keapauth.Keeper {
	t.Helper()
	kr, err := keapauth.ParseKeyring(e.keys)
	if err != nil {
		t.Fatal(err)
	}
	c := e.sb.Credentials()
	cfg := keapauth.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		AuthURL: e.sb.URL() + "/app/oauth/authorize", TokenURL: e.sb.URL() + "/token", Clock: e.clock, Log: testlog.New(t)}
	if change != nil {
		change(&cfg)
	}
	k, err := keapauth.New(cfg, pool, kr)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// deadPool is a pool on a port nothing listens on: a database that is down.
func deadPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?connect_timeout=10", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Keap refusing the client id/secret is a configuration problem, not the account's: the refresh
// fails with ErrBadClient and the account is not marked for re-authorization. A token URL that
// is not Keap's says what answered; one nobody answers says it could not reach it.
func TestRefreshFailuresThatAreNotTheAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	pool := e.pool(t)
	account := login(t, e, e.keeper(t, e.keys))
	e.clock.Advance(22 * time.Hour) // due
	closed := httptestClosedURL(t)
	for _, tc := range []struct {
		name   string
		change func(*keapauth.Config)
		is     error
		says   string
	}{
		{"wrong client secret", func(c *keapauth.Config) { c.ClientSecret = "wrong" }, keapauth.ErrBadClient, "Unable to authenticate"},
		{"token URL of something else", func(c *keapauth.Config) { c.TokenURL = e.sb.URL() + "/not-the-token-endpoint" }, nil,
			"Keap token endpoint answered 404"},
		{"token URL nobody answers", func(c *keapauth.Config) { c.TokenURL = closed }, nil, "connect: connection refused"},
	} {
		_, err := e.keeperWith(t, pool, tc.change).Token(context.Background(), account)
		if err == nil || tc.is != nil && !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) ||
			!strings.Contains(err.Error(), "refresh token of account "+account) || errors.Is(err, keapauth.ErrNeedsReauth) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// The scheduled refresh reports the same and counts nothing refreshed.
	bad := e.keeperWith(t, pool, func(c *keapauth.Config) { c.ClientSecret = "wrong" })
	if n, err := bad.RefreshDue(context.Background()); n != 0 || !errors.Is(err, keapauth.ErrBadClient) {
		t.Errorf("RefreshDue with a refused client: %d, %v", n, err)
	}
	var needs bool
	if err := pool.QueryRow(context.Background(), `select needs_reauth from keapsync.accounts where id = $1`, account).Scan(&needs); err != nil {
		t.Fatal(err)
	}
	if needs {
		t.Error("a refused client marked the account for re-authorization")
	}
	if _, err := e.keeper(t, e.keys).Token(context.Background(), account); err != nil {
		t.Errorf("the right configuration after the failures: %v", err)
	}
}

// httptestClosedURL is a token URL where nothing listens: port 1, which no test binds (a port
// just closed could be bound by the next test server, which the kernel may give it).
func httptestClosedURL(t *testing.T) string {
	t.Helper()
	return "http://127.0.0.1:1/token"
}

// With the database down, every operation says what it was doing; the connect flow's pages
// answer 500 without a stack of details.
func TestKeeperWithTheDatabaseDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeperWith(t, deadPool(t), nil)
	ctx := context.Background()
	const account = "6f1c1d36-4d55-4d0a-9a53-6f3b8a39a1f1"
	if err := k.Revoke(ctx, account); err == nil || !strings.HasPrefix(err.Error(), "revoke tokens of account "+account+": ") {
		t.Errorf("Revoke: %v", err)
	}
	if _, err := k.RefreshDue(ctx); err == nil || !strings.HasPrefix(err.Error(), "find accounts due for refresh: ") {
		t.Errorf("RefreshDue: %v", err)
	}
	if _, err := k.Token(ctx, account); err == nil || !strings.HasPrefix(err.Error(), "read token: ") {
		t.Errorf("Token: %v", err)
	}
	if _, err := k.Refresh(ctx, account, ""); err == nil || !strings.HasPrefix(err.Error(), "refresh token: ") {
		t.Errorf("Refresh: %v", err)
	}
	if _, _, err := keapauth.NewConnectLink(ctx, deadPool(t), "https://sync.example.com", 0); err == nil ||
		!strings.HasPrefix(err.Error(), "store connect link: ") {
		t.Errorf("NewConnectLink: %v", err)
	}
	srv := connectServer(t, k)
	token := keapauth.NewState() // well formed, so it reaches the database
	for path, says := range map[string]string{
		"/oauth/start?link=" + token:     "could not start the Keap connection",
		"/oauth/callback?state=" + token: "could not check the Keap connection",
	} {
		if status, body := get(t, http.DefaultClient, srv.URL+path); status != 500 || !strings.Contains(body, says) {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
}

// The scheduled refresh keeps going when a round fails, and says so.
func TestScheduledRefreshWarnsAndRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	logs := &testlog.Buffer{}
	k := e.keeperWith(t, deadPool(t), func(c *keapauth.Config) {
		c.CheckEvery = time.Millisecond
		c.Log = slogTo(logs)
	})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); strings.Count(logs.String(), "token refresh failed; will retry") < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no two warnings of failed rounds:\n%s", logs.String())
		}
	}
	k.Stop()
}

// Login's ways to end without an account, each saying why: the callback address is taken, no
// callback comes, the person gives up, the authorize URL cannot be followed. A stray callback
// with another state is refused and the login keeps waiting for the real one.
func TestLoginEndsWithoutAnAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false) // nobody approves unless the test does
	k := e.keeperWith(t, e.pool(t), nil)
	ctx := context.Background()

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, _, err := k.Login(ctx, keapauth.LoginOptions{Listen: taken.Addr().String()}); err == nil ||
		!strings.Contains(err.Error(), "listen for the OAuth callback on "+taken.Addr().String()) {
		t.Errorf("a taken address: %v", err)
	}

	if _, _, err := k.Login(ctx, keapauth.LoginOptions{Timeout: time.Millisecond}); err == nil ||
		err.Error() != "no OAuth callback within 1ms" {
		t.Errorf("no callback: %v", err)
	}

	stray := make(chan int, 1)
	cancelled, cancel := context.WithCancel(ctx)
	_, _, err = k.Login(cancelled, keapauth.LoginOptions{OnURL: func(authURL string) {
		u, _ := url.Parse(authURL)
		callback := u.Query().Get("redirect_uri") + "?state=forged&code=x"
		go func() {
			defer cancel() // the person gives up after the stray request
			resp, err := http.Get(callback)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			stray <- resp.StatusCode
		}()
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("given up: %v", err)
	}
	if status := <-stray; status != http.StatusBadRequest {
		t.Errorf("a callback with another state: %d, want 400", status)
	}

	unreachable := e.keeperWith(t, e.pool(t), func(c *keapauth.Config) { c.AuthURL = httptestClosedURL(t) })
	if _, _, err := unreachable.Login(ctx, keapauth.LoginOptions{Follow: true}); err == nil ||
		!strings.HasPrefix(err.Error(), "follow the authorize URL: ") {
		t.Errorf("an authorize URL that cannot be followed: %v", err)
	}
	if n := e.count(t, `select count(*) from keapsync.accounts`); n != 0 {
		t.Errorf("%d accounts after logins that failed", n)
	}
}

// Login by pasting the redirect: what is pasted is checked before anything is exchanged, and
// each refusal says what was wrong with it.
func TestLoginByPasteRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	k := e.keeperWith(t, e.pool(t), nil)
	ctx := context.Background()
	const redirect = "https://keapsync.example.com/oauth/callback"
	if _, _, err := k.Login(ctx, keapauth.LoginOptions{RedirectURI: redirect}); err == nil || !strings.Contains(err.Error(), "pasted on stdin") {
		t.Errorf("no paste reader: %v", err)
	}
	for _, tc := range []struct {
		name  string
		paste func(state string) string // what the person types, newline included
		says  string
	}{
		{"an empty line", func(string) string { return "\n" }, "nothing was pasted"},
		{"nothing before the end", func(string) string { return "" }, "read the pasted redirect: EOF"},
		{"a broken address", func(string) string { return redirect + "?state=%zz\n" }, "read the pasted address"},
		{"a refusal", func(s string) string {
			return redirect + "?error=access_denied&error_description=denied+by+you&state=" + s
		},
			"Keap authorization access_denied: denied by you"},
		{"an address without a code", func(s string) string { return redirect + "?state=" + s + "#frag\n" }, "has no code"},
		{"a code Keap does not know", func(string) string { return "not-a-code" }, "exchange authorization code: Keap refused the authorization code"},
	} {
		pr, pw := io.Pipe()
		_, _, err := k.Login(ctx, keapauth.LoginOptions{RedirectURI: redirect, Paste: pr, OnURL: func(authURL string) {
			u, _ := url.Parse(authURL)
			go func() {
				io.WriteString(pw, tc.paste(u.Query().Get("state")))
				pw.Close()
			}()
		}})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.says)
		}
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	if _, _, err := k.Login(ctx, keapauth.LoginOptions{RedirectURI: redirect, Paste: pr, Timeout: time.Millisecond}); err == nil ||
		err.Error() != "nothing pasted within 1ms" {
		t.Errorf("nothing pasted: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := k.Login(cancelled, keapauth.LoginOptions{RedirectURI: redirect, Paste: pr}); !errors.Is(err, context.Canceled) {
		t.Errorf("given up: %v", err)
	}
}

// Keap's refusal comes back through the server's callback too: the page says so and no account
// is made. Without settings, the keeper talks to Keap's real endpoints.
func TestConnectHandlerShowsKeapsRefusal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	k := e.keeperWith(t, e.pool(t), nil)
	srv := connectServer(t, k)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(connectLink(t, e, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authorize, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || authorize.Query().Get("state") == "" {
		t.Fatalf("start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	status, body := get(t, http.DefaultClient, srv.URL+"/oauth/callback?error=access_denied&error_description=no&state="+authorize.Query().Get("state"))
	if status != 400 || !strings.Contains(body, "Keap authorization access_denied: no") {
		t.Errorf("a refused approval: %d %s", status, body)
	}
	if n := e.count(t, `select count(*) from keapsync.accounts`); n != 0 {
		t.Errorf("%d accounts after a refusal", n)
	}

	kr, _ := keapauth.ParseKeyring(e.keys)
	if _, err := keapauth.New(keapauth.Config{ClientSecret: "s"}, e.pool(t), kr); err == nil || !strings.Contains(err.Error(), "KEAP_CLIENT_ID") {
		t.Errorf("New without a client id: %v", err)
	}
	real, err := keapauth.New(keapauth.Config{ClientID: "c", ClientSecret: "s"}, e.pool(t), kr)
	if err != nil {
		t.Fatal(err)
	}
	if u := real.AuthCodeURL("st", "https://x"); !strings.HasPrefix(u, keapauth.DefaultAuthURL+"?") {
		t.Errorf("default authorize URL: %s", u)
	}
	if n, err := real.RefreshDue(context.Background()); n != 0 || err != nil { // by the wall clock: nothing is due
		t.Errorf("RefreshDue on no accounts: %d, %v", n, err)
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
