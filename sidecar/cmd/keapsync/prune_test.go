package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// keapsync prune --dry-run shows what would go and deletes nothing; prune deletes it; a rollback
// of a pruned change says it is older than the history window instead of "no change".
func TestPruneAndRollbackOfAPrunedChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var old int64
	if err := conn.QueryRow(ctx, `
with a as (insert into keapsync.accounts (name, keap_tenant, credential) values ('P', 'prune', 'api_key') returning id),
i as (insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, processed_at)
      select id, 'contact.edit', 'contact', '{1}', '{}', now() - interval '9 days', now() - interval '9 days' from a)
insert into keapsync.change_history (account_id, table_name, row_id, op, origin, changed, at)
select id, 'contacts', 1, 'update', 'local', '{}', now() - interval '91 days' from a returning id`).Scan(&old); err != nil {
		t.Fatal(err)
	}
	count := func() (n int64) {
		conn.QueryRow(ctx, `select (select count(*) from keapsync.webhook_inbox) + (select count(*) from keapsync.change_history)`).Scan(&n)
		return n
	}
	out, err := runApp(t, "prune", "--dry-run", "--account", "prune", "--database-url", dbURL)
	if err != nil || !strings.Contains(out, "would delete") || !tableRow(out, "webhook_inbox", "1") || !tableRow(out, "change_history", "1") || count() != 2 {
		t.Fatalf("prune --dry-run: %v, %d rows left\n%s", err, count(), out)
	}
	if out, err := runApp(t, "prune", "--database-url", dbURL); err != nil || !tableRow(out, "change_history", "1") || count() != 0 {
		t.Fatalf("prune: %v, %d rows left\n%s", err, count(), out)
	}
	_, err = runApp(t, "rollback", fmt.Sprint(old), "--database-url", dbURL)
	if err == nil || !strings.Contains(err.Error(), "older than the history window (90 days) and was pruned") {
		t.Fatalf("rollback of a pruned change: %v", err)
	}
	_, err = runApp(t, "rollback", fmt.Sprint(old+1000), "--database-url", dbURL)
	if err == nil || !strings.Contains(err.Error(), "no change") {
		t.Fatalf("rollback of a change that never was: %v", err)
	}
}

// tableRow: some row of the printed table names the table word with n rows.
func tableRow(out, word, n string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[1] == word && f[2] == n {
			return true
		}
	}
	return false
}
