package notify_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/lifecycle"
	"github.com/keapsync/keapsync/sidecar/notify"
)

// The notifier is a lifecycle part: Start checks at once in the background and posts what needs
// a person, a second Start is refused, Stop ends it cleanly.
func TestNotifierStartsChecksAndStops(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	if _, err := db.Exec(ctx, `with a as (insert into keapsync.accounts (name, keap_tenant, needs_reauth) values ('S', 'started', true) returning id)
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext) select id, 'k', '\x00' from a`); err != nil {
		t.Fatal(err)
	}
	var part lifecycle.Part = &notify.Notifier{URL: srv.URL, DB: db, Every: time.Hour, Log: testlog.New(t)}
	n := part.(*notify.Notifier)
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); !errors.Is(err, lifecycle.ErrStarted) {
		t.Errorf("a second start: %v, want ErrStarted", err)
	}
	var got []string
	for len(got) == 0 {
		time.Sleep(20 * time.Millisecond)
		got = rcv.take()
	}
	if len(got) != 1 || !strings.Contains(got[0], "account started needs re-authorization") {
		t.Errorf("posted %q, want the account's re-authorization", got)
	}
	n.Stop()
	select {
	case <-n.Done():
	default:
		t.Fatal("Stop returned before the checks ended")
	}
	if err := n.Err(); err != nil {
		t.Errorf("a stopped notifier ended with %v", err)
	}
}
