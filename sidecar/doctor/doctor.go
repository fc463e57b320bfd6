// Package doctor checks a keapsync installation and says what to do about each problem: the
// database settings logical replication needs, the push slot and its lag, pending migrations,
// token health and hooks per account, and clock skew against Keap.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/migrate"
)

// Level of a finding.
type Level string

const (
	OK   Level = "ok"
	Warn Level = "warn"
	Fail Level = "FAIL"
)

// Finding is one check's result and, when it is not OK, what to do.
type Finding struct {
	Check  string
	Level  Level
	Detail string
	Fix    string
}

// DB is what the doctor reads.
type DB interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Config names what to check.
type Config struct {
	Slot        string // the push slot (default keapsync_push)
	Publication string // default keapsync_push
	MaxSlotLag  int64  // retained WAL that counts as a pile-up (default 1 GiB)
	Migrations  []migrate.Migration
	APIURL      string // Keap's REST base, for the clock check ("" skips it)
	HTTPClient  *http.Client
	Now         func() time.Time
}

const (
	sqlWalLevel    = `select current_setting('wal_level'), (select rolreplication or rolsuper from pg_roles where rolname = current_user)`
	sqlSlot        = `select active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint from pg_replication_slots where slot_name = $1 and database = current_database()`
	sqlPublication = `select count(*) from pg_publication where pubname = $1`
	sqlApplied     = `select version from supabase_migrations.schema_migrations`
	sqlAccounts    = `
select a.id::text, coalesce(a.keap_tenant, a.name), a.needs_reauth, t.account_id is not null, t.access_expires_at, t.refresh_expires_at,
       (select count(*) from keapsync.hook_subscriptions h where h.account_id = a.id and h.status = 'Verified'),
       (select count(*) from keapsync.hook_subscriptions h where h.account_id = a.id)
  from keapsync.accounts a left join keapsync.oauth_tokens t on t.account_id = a.id order by a.created_at`
)

