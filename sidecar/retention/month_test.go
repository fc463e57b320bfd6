package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/retention"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The simulated month: steady traffic every day for 30 days (hook deliveries processed, history,
// conflicts resolved, dead letters settled, OAuth states expiring), the clock moved a day at a
// time, serve's pruning after each day and autovacuum's work done by hand. Once the windows have
// passed, every table's row count is the same every day and no table grows on disk.
func TestSimulatedMonthStaysFlat(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Pool(t)
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, credential) values ('M', 'api_key') returning id::text`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	// History is kept 90 days by default; a 10-day window lets a month show it flat too.
	if _, err := db.Exec(ctx, `insert into keapsync.retention (account_id, history_days, resolved_days) values ($1, 10, 10)`, account); err != nil {
		t.Fatal(err)
	}
	const perDay = 200
	tables := []string{"webhook_inbox", "change_history", "conflicts", "dead_letters", "oauth_states"}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := retention.Config{Batch: 150, Pause: -1} // several batches a day, no pauses in a test
	type sample struct{ rows, bytes map[string]int64 }
	var days []sample
	for day := 0; day < 30; day++ {
		at := start.Add(time.Duration(day) * 24 * time.Hour)
		if _, err := db.Exec(ctx, sqlDayOfTraffic, account, at, perDay); err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
		now := at.Add(24 * time.Hour)
		if _, err := retention.Prune(ctx, db, cfg, account, &now); err != nil {
			t.Fatalf("day %d: prune: %v", day, err)
		}
		s := sample{rows: map[string]int64{}, bytes: map[string]int64{}}
		for _, tbl := range tables {
			if _, err := db.Exec(ctx, "vacuum keapsync."+tbl); err != nil { // autovacuum's part
				t.Fatal(err)
			}
			var rows, bytes int64
			if err := db.QueryRow(ctx, `select (select count(*) from keapsync.`+tbl+`), pg_total_relation_size('keapsync.`+tbl+`')`).Scan(&rows, &bytes); err != nil {
				t.Fatal(err)
			}
			s.rows[tbl], s.bytes[tbl] = rows, bytes
		}
		days = append(days, s)
	}
	// Every window is at most 10 days: from day 12 on, each day's rows replace the day's that left.
	steady := days[12]
	for d := 12; d < len(days); d++ {
		for _, tbl := range tables {
			if days[d].rows[tbl] != steady.rows[tbl] {
				t.Errorf("day %d: %s holds %d rows, day 12 held %d", d, tbl, days[d].rows[tbl], steady.rows[tbl])
			}
			// The space freed by each day's pruning is reused by the next day's rows: after the
			// first days past the window, no table grows.
			if days[d].bytes[tbl] > days[16].bytes[tbl] && d > 16 {
				t.Errorf("day %d: %s takes %d bytes, day 16 took %d", d, tbl, days[d].bytes[tbl], days[16].bytes[tbl])
			}
		}
	}
	for _, tbl := range tables {
		t.Logf("%s: day 12 %d rows %d bytes; day 29 %d rows %d bytes", tbl, days[12].rows[tbl], days[12].bytes[tbl],
			days[29].rows[tbl], days[29].bytes[tbl])
	}
	if days[29].rows["webhook_inbox"] != 7*perDay || days[29].rows["change_history"] != 10*perDay || days[29].rows["oauth_states"] > 1 {
		t.Errorf("day 29 rows: %v (want 7 days of deliveries, 10 days of history, only the unexpired OAuth state)", days[29].rows)
	}
}

// One day of traffic at $2, spread over the day: deliveries received and processed, changes
// recorded, conflicts resolved and dead letters settled the same day, OAuth states that expire.
const sqlDayOfTraffic = `
with t as (select $2::timestamptz + (g * interval '1 day') / ($3 + 1) as at, g from generate_series(1, $3) g),
inbox as (insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, processed_at, next_attempt_at)
          select $1, 'contact.edit', 'contact', array[g::bigint], jsonb_build_object('event_key', 'contact.edit', 'object_keys', jsonb_build_array(jsonb_build_object('id', g))), at, at + interval '2 seconds', at from t),
hist as (insert into keapsync.change_history (account_id, table_name, row_id, op, origin, changed, new_row, at)
         select $1, 'contacts', g, 'update', 'keap', '{"given_name": "x"}', jsonb_build_object('id', g, 'given_name', repeat('x', 200)), at from t),
conf as (insert into keapsync.conflicts (account_id, object_type, local_id, field, policy, status, resolution, detected_at, resolved_at)
         select $1, 'contact', g, 'given_name', 'manual', 'resolved', 'keap', at, at + interval '1 hour' from t),
dead as (insert into keapsync.dead_letters (account_id, source, object_type, keap_id, error, status, first_failed_at, last_failed_at)
         select $1, 'push', 'contact', g, 'keap said no', 'done', at, at from t)
insert into keapsync.oauth_states (state, redirect_uri, created_at, expires_at)
select $1::text || at::text, 'http://127.0.0.1/cb', at, at + interval '10 minutes' from t`
