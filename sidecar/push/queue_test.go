package push_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// Rows queued by a sidecar from before create_sent_at kept the create mark in last_error
// ("create sent at <time>[; <error>]"); the migration moves it into its column and leaves the
// error alone, so a retry after the upgrade still looks for what the create made.
func TestCreateMarkMovesOutOfLastError(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	ctx := context.Background()
	migration, err := os.ReadFile("../../supabase/migrations/20261203190000_keapsync_push_queue_create_sent_at.sql")
	if err != nil {
		t.Fatal(err)
	}
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant, credential) values ('M', 'm.example', 'api_key') returning id`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `
insert into keapsync.push_queue (account_id, object_type, local_id, attempts, last_error) values
  ($1, 'contact', 1, 1, 'create sent at 2026-11-27T08:00:00.123456789Z; keap POST /v1/contacts: 503'),
  ($1, 'contact', 2, 0, 'create sent at 2026-11-27T08:00:00Z'),
  ($1, 'contact', 3, 2, 'keap PATCH: 500'),
  ($1, 'contact', 4, 0, null)`, account); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, string(migration)); err != nil {
		t.Fatalf("migration again: %v", err)
	}
	want := map[int64]struct {
		at  *time.Time
		err *string
	}{
		1: {ptr(time.Date(2026, 11, 27, 8, 0, 0, 123457000, time.UTC)), ptr("keap POST /v1/contacts: 503")},
		2: {ptr(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)), nil},
		3: {nil, ptr("keap PATCH: 500")},
		4: {nil, nil},
	}
	rows, err := db.Query(ctx, `select local_id, create_sent_at, last_error from keapsync.push_queue`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var at *time.Time
		var msg *string
		if err := rows.Scan(&id, &at, &msg); err != nil {
			t.Fatal(err)
		}
		w := want[id]
		if (at == nil) != (w.at == nil) || at != nil && !at.Equal(*w.at) {
			t.Errorf("row %d: create_sent_at %v, want %v", id, at, w.at)
		}
		if (msg == nil) != (w.err == nil) || msg != nil && *msg != *w.err {
			t.Errorf("row %d: last_error %v, want %v", id, deref(msg), deref(w.err))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}
