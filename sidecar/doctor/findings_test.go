package doctor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/doctor"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// A database that is not there: the doctor still says what is wrong with DATABASE_URL itself
// (here: the pooler), then that the database is down, and stops there instead of piling up
// consequences. The rights checks name what they were reading.
func TestDoctorWithTheDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	port, err := pgcluster.FreePort() // nothing listens on it
	if err != nil {
		t.Fatal(err)
	}
	down := open(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?connect_timeout=10", port))
	got := doctor.Run(ctx, down, doctor.Config{
		DatabaseURL: "postgresql://postgres.abcdefgh:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
	})
	if len(got) != 2 {
		t.Fatalf("findings: %+v, want the connection's and the database's", got)
	}
	if f := got[0]; f.Check != "connection" || f.Level != doctor.Fail || !strings.HasPrefix(f.Detail, "DATABASE_URL is Supabase's connection pooler") ||
		!strings.HasPrefix(f.Fix, "use postgresql://postgres:<password>@db.abcdefgh.supabase.co:5432/postgres") {
		t.Errorf("connection: %+v", f)
	}
	if f := got[1]; f.Check != "database" || f.Level != doctor.Fail || !strings.Contains(f.Detail, "connect") ||
		!strings.Contains(f.Fix, "that the database is up") {
		t.Errorf("database: %+v", f)
	}
	if f := findings(t, down, doctor.Config{DatabaseURL: "postgres://x@localhost:port/db"})["connection"]; f.Level != doctor.Fail ||
		!strings.HasPrefix(f.Detail, "DATABASE_URL: ") {
		t.Errorf("a DATABASE_URL that does not parse: %+v", f)
	}
	if _, err := doctor.CheckRights(ctx, down, false); err == nil || !strings.Contains(err.Error(), "read the database role's rights") {
		t.Errorf("CheckRights: %v", err)
	}
	if f := doctor.CheckDashboardRole(ctx, down); f.Level != doctor.Fail || !strings.Contains(f.Fix, "DATABASE_URL") {
		t.Errorf("CheckDashboardRole: %+v", f)
	}
}

// Connected as a role made for something else (the dashboard's): it cannot replicate, and each
// right the sidecar uses is named once, with its grant; REPLICATION is left to its own finding.
func TestDoctorAsARoleWithoutTheSidecarsRights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := pgtest.Pool(t)
	cfg := owner.Config().ConnConfig.Copy()
	cfg.User = "keapsync_dashboard"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rights []doctor.Finding
	for _, f := range doctor.Run(ctx, conn, doctor.Config{}) {
		switch f.Check {
		case "replication rights":
			if f.Level != doctor.Fail || !strings.Contains(f.Fix, "REPLICATION") {
				t.Errorf("replication: %+v", f)
			}
		case "role rights":
			rights = append(rights, f)
		}
	}
	if len(rights) < 2 {
		t.Fatalf("role rights: %+v, want each missing right", rights)
	}
	for _, f := range rights {
		if f.Level != doctor.Fail || strings.Contains(f.Detail, "REPLICATION") || !strings.HasSuffix(f.Fix, "or connect as keapsync_sidecar") {
			t.Errorf("role right: %+v", f)
		}
	}
	_, err = doctor.CheckRights(ctx, conn, true)
	var re *doctor.RightsError
	if !errors.As(err, &re) || re.Role != "keapsync_dashboard" ||
		!strings.Contains(err.Error(), fmt.Sprintf("and %d more rights; keapsync doctor lists them", len(re.Missing)-1)) {
		t.Errorf("CheckRights: %v", err)
	}
}

// What an account needs soon: a paused one is a warning, not a failure; a refresh token about to
// run out and an access token already expired each say how they get renewed.
func TestDoctorWarnsOfAccountsAndTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	if _, err := db.Exec(ctx, `
with p as (insert into keapsync.accounts (name, keap_tenant, credential, paused) values ('P', 'paused.example', 'api_key', true)),
     r as (insert into keapsync.accounts (name, keap_tenant) values ('R', 'refresh.example') returning id),
     a as (insert into keapsync.accounts (name, keap_tenant) values ('A', 'access.example') returning id)
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext, access_expires_at, refresh_expires_at)
select id, 'k', '\x00'::bytea, now() + interval '1 hour', now() + interval '2 days' from r
union all select id, 'k', '\x00'::bytea, now() - interval '1 hour', now() + interval '40 days' from a`); err != nil {
		t.Fatal(err)
	}
	got := findings(t, db, doctor.Config{})
	want(t, got, "account paused.example", doctor.Warn, "stopped by an admin")
	want(t, got, "account refresh.example tokens", doctor.Warn, "refresh token expires", "keapsync auth refresh")
	want(t, got, "account access.example tokens", doctor.Warn, "access token expired", "keapsync serve refreshes it")
	want(t, got, "account access.example hooks", doctor.Warn, "0 of 0 hooks verified", "keapsync hooks ensure")
	if _, ok := got["account paused.example tokens"]; ok {
		t.Errorf("a paused account's tokens are reported: %+v", got)
	}
}

// The clock check against Keap's Date header: an hour off fails; Keap out of reach, an answer
// without a date, or an API URL that is no URL are warnings that say so.
func TestDoctorComparesTheClockWithKeaps(t *testing.T) {
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
	undated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil // net/http adds one unless told not to
	}))
	defer undated.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name  string
		cfg   doctor.Config
		level doctor.Level
		says  []string
	}{
		{"an hour behind", doctor.Config{APIURL: sb.URL() + "/crm/rest", Now: func() time.Time { return time.Now().Add(-time.Hour) }},
			doctor.Fail, []string{"off Keap's clock", "NTP"}},
		{"Keap out of reach", doctor.Config{APIURL: gone.URL}, doctor.Warn, []string{"Keap not reachable", "KEAP_API_URL"}},
		{"no Date header", doctor.Config{APIURL: undated.URL}, doctor.Warn, []string{"Keap sent no Date header"}},
		{"not a URL", doctor.Config{APIURL: "http://keap\x7f"}, doctor.Warn, []string{"invalid control character"}},
	} {
		f := findings(t, db, tc.cfg)["clock"]
		if f.Level != tc.level {
			t.Errorf("%s: %+v, want %s", tc.name, f, tc.level)
		}
		for _, s := range tc.says {
			if !strings.Contains(f.Detail+" | "+f.Fix, s) {
				t.Errorf("%s: %+v does not say %q", tc.name, f, s)
			}
		}
	}
}
