package keapauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

// The keeper refreshes a token Keap answered 401 for (Credentials.Refresh), refreshes due tokens
// in the background between Start and Stop, and Revoke forgets an account's tokens.
func TestRefreshOn401ScheduledRefreshAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	k := e.keeper(t, e.keys)
	account := login(t, e, k)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	expiry := func() time.Time {
		t.Helper()
		var at time.Time
		if err := pool.QueryRow(ctx, `select access_expires_at from keapsync.oauth_tokens where account_id = $1`, account).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}

	before, err := k.Token(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute) // a new token expires later than the old one
	if err := k.For(account).Refresh(ctx); err != nil {
		t.Fatalf("refresh after a 401: %v", err)
	}
	after, err := k.Token(ctx, account)
	if err != nil || after.AccessToken == before.AccessToken {
		t.Fatalf("after a 401's refresh: the same token (%v)", err)
	}
	apiWorks(t, e, k, account)

	// Into the refresh-ahead window: the scheduled refresh renews the token without a call.
	was := expiry()
	e.clock.Advance(22 * time.Hour)
	var part lifecycle.Part = k
	if err := part.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for !expiry().After(was) {
		time.Sleep(20 * time.Millisecond)
	}
	part.Stop()
	apiWorks(t, e, k, account)

	if err := k.Revoke(ctx, account); err != nil {
		t.Fatal(err)
	}
	var tokens int
	var needs bool
	if err := pool.QueryRow(ctx, `select (select count(*) from keapsync.oauth_tokens where account_id = $1), needs_reauth
  from keapsync.accounts where id = $1`, account).Scan(&tokens, &needs); err != nil {
		t.Fatal(err)
	}
	if tokens != 0 || !needs {
		t.Errorf("after Revoke: %d tokens, needs_reauth %v", tokens, needs)
	}
	if _, err := k.Token(ctx, account); err == nil {
		t.Error("a revoked account still has a token")
	}
}
