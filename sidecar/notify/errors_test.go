package notify_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/notify"
)

// A webhook that cannot be reached: the error says so without the URL (Slack's carries a
// token), and the condition is posted once the webhook answers; so is a refused recovery. An unreadable database is an
// error of the check; Run with an ended context returns cleanly.
func TestNotifierErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	if _, err := db.Exec(ctx, `with a as (insert into keapsync.accounts (name, keap_tenant, needs_reauth) values ('E', 'errors', true) returning id)
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext) select id, 'k', '\x00' from a`); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1 (a port just closed could be bound by the next test server).
	closed := "http://127.0.0.1:1/services/T000/B000/secret-token"
	n := &notify.Notifier{URL: closed, DB: db, Log: testlog.New(t)}
	err := n.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "notify: post to the webhook") || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("unreachable webhook: %v", err)
	}
	n.URL = "not a url\x7f"
	if err := n.Check(ctx); err == nil || !strings.HasPrefix(err.Error(), "notify: ") {
		t.Errorf("a URL no request can be made for: %v", err)
	}
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	n.URL = srv.URL
	if err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.take(); len(got) != 1 || !strings.Contains(got[0], "account errors needs re-authorization") {
		t.Errorf("after the failed posts: %q", got)
	}
	// The recovery refused: put back, and posted when the webhook answers again.
	if _, err := db.Exec(ctx, `update keapsync.accounts set needs_reauth = false where keap_tenant = 'errors'`); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.down = true
	rcv.mu.Unlock()
	if err := n.Check(ctx); err == nil || !strings.Contains(err.Error(), "the webhook answered 503") {
		t.Errorf("a refused recovery: %v", err)
	}
	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	if err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.take(); len(got) != 1 || !strings.Contains(got[0], "recovered: keapsync: account errors needs re-authorization") {
		t.Errorf("the recovery after a refused post: %q", got)
	}

	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := n.Run(ended); err != nil {
		t.Errorf("Run with an ended context: %v", err)
	}
	db.Close()
	if err := n.Check(ctx); err == nil {
		t.Error("a closed pool: no error")
	}
}
