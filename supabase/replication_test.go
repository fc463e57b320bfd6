package supabase_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const account = "30000000-0000-4000-8000-000000000003"

// The push path reads logical replication. These tests decode the real WAL (test_decoding) to
// prove what it will see: Keap's writes carry the `keap` marker, local edits carry `local`, and a
// duplicate or stale apply writes nothing at all.
func TestWhatTheReplicationStreamSees(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Pool(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	changes := func() []string {
		t.Helper()
		rows, err := db.Query(ctx, `select data from pg_logical_slot_get_changes('t', null, null)
		                             where data like 'table keap.%'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	apply := func(raw string) string {
		t.Helper()
		var outcome string
		if err := db.QueryRow(ctx, `select keapsync.apply_keap_record($1, 'contact', $2)`, account, raw).Scan(&outcome); err != nil {
			t.Fatal(err)
		}
		return outcome
	}

	exec(`insert into keapsync.accounts (id, name) values ($1, 'R')`, account)
	exec(`select pg_create_logical_replication_slot('t', 'test_decoding')`)
	t.Cleanup(func() { _, _ = db.Exec(context.Background(), `select pg_drop_replication_slot('t')`) })

	v1 := `{"id": 5, "given_name": "Ada", "last_updated": "2026-05-01T00:00:00.000Z"}`
	if got := apply(v1); got != "inserted" {
		t.Fatalf("first apply = %q", got)
	}
	keapWrites := changes()
	if len(keapWrites) == 0 {
		t.Fatal("the first apply wrote nothing to the WAL")
	}
	for _, c := range keapWrites {
		if strings.HasPrefix(c, "table keap.contacts:") && !strings.Contains(c, "sync_origin[text]:'keap'") {
			t.Errorf("a Keap write without the keap marker: %s", c)
		}
	}

	if got := apply(v1); got != "duplicate" {
		t.Fatalf("second apply = %q, want duplicate", got)
	}
	if got := apply(`{"id": 5, "given_name": "Old", "last_updated": "2026-04-01T00:00:00.000Z"}`); got != "stale" {
		t.Fatalf("older apply = %q, want stale", got)
	}
	if c := changes(); len(c) != 0 {
		t.Errorf("duplicate and stale applies wrote to the WAL: %v", c)
	}

	exec(`update keap.contacts set given_name = 'Augusta' where keap_id = 5`)
	local := changes()
	if len(local) != 1 || !strings.Contains(local[0], "sync_origin[text]:'local'") {
		t.Errorf("a plain SQL edit should reach the stream once, marked local: %v", local)
	}
}
