package doctor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/pgtest"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestDoctor(t *testing.T) {
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
		"migrations": doctor.OK, "account r.example": doctor.Fail, "account r.example hooks": doctor.Warn, "clock": doctor.OK,
		"account n.example": doctor.Warn, // no token: not connected, never "tokens healthy"
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
