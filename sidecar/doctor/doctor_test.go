package doctor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestDoctor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	sb, err := sandbox.New(sandbox.Options{Contacts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	mig, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `insert into keapsync.accounts (name, keap_tenant, needs_reauth) values ('R', 'r.example', true), ('N', 'n.example', false)`); err != nil {
		t.Fatal(err)
	}
	findings := doctor.Run(ctx, db, doctor.Config{Migrations: mig.Migrations, APIURL: sb.URL() + "/crm/rest"})
	got := map[string]doctor.Finding{}
	for _, f := range findings {
		got[f.Check] = f
	}
	for check, want := range map[string]doctor.Level{
		"wal_level": doctor.OK, "replication rights": doctor.OK, "push slot": doctor.Warn,
		"migrations": doctor.OK, "account r.example": doctor.Fail, "clock": doctor.OK,
	} {
		f, ok := got[check]
		if !ok || f.Level != want {
			t.Errorf("%s: %+v, want level %s", check, f, want)
		}
		if f.Level != doctor.OK && f.Fix == "" {
			t.Errorf("%s is %s but says nothing about what to do", check, f.Level)
		}
	}
	if !strings.Contains(got["account r.example"].Fix, "auth login") {
		t.Errorf("re-authorization advice: %q", got["account r.example"].Fix)
	}
	if msg := got["account n.example"].Detail; !strings.Contains(msg, "not connected") {
		t.Errorf("an account without a token: %q", msg)
	}
	// A pending migration is a failure.
	extra := append(mig.Migrations, migrate.Migration{Version: "99990101000000", Name: "future"})
	for _, f := range doctor.Run(ctx, db, doctor.Config{Migrations: extra}) {
		if f.Check == "migrations" && f.Level != doctor.Fail {
			t.Errorf("pending migration not reported: %+v", f)
		}
	}
}

// keapsync_sidecar holds every right the sidecar uses; the doctor names the one taken away, and
// a role with none of them gets the whole list.
func TestDoctorChecksTheRolesRights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := pgtest.Pool(t)
	cfg := owner.Config().ConnConfig.Copy()
	cfg.User = "keapsync_sidecar"
	sidecar, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sidecar.Close(ctx)
	rights := func() []doctor.Finding {
		var out []doctor.Finding
		for _, f := range doctor.Run(ctx, sidecar, doctor.Config{}) {
			if f.Check == "role rights" || f.Check == "replication rights" {
				out = append(out, f)
			}
		}
		return out
	}
	for _, f := range rights() {
		if f.Level != doctor.OK {
			t.Errorf("keapsync_sidecar: %+v", f)
		}
	}
	if _, err := owner.Exec(ctx, `revoke insert on keapsync.dead_letters from keapsync_sidecar`); err != nil {
		t.Fatal(err)
	}
	got := rights()
	if len(got) != 2 || got[1].Level != doctor.Fail ||
		got[1].Detail != "lacks INSERT on table keapsync.dead_letters" ||
		!strings.Contains(got[1].Fix, "grant insert on keapsync.dead_letters to keapsync_sidecar") {
		t.Errorf("after revoking one right: %+v", got)
	}
	// A table added later without the sidecar's policy is named, with the call that adds it.
	if _, err := owner.Exec(ctx, `grant insert on keapsync.dead_letters to keapsync_sidecar;
	  drop policy keapsync_sidecar_all on keapsync.conflicts`); err != nil {
		t.Fatal(err)
	}
	got = rights()
	if len(got) != 2 || got[1].Detail != "lacks a row-level security policy on table keapsync.conflicts" ||
		!strings.Contains(got[1].Fix, "select keapsync.grant_sidecar_rls()") {
		t.Errorf("without the policy on keapsync.conflicts: %+v", got)
	}
	if unseen, err := doctor.CheckRights(ctx, sidecar, true); err != nil || len(unseen) != 1 {
		t.Errorf("CheckRights without a policy = %v, %v; want it unseen, not refused", unseen, err)
	}
	if _, err := owner.Exec(ctx, `select keapsync.grant_sidecar_rls(); revoke insert on keapsync.dead_letters from keapsync_sidecar`); err != nil {
		t.Fatal(err)
	}
	if _, err := doctor.CheckRights(ctx, sidecar, true); err == nil || !strings.Contains(err.Error(), "INSERT on table keapsync.dead_letters") {
		t.Errorf("CheckRights = %v", err)
	}
}

// The slot's safety margin: where max_slot_wal_keep_size is unlimited, the doctor warns that a
// stalled slot can fill the disk.
func TestDoctorReportsWALKeepSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	var keep string
	if err := db.QueryRow(ctx, `select current_setting('max_slot_wal_keep_size')`).Scan(&keep); err != nil {
		t.Fatal(err)
	}
	want := doctor.OK
	if keep == "-1" {
		want = doctor.Warn
	}
	for _, f := range doctor.Run(ctx, db, doctor.Config{}) {
		if f.Check == "max_slot_wal_keep_size" {
			if f.Level != want || (want == doctor.Warn && !strings.Contains(f.Fix, "max_slot_wal_keep_size")) {
				t.Errorf("setting %s: %+v", keep, f)
			}
			return
		}
	}
	t.Error("no max_slot_wal_keep_size finding")
}

func TestDoctorChecksTheDashboardRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := pgtest.Pool(t)
	as := func(role string) doctor.Finding {
		t.Helper()
		cfg := owner.Config().ConnConfig.Copy()
		cfg.User = role
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		return doctor.CheckDashboardRole(ctx, conn)
	}
	if f := as("keapsync_dashboard"); f.Level != doctor.OK {
		t.Errorf("keapsync_dashboard: %+v", f)
	}
	if f := as("postgres"); f.Level != doctor.Warn || !strings.Contains(f.Fix, "keapsync_dashboard") {
		t.Errorf("postgres: %+v", f)
	}
	// Roles belong to the cluster: this one is the test's own.
	role := pgx.Identifier{"doctor_dash_" + strings.ReplaceAll(t.Name(), "/", "_")}.Sanitize()
	if _, err := owner.Exec(ctx, "create role "+role+" login"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = owner.Exec(context.Background(), "drop role "+role) })
	if f := as(strings.Trim(role, `"`)); f.Level != doctor.Fail || !strings.Contains(f.Fix, "grant authenticated to") {
		t.Errorf("a role that cannot become authenticated: %+v", f)
	}
}

// A stalled path (here: a hook delivery an hour old and nothing processed) fails the doctor,
// naming the account and path, as it fails /readyz.
func TestDoctorNamesAStall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	if _, err := db.Exec(ctx, `with a as (insert into keapsync.accounts (name, keap_tenant, credential) values ('D', 'stalling', 'api_key') returning id)
		insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, next_attempt_at)
		select id, 'contact.edit', 'contact', '{1}', '{}', now() - interval '1 hour', now() - interval '1 hour' from a`); err != nil {
		t.Fatal(err)
	}
	for _, f := range doctor.Run(ctx, db, doctor.Config{}) {
		if f.Check == "account stalling inbox" {
			if f.Level != doctor.Fail || !strings.Contains(f.Detail, "stalled inbox: 1 hook deliveries waiting") {
				t.Fatalf("stall finding: %+v", f)
			}
			return
		}
	}
	t.Fatal("doctor does not name the stalled inbox")
}
