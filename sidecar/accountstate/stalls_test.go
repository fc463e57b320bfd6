package accountstate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

func TestThresholdDefaults(t *testing.T) {
	t.Parallel()
	if got := (accountstate.Thresholds{}).WithDefaults(); got.Stall != 15*time.Minute || got.Reconcile != time.Hour {
		t.Errorf("zero thresholds: %+v", got)
	}
	set := accountstate.Thresholds{Stall: time.Minute, Reconcile: 2 * time.Minute}
	if got := set.WithDefaults(); got != set {
		t.Errorf("set thresholds changed: %+v", got)
	}
}

// A stall is worded once (Summary) and keyed by path and account; the slot's has no account.
func TestStallWording(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	s := accountstate.Stall{AccountID: "a1", Path: accountstate.PathInbox, Detail: "3 hook deliveries waiting"}
	if got := s.Summary(); got != "stalled inbox: 3 hook deliveries waiting, nothing advanced yet" {
		t.Errorf("summary %q", got)
	}
	s.LastProgress = &at
	if got := s.Summary(); !strings.HasPrefix(got, "stalled inbox: 3 hook deliveries waiting, nothing advanced since ") {
		t.Errorf("summary %q", got)
	}
	if s.Key() != "inbox/a1" {
		t.Errorf("key %q", s.Key())
	}
	if k := (accountstate.Stall{Path: accountstate.PathSlot}).Key(); k != "slot" {
		t.Errorf("the slot's key %q", k)
	}
}

// Stalls reads keapsync.stalls; StallsOf reads one account's as the signed-in person sees them
// (keapsync.my_stalls: only accounts they belong to).
func TestStallsReadTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	var account, other string
	for name, id := range map[string]*string{"Stalled": &account, "Other": &other} {
		if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, credential) values ($1, 'api_key') returning id::text`, name).Scan(id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, next_attempt_at)
values ($1, 'contact.edit', 'contact', '{1}', '{}', now() - interval '1 hour', now() - interval '1 hour')`, *id); err != nil {
			t.Fatal(err)
		}
	}
	all, err := accountstate.Stalls(ctx, db, accountstate.Thresholds{})
	if err != nil {
		t.Fatal(err)
	}
	inbox := map[string]accountstate.Stall{}
	for _, s := range all {
		if s.Path == accountstate.PathInbox {
			inbox[s.AccountID] = s
		}
	}
	if len(inbox) != 2 || inbox[account].WaitingSince == nil || !strings.Contains(inbox[account].Summary(), "stalled inbox: ") {
		t.Fatalf("stalls %+v", all)
	}
	// Under an hour's threshold an hour's wait is no stall.
	if all, err := accountstate.Stalls(ctx, db, accountstate.Thresholds{Stall: 2 * time.Hour}); err != nil || len(all) != 0 {
		t.Errorf("with a 2 hour threshold: %+v, %v", all, err)
	}

	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	const user = "00000000-0000-4000-8000-00000000beef"
	if _, err := tx.Exec(ctx, `insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', 'stalls@example.com')`, user); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `select set_config('request.jwt.claims', json_build_object('sub', $1::text, 'role', 'authenticated')::text, true)`, user); err != nil {
		t.Fatal(err)
	}
	if mine, err := accountstate.StallsOf(ctx, tx, accountstate.Thresholds{}, account); err != nil || len(mine) != 0 {
		t.Errorf("an account the person does not belong to: %+v, %v", mine, err)
	}
	if _, err := tx.Exec(ctx, `insert into keapsync.members (account_id, user_id, role) values ($1, $2, 'viewer')`, account, user); err != nil {
		t.Fatal(err)
	}
	mine, err := accountstate.StallsOf(ctx, tx, accountstate.Thresholds{}, account)
	if err != nil || len(mine) != 1 || mine[0].AccountID != account || mine[0].Path != accountstate.PathInbox {
		t.Errorf("the member's account: %+v, %v", mine, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := accountstate.Stalls(ctx, db, accountstate.Thresholds{}); err == nil || !strings.Contains(err.Error(), "read stalls") {
		t.Errorf("a closed pool: %v", err)
	}
}
