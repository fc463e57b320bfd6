package notify_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/notify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// receiver is a local Slack-compatible webhook: it keeps every {"text": ...} posted to it, and
// refuses while down.
type receiver struct {
	mu    sync.Mutex
	texts []string
	down  bool
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var msg struct {
		Text string `json:"text"`
	}
	if req.Header.Get("Content-Type") != "application/json" || json.NewDecoder(req.Body).Decode(&msg) != nil || msg.Text == "" {
		http.Error(w, "not slack json", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	r.texts = append(r.texts, msg.Text)
}

// take returns the messages posted since the last take.
func (r *receiver) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.texts
	r.texts = nil
	return out
}

// Each condition that needs a person is posted once when it starts, not again while it holds,
// again when it worsens anew (a newer dead letter), and once more as a recovery when it clears;
// a post the receiver refused is tried again next round; a second serve process posts nothing twice.
func TestNotifiesOncePerStateChangeWithRecovery(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Pool(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	n := &notify.Notifier{URL: srv.URL, DB: db, Log: slog.New(slog.DiscardHandler)}
	other := &notify.Notifier{URL: srv.URL, DB: db, Log: slog.New(slog.DiscardHandler)} // a second serve process
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant) values ('N', 'notify') returning id::text`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(ctx, q, account); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	check := func(who *notify.Notifier) {
		t.Helper()
		if err := who.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, want ...string) {
		t.Helper()
		got := rcv.take()
		if len(got) != len(want) {
			t.Fatalf("%s: posted %q, want %d messages like %q", what, got, len(want), want)
		}
		for i := range want {
			if !strings.Contains(got[i], want[i]) {
				t.Fatalf("%s: posted %q, want %q", what, got[i], want[i])
			}
		}
	}

	exec(`insert into keapsync.oauth_tokens (account_id, key_id, ciphertext) values ($1, 'k', '\x00')`)
	check(n)
	expect("all well")

	exec(`update keapsync.accounts set needs_reauth = true where id = $1`)
	exec(`insert into keapsync.hook_subscriptions (account_id, hook_key, event_key, hook_url, status) values ($1, '1', 'contact.add', 'https://x', 'Inactive')`)
	check(n)
	expect("needs re-auth and hooks Inactive", "account notify needs re-authorization", "1 REST Hook subscription(s) Inactive")
	check(n)
	check(other)
	expect("the same state again, from either process")

	exec(`insert into keapsync.dead_letters (account_id, source, object_type, error) values ($1, 'push', 'contact', 'keap said no')`)
	check(n)
	expect("a dead letter", "1 record(s) parked in the dead letters, newest: keap said no")
	exec(`insert into keapsync.dead_letters (account_id, source, object_type, error) values ($1, 'push', 'contact', 'keap said no again')`)
	check(n)
	expect("a newer dead letter", "2 record(s) parked in the dead letters, newest: keap said no again")

	// A stall: the account can sync again and a delivery waits an hour with nothing processed.
	exec(`update keapsync.accounts set needs_reauth = false where id = $1`)
	exec(`insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, next_attempt_at)
	      values ($1, 'contact.edit', 'contact', '{1}', '{}', now() - interval '1 hour', now() - interval '1 hour')`)
	rcv.mu.Lock()
	rcv.down = true
	rcv.mu.Unlock()
	if err := n.Check(ctx); err == nil {
		t.Fatal("a refused post is not an error")
	}
	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	check(n)
	expect("a stall, and re-auth recovered (after a refused post)", "account notify stalled inbox: 1 hook deliveries waiting", "recovered: keapsync: account notify needs re-authorization")

	exec(`update keapsync.webhook_inbox set processed_at = now() where account_id = $1`)
	exec(`update keapsync.hook_subscriptions set status = 'Verified' where account_id = $1`)
	exec(`update keapsync.dead_letters set status = 'done' where account_id = $1`)
	check(n)
	got := strings.Join(rcv.take(), "\n")
	for _, want := range []string{"recovered: keapsync: account notify stalled inbox", "recovered: keapsync: account notify: 1 REST Hook",
		"recovered: keapsync: account notify: 2 record(s) parked"} {
		if !strings.Contains(got, want) {
			t.Fatalf("recoveries: posted\n%s\nwant %q", got, want)
		}
	}
	check(n)
	expect("all well again")
}
