package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// Issue #12, High 3: anyone who reached serve could connect a Keap account through
// /oauth/start, and every anonymous GET left an oauth_states row. Now only an operator's
// one-time link (keapsync auth link) starts a connection, and KEAPSYNC_ALLOWED_TENANTS refuses
// other tenants before any account row exists.
func TestServeConnectNeedsAOneTimeLink(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sandbox.New(sandbox.Options{Seed: 4, Contacts: 2, AutoApprove: true, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	key := keapauth.NewKey()
	creds := sb.Credentials()
	dbURL := pgtest.URL(t)
	oauth := append([]string{"--database-url", dbURL, "--client-id", creds.ClientID,
		"--auth-url", sb.URL() + "/app/oauth/authorize", "--token-url", sb.URL() + "/token"}, secretFiles(t, creds.ClientSecret, key)...)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// A tenant outside the allow-list is refused, by auth login as by serve, with no account made.
	out, err := runApp(t, append([]string{"auth", "login", "--follow", "--allowed-tenants", "someone-else.infusionsoft.com"}, oauth...)...)
	if err == nil || !strings.Contains(err.Error(), "KEAPSYNC_ALLOWED_TENANTS") {
		t.Fatalf("login of a tenant outside the allow-list: %v\n%s", err, out)
	}
	if n := count(`select count(*) from keapsync.accounts`); n != 0 {
		t.Fatalf("a refused tenant made %d accounts", n)
	}

	port, _ := pgcluster.FreePort()
	listen := "127.0.0.1:" + strconv.Itoa(port)
	base, stop := startServe(t, ctx, append([]string{"--listen", listen, "--no-push", "--reconcile-every", "0s",
		"--allowed-tenants", "other.infusionsoft.com," + creds.Tenant, "--api-url", sb.URL() + "/crm/rest"}, oauth...))

	// 200 anonymous GETs: all refused, not one state stored.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := 0; i < 200; i++ {
		q := []string{"", "?link=guess", "?link=%00", "?link=" + strings.Repeat("A", 43)}[i%4]
		resp, err := noFollow.Get(base + "/oauth/start" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Fatalf("anonymous GET /oauth/start%s: %d (%s), want 401/403", q, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, q := range []string{"?state=%00", "?state=%ff", "?state=x&code=y"} {
		resp, err := http.Get(base + "/oauth/callback" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET /oauth/callback%s: %d, want 400", q, resp.StatusCode)
		}
	}
	if n := count(`select count(*) from keapsync.oauth_states`); n != 0 {
		t.Fatalf("anonymous GETs left %d oauth_states rows", n)
	}

	// The operator's link connects the account, end to end with the sandbox, once.
	out, err = runApp(t, "auth", "link", "--database-url", dbURL, "--public-url", base)
	link := regexp.MustCompile(`http://\S+/oauth/start\?link=\S+`).FindString(out)
	if err != nil || link == "" {
		t.Fatalf("auth link: %v\n%s", err, out)
	}
	resp, err := http.Get(link) // follows serve -> Keap's consent (auto-approved) -> serve's callback
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "connected to "+creds.Tenant) {
		t.Fatalf("connect with the link: %d %s", resp.StatusCode, body)
	}
	if n := count(`select count(*) from keapsync.accounts a join keapsync.oauth_tokens t on t.account_id = a.id`); n != 1 {
		t.Errorf("%d connected accounts after the link, want 1", n)
	}
	if n := count(`select (select count(*) from keapsync.oauth_states) + (select count(*) from keapsync.oauth_links)`); n != 0 {
		t.Errorf("%d states or links left after the flow", n)
	}
	if resp, err := noFollow.Get(link); err != nil || resp.StatusCode != 403 {
		t.Errorf("the link used again: %v %v, want 403", resp, err)
	}
	cancel()
	stop()
}
