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

// Plan counts what a prune would delete and deletes nothing; a database that cannot be read is
// an error of both; Run with an ended context returns cleanly.
func TestPlanCountsWithoutDeleting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, credential) values ('Plan', 'api_key') returning id::text`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, processed_at, next_attempt_at)
select $1, 'contact.edit', 'contact', array[g::bigint], '{}', now() - interval '60 days', now() - interval '60 days', now() - interval '60 days'
  from generate_series(1, 3) g`, account); err != nil {
		t.Fatal(err)
	}
	planned := func(counts []retention.Count) int64 {
		var n int64
		for _, c := range counts {
			if c.Account == account {
				n += c.Rows
			}
		}
		return n
	}
	for range 2 { // counting twice finds the same: nothing went
		counts, err := retention.Plan(ctx, db, account)
		if err != nil || planned(counts) != 3 {
			t.Fatalf("plan: %+v, %v", counts, err)
		}
	}
	counts, err := retention.Prune(ctx, db, retention.Config{Batch: 2, Pause: -1}, account, nil)
	if err != nil || planned(counts) != 3 {
		t.Fatalf("prune in batches of 2: %+v, %v", counts, err)
	}
	if counts, err := retention.Plan(ctx, db, account); err != nil || planned(counts) != 0 {
		t.Errorf("plan after the prune: %+v, %v", counts, err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	p := &retention.Pruner{DB: db, Log: testlog.New(t)}
	if err := p.Run(ended); err != nil {
		t.Errorf("Run with an ended context: %v", err)
	}
	db.Close()
	if _, err := retention.Plan(ctx, db, ""); err == nil {
		t.Error("plan on a closed pool: no error")
	}
	if _, err := retention.Prune(ctx, db, retention.Config{}, "", nil); err == nil {
		t.Error("prune on a closed pool: no error")
	}
}
