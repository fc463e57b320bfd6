package serve

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// Each stall kind, injected by backdating rows (the clock, as far as keapsync.stalls is
// concerned), is detected, fails /readyz naming it, sets keapsync_stalled, and clears on
// recovery.
func TestStallsFailReadinessAndClear(t *testing.T) {
	cases := []struct {
		path    string
		inject  []string
		recover []string
	}{
		{path: "inbox",
			inject: []string{`insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, next_attempt_at)
			                  values ($1, 'contact.edit', 'contact', '{1}', '{}', now() - interval '1 hour', now() - interval '1 hour')`},
			recover: []string{`update keapsync.webhook_inbox set processed_at = now() where account_id = $1`}},
		{path: "push",
			inject: []string{`insert into keapsync.push_queue (account_id, object_type, local_id, first_enqueued_at, next_attempt_at)
			                  values ($1, 'contact', 1, now() - interval '1 hour', now() - interval '1 hour')`},
			recover: []string{`delete from keapsync.push_queue where account_id = $1`}},
		{path: "reconcile",
			inject: []string{`insert into keapsync.sync_cursors (account_id, object_type, kind, finished_at, updated_at)
			                  values ($1, 'contact', 'backfill', now() - interval '3 hours', now() - interval '3 hours')`},
			recover: []string{`insert into keapsync.sync_cursors (account_id, object_type, kind, finished_at, updated_at)
			                   values ($1, 'contact', 'reconcile', now(), now())`}},
		{path: "slot",
			// The slot's confirmed position was last seen moving an hour ago, and WAL waits beyond it.
			inject: []string{`select pg_create_logical_replication_slot('stall_test_' || replace($1::text, '-', '_'), 'pgoutput')`,
				`insert into keapsync.slot_progress (slot_name, confirmed_lsn, advanced_at, observed_at)
				 select slot_name, confirmed_flush_lsn, now() - interval '1 hour', now() - interval '1 hour'
				   from pg_replication_slots where slot_name = 'stall_test_' || replace($1::text, '-', '_')`,
				`insert into keapsync.sync_state (account_id, object_type, local_id) values ($1, 'contact', -1)`},
			recover: []string{`select pg_replication_slot_advance('stall_test_' || replace($1::text, '-', '_'), pg_current_wal_lsn())`,
				`select keapsync.observe_slot('stall_test_' || replace($1::text, '-', '_'))`}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			ctx := context.Background()
			db := pgtest.Pool(t)
			var account string
			if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant, credential) values ('S', 'stall', 'api_key') returning id::text`).Scan(&account); err != nil {
				t.Fatal(err)
			}
			if tc.path == "slot" {
				t.Cleanup(func() {
					db.Exec(context.Background(), `select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = 'stall_test_' || replace($1::text, '-', '_')`, account)
				})
			}
			reg := prometheus.NewRegistry()
			s := &Server{DB: db, Log: slog.New(slog.DiscardHandler)}
			reg.MustRegister(&opsCollector{db: db, thresholds: accountstate.Thresholds{}, log: s.Log})
			stalled := func() float64 {
				acct := "stall"
				if tc.path == "slot" {
					acct = ""
				}
				return gaugeValue(t, reg, "keapsync_stalled", map[string]string{"account": acct, "path": tc.path})
			}
			if code, body := readyz(t, s); code != http.StatusOK || stalled() != 0 {
				t.Fatalf("before: /readyz %d %s, keapsync_stalled %v", code, body, stalled())
			}
			run(t, db, account, tc.inject)
			code, body := readyz(t, s)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "stalled "+tc.path) {
				t.Fatalf("stalled %s: /readyz %d %s", tc.path, code, body)
			}
			if got := stalled(); got != 1 {
				t.Fatalf("stalled %s: keapsync_stalled = %v", tc.path, got)
			}
			run(t, db, account, tc.recover)
			if code, body := readyz(t, s); code != http.StatusOK || stalled() != 0 {
				t.Fatalf("recovered %s: /readyz %d %s, keapsync_stalled %v", tc.path, code, body, stalled())
			}
		})
	}
}

func run(t *testing.T, db DB, account string, stmts []string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(context.Background(), q, account); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func readyz(t *testing.T, s *Server) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Ready().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return rec.Code, rec.Body.String()
}

// gaugeValue is the value of the series of name with labels in reg (-1 when absent).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
