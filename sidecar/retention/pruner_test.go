package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/lifecycle"
	"github.com/keapsync/keapsync/sidecar/retention"
)

// The pruner is a lifecycle part: Start prunes at once in the background, a second Start while
// it runs is refused, Stop ends it cleanly and a stopped pruner starts again.
func TestPrunerStartsPrunesAndStops(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, credential) values ('P', 'api_key') returning id::text`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	old := func() {
		t.Helper()
		if _, err := db.Exec(ctx, `insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, processed_at, next_attempt_at)
values ($1, 'contact.edit', 'contact', '{1}', '{}', now() - interval '60 days', now() - interval '60 days', now() - interval '60 days')`, account); err != nil {
			t.Fatal(err)
		}
	}
	left := func() int {
		var n int
		if err := db.QueryRow(ctx, `select count(*) from keapsync.webhook_inbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var part lifecycle.Part = &retention.Pruner{DB: db, Config: retention.Config{Every: time.Hour, Pause: -1}, Log: testlog.New(t)}
	p := part.(*retention.Pruner)
	for round := range 2 {
		old()
		if err := p.Start(ctx); err != nil {
			t.Fatalf("round %d: start: %v", round, err)
		}
		if err := p.Start(ctx); !errors.Is(err, lifecycle.ErrStarted) {
			t.Errorf("round %d: a second start: %v, want ErrStarted", round, err)
		}
		waitFor(t, func() bool { return left() == 0 })
		p.Stop()
		select {
		case <-p.Done():
		default:
			t.Fatalf("round %d: Stop returned before the rounds ended", round)
		}
		if err := p.Err(); err != nil {
			t.Errorf("round %d: a stopped pruner ended with %v", round, err)
		}
	}
}

// waitFor polls cond until it holds; the test's own deadline bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(20 * time.Millisecond)
	}
}
