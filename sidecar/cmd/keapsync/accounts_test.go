package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// Commands over every account carry on past a failing one, say what happened to each, and exit
// non-zero when any failed. "A broken" sorts first and its token cannot be opened; "B never
// connected" has no token and is skipped with its state; the sandbox's account still syncs.
func TestAllAccountsCommandsCarryOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb, err := sandbox.New(sandbox.Options{Seed: 4, Contacts: 5, AutoApprove: true, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	url := pgtest.URL(t)
	key := keapauth.NewKey()
	creds := sb.Credentials()
	secrets := secretFiles(t, creds.ClientSecret, key)
	common := append([]string{"--database-url", url, "--api-url", sb.URL() + "/crm/rest", "--client-id", creds.ClientID,
		"--auth-url", sb.URL() + "/app/oauth/authorize", "--token-url", sb.URL() + "/token"}, secrets...)
	login := append([]string{"auth", "login", "--follow", "--database-url", url, "--client-id", creds.ClientID,
		"--auth-url", sb.URL() + "/app/oauth/authorize", "--token-url", sb.URL() + "/token"}, secrets...)
	if out, err := runApp(t, login...); err != nil {
		t.Fatalf("auth login: %v\n%s", err, out)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `
with a as (insert into keapsync.accounts (name, keap_tenant) values ('A broken', 'aa.example') returning id)
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext, access_expires_at, refresh_expires_at)
select id, 'gone', '\x00', now() + interval '1 day', now() + interval '40 days' from a;
insert into keapsync.accounts (name, keap_tenant) values ('B never connected', 'bb.example');`); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"backfill", "--objects", "tags"}, {"hooks", "list"}} {
		out, err := runApp(t, append(cmd, common...)...)
		what := strings.Join(cmd[:min(2, len(cmd))], " ")
		if cmd[0] == "backfill" {
			what = "backfill"
		}
		if err == nil || !strings.Contains(err.Error(), "failed for 1 of 3 accounts") {
			t.Errorf("%s: err = %v, want one of three failed\n%s", what, err, out)
		}
		for _, want := range []string{what + " aa.example: failed: ", what + " bb.example: skipped: not connected",
			what + " " + creds.Tenant + ": done"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s does not say %q:\n%s", what, want, out)
			}
		}
	}
	// auth refresh over every token likewise.
	out, err := runApp(t, append([]string{"auth", "refresh"}, login[3:]...)...)
	if err == nil || !strings.Contains(out, "refreshed ") || !strings.Contains(out, ": failed: ") ||
		!strings.Contains(err.Error(), "failed for 1 of 2 accounts") {
		t.Errorf("auth refresh: %v\n%s", err, out)
	}
	var tags int
	if err := pool.QueryRow(ctx, `select count(*) from keap.tags t join keapsync.accounts a on a.id = t.account_id
	    where a.keap_tenant = $1`, creds.Tenant).Scan(&tags); err != nil || tags == 0 {
		t.Errorf("the connected account's tags: %d, %v", tags, err)
	}
	// Named, an account that cannot sync is a failure; the others are not touched.
	if out, err := runApp(t, append([]string{"backfill", "--objects", "tags", "--account", "bb.example"}, common...)...); err == nil ||
		!strings.Contains(out, "skipped: not connected") {
		t.Errorf("backfill --account bb.example: %v\n%s", err, out)
	}
}

// A backfill that fails says so where it is shown: its row keeps the error (not "running"), and
// the account's state is failing, with the reason and since when.
func TestFailedBackfillSaysSo(t *testing.T) {
	t.Parallel()
	notKeap := httptest.NewServer(http.NotFoundHandler())
	defer notKeap.Close()
	url := pgtest.URL(t)
	if out, err := runApp(t, "backfill", "--objects", "tags", "--database-url", url, "--api-url", notKeap.URL, "--api-key-file", secretFile(t, "k")); err == nil {
		t.Fatalf("backfill against something that is not Keap succeeded:\n%s", out)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var cursorErr *string
	if err := pool.QueryRow(context.Background(), `select last_error from keapsync.sync_cursors where kind = 'backfill'`).Scan(&cursorErr); err != nil ||
		cursorErr == nil || !strings.Contains(*cursorErr, "404") {
		t.Errorf("the backfill row's error: %v, %v", cursorErr, err)
	}
	states, err := accountstate.List(context.Background(), pool)
	if err != nil || len(states) != 1 || states[0].State != accountstate.Failing || states[0].Since == nil ||
		!strings.HasPrefix(states[0].Reason, "backfill of tags: ") {
		t.Errorf("state after a failed backfill: %+v (%v)", states, err)
	}
}