// Run performs every check; it never stops at the first problem.
func Run(ctx context.Context, db DB, cfg Config) []Finding {
	if cfg.Slot == "" {
		cfg.Slot = "keapsync_push"
	}
	if cfg.Publication == "" {
		cfg.Publication = "keapsync_push"
	}
	if cfg.MaxSlotLag == 0 {
		cfg.MaxSlotLag = 1 << 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var out []Finding
	add := func(f Finding) { out = append(out, f) }

	var wal string
	var repl bool
	if err := db.QueryRow(ctx, sqlWalLevel).Scan(&wal, &repl); err != nil {
		return append(out, Finding{"database", Fail, err.Error(), "check DATABASE_URL and that the database is up"})
	}
	if wal != "logical" {
		add(Finding{"wal_level", Fail, "wal_level is " + wal,
			"set wal_level = logical and restart PostgreSQL (on Supabase it already is)"})
	} else {
		add(Finding{"wal_level", OK, "logical", ""})
	}
	if !repl {
		add(Finding{"replication rights", Fail, "the database user cannot replicate",
			"connect as a role with REPLICATION (Supabase: the postgres role on the direct connection, not the pooler)"})
	} else {
		add(Finding{"replication rights", OK, "granted", ""})
	}

	var active bool
	var lag *int64
	switch err := db.QueryRow(ctx, sqlSlot, cfg.Slot).Scan(&active, &lag); {
	case errors.Is(err, pgx.ErrNoRows):
		add(Finding{"push slot", Warn, "slot " + cfg.Slot + " does not exist yet", "start keapsync serve once; it creates the slot"})
	case err != nil:
		add(Finding{"push slot", Fail, err.Error(), ""})
	case lag != nil && *lag > cfg.MaxSlotLag:
		add(Finding{"push slot", Fail, fmt.Sprintf("retains %d MiB of WAL", *lag>>20),
			"WAL is piling up: start keapsync serve (or see docs/runbook.md, \"WAL pile-up\")"})
	default:
		detail := "idle (no sidecar attached)"
		if active {
			detail = "held by a running sidecar"
		}
		if lag != nil {
			detail += fmt.Sprintf(", lag %d KiB", *lag>>10)
		}
		add(Finding{"push slot", OK, detail, ""})
	}
	var pubs int
	if err := db.QueryRow(ctx, sqlPublication, cfg.Publication).Scan(&pubs); err == nil && pubs == 0 {
		add(Finding{"publication", Warn, cfg.Publication + " missing", "start keapsync serve once; it creates the publication"})
	} else if err == nil {
		add(Finding{"publication", OK, cfg.Publication, ""})
	}

	out = append(out, checkMigrations(ctx, db, cfg.Migrations)...)
	out = append(out, checkAccounts(ctx, db, cfg.Now())...)
	if cfg.APIURL != "" {
		out = append(out, checkClock(ctx, cfg))
	}
	return out
}

func checkMigrations(ctx context.Context, db DB, local []migrate.Migration) []Finding {
	rows, err := db.Query(ctx, sqlApplied)
	if err != nil {
		return []Finding{{"migrations", Fail, "no migration history: " + err.Error(), "run keapsync migrate"}}
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return []Finding{{"migrations", Fail, err.Error(), ""}}
	}
	have := map[string]bool{}
	for _, v := range applied {
		have[v] = true
	}
	pending := 0
	for _, m := range local {
		if !have[m.Version] {
			pending++
		}
	}
	if pending > 0 {
		return []Finding{{"migrations", Fail, fmt.Sprintf("%d pending", pending), "run keapsync migrate (or supabase db push)"}}
	}
	return []Finding{{"migrations", OK, fmt.Sprintf("%d applied", len(applied)), ""}}
}

func checkAccounts(ctx context.Context, db DB, now time.Time) []Finding {
	rows, err := db.Query(ctx, sqlAccounts)
	if err != nil {
		return []Finding{{"accounts", Fail, err.Error(), ""}}
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var id, name string
		var reauth, hasToken bool
		var access, refresh *time.Time
		var verified, hooks int
		if err := rows.Scan(&id, &name, &reauth, &hasToken, &access, &refresh, &verified, &hooks); err != nil {
			return append(out, Finding{"accounts", Fail, err.Error(), ""})
		}
		check := "account " + name
		switch {
		case reauth:
			out = append(out, Finding{check, Fail, "needs re-authorization (Keap refused the refresh token)",
				"run keapsync auth login; queued work waits and resumes"})
		case !hasToken:
			// As `auth status` says; an account used with KEAP_API_KEY has no token either.
			out = append(out, Finding{check, Warn, "not connected (no Keap token stored)",
				"run keapsync auth login, or open a keapsync auth link through serve (not needed with KEAP_API_KEY)"})
		case refresh != nil && refresh.Sub(now) < 7*24*time.Hour:
			out = append(out, Finding{check, Warn, "refresh token expires " + refresh.Format(time.RFC3339),
				"keep keapsync serve running (it refreshes ahead), or run keapsync auth refresh"})
		case access != nil && access.Before(now):
			out = append(out, Finding{check, Warn, "access token expired " + access.Format(time.RFC3339),
				"keapsync serve refreshes it; or run keapsync auth refresh"})
		default:
			out = append(out, Finding{check, OK, "tokens healthy", ""})
		}
		if hooks == 0 || verified < hooks {
			out = append(out, Finding{check + " hooks", Warn, fmt.Sprintf("%d of %d hooks verified", verified, hooks),
				"run keapsync hooks ensure --public-url <where Keap reaches serve>"})
		}
	}
	if err := rows.Err(); err != nil {
		out = append(out, Finding{"accounts", Fail, err.Error(), ""})
	}
	return out
}

// checkClock compares our clock with the Date header of Keap's answer: token expiry and Keap's
// version clock are compared across machines.
func checkClock(ctx context.Context, cfg Config) Finding {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, cfg.APIURL+"/v1/contacts", nil)
	if err != nil {
		return Finding{"clock", Warn, err.Error(), ""}
	}
	sent := cfg.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Finding{"clock", Warn, "Keap not reachable: " + err.Error(), "check KEAP_API_URL and the network"}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return Finding{"clock", Warn, "Keap sent no Date header", ""}
	}
	skew := date.Sub(sent.Add(cfg.Now().Sub(sent) / 2)).Round(time.Second)
	if skew < -30*time.Second || skew > 30*time.Second {
		return Finding{"clock", Fail, fmt.Sprintf("%s off Keap's clock", skew), "run NTP (chrony or systemd-timesyncd) on this machine"}
	}
	return Finding{"clock", OK, fmt.Sprintf("within %s of Keap", max(skew, -skew)), ""}
}
