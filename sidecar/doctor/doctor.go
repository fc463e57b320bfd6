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

	"github.com/keapsync/keapsync/sidecar/accountstate"
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
	DatabaseURL string  // checked for Supabase's pooler and an unreachable host ("" skips it)
	Network     Network // nil: this machine's
}

const (
	sqlWalLevel = `select current_setting('wal_level'), (select rolreplication or rolsuper from pg_roles where rolname = current_user)`
	sqlSlot     = `select active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, coalesce(wal_status, ''), safe_wal_size
  from pg_replication_slots where slot_name = $1 and database = current_database()`
	// -1 (the default) lets a stalled slot keep WAL until the disk is full; Supabase sets a limit.
	sqlKeepSize    = `select pg_size_bytes(current_setting('max_slot_wal_keep_size'))`
	sqlPublication = `select count(*) from pg_publication where pubname = $1`
	sqlAccounts    = `
select a.id::text, t.access_expires_at, t.refresh_expires_at,
       (select count(*) from keapsync.hook_subscriptions h where h.account_id = a.id and h.status = 'Verified'),
       (select count(*) from keapsync.hook_subscriptions h where h.account_id = a.id)
  from keapsync.accounts a left join keapsync.oauth_tokens t on t.account_id = a.id`
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
	if cfg.DatabaseURL != "" {
		if err := CheckConnection(ctx, cfg.DatabaseURL, cfg.Network); err != nil {
			var ce *ConnectionError
			if errors.As(err, &ce) {
				add(Finding{"connection", Fail, "DATABASE_URL " + ce.Problem, "use " + ce.Use})
			} else {
				add(Finding{"connection", Fail, err.Error(), ""})
			}
		} else {
			add(Finding{"connection", OK, "direct connection", ""})
		}
	}

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

	out = append(out, checkRights(ctx, db)...)

	out = append(out, checkSlot(ctx, db, cfg)...)
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

func checkSlot(ctx context.Context, db DB, cfg Config) []Finding {
	var keep int64
	if err := db.QueryRow(ctx, sqlKeepSize).Scan(&keep); err != nil {
		return []Finding{{"push slot", Fail, "read max_slot_wal_keep_size: " + err.Error(), ""}}
	}
	var out []Finding
	if keep < 0 {
		out = append(out, Finding{"max_slot_wal_keep_size", Warn, "unlimited: a stalled slot keeps WAL until the disk is full",
			"set max_slot_wal_keep_size (e.g. 4GB, below the free disk); Supabase projects have a limit"})
	} else {
		out = append(out, Finding{"max_slot_wal_keep_size", OK, fmt.Sprintf("%d MiB", keep>>20), ""})
	}
	var active bool
	var lag, safe *int64
	var status string
	switch err := db.QueryRow(ctx, sqlSlot, cfg.Slot).Scan(&active, &lag, &status, &safe); {
	case errors.Is(err, pgx.ErrNoRows):
		return append(out, Finding{"push slot", Warn, "slot " + cfg.Slot + " does not exist yet", "start keapsync serve once; it creates the slot"})
	case err != nil:
		return append(out, Finding{"push slot", Fail, err.Error(), ""})
	case status == "lost":
		return append(out, Finding{"push slot", Fail, "slot " + cfg.Slot + " was invalidated: it fell more than max_slot_wal_keep_size behind",
			"drop it (select pg_drop_replication_slot('" + cfg.Slot + "')), start keapsync serve, then run keapsync reconcile: edits made meanwhile were not pushed"})
	case status == "unreserved" || safe != nil && *safe < cfg.MaxSlotLag/4:
		return append(out, Finding{"push slot", Fail, fmt.Sprintf("close to invalidation (wal_status %s, %s left)", status, mib(safe)),
			"start keapsync serve now so the slot catches up (see docs/runbook.md, \"WAL pile-up\")"})
	case lag != nil && *lag > cfg.MaxSlotLag:
		return append(out, Finding{"push slot", Fail, fmt.Sprintf("retains %d MiB of WAL", *lag>>20),
			"WAL is piling up: start keapsync serve (or see docs/runbook.md, \"WAL pile-up\")"})
	}
	detail := "idle (no sidecar attached)"
	if active {
		detail = "held by a running sidecar"
	}
	if lag != nil {
		detail += fmt.Sprintf(", lag %d KiB", *lag>>10)
	}
	if safe != nil {
		detail += ", " + mib(safe) + " before max_slot_wal_keep_size invalidates it"
	}
	return append(out, Finding{"push slot", OK, detail, ""})
}

func mib(n *int64) string {
	if n == nil {
		return "unlimited"
	}
	return fmt.Sprintf("%d MiB", *n>>20)
}

func checkRights(ctx context.Context, db DB) []Finding {
	missing, err := MissingRights(ctx, db)
	switch {
	case err != nil:
		return []Finding{{"role rights", Fail, err.Error(), ""}}
	case len(missing) == 0 || len(missing) == 1 && missing[0].Right == RightReplication:
		return []Finding{{"role rights", OK, "the database role holds every right the sidecar uses", ""}}
	}
	out := []Finding{}
	for _, m := range missing {
		if m.Right == RightReplication {
			continue // the replication check reports it
		}
		out = append(out, Finding{"role rights", Fail, "lacks " + m.Right, m.Fix + " (as the owner), or connect as keapsync_sidecar"})
	}
	return out
}

func checkMigrations(ctx context.Context, db DB, local []migrate.Migration) []Finding {
	m := &migrate.Migrator{Migrations: local}
	pending, err := m.Pending(ctx, db)
	if err != nil {
		return []Finding{{"migrations", Fail, err.Error(), "upgrade keapsync, or check DATABASE_URL"}}
	}
	if len(pending) > 0 {
		return []Finding{{"migrations", Fail, fmt.Sprintf("%d of %d pending (first %s)", len(pending), len(local), pending[0].File),
			"run keapsync migrate (or keapsync supabase install, then supabase db push)"}}
	}
	return []Finding{{"migrations", OK, fmt.Sprintf("%d keapsync migrations applied", len(local)), ""}}
}

// checkAccounts reports each account's state as keapsync.account_state words it (the same line
// as the dashboard, /readyz and auth status), then what its tokens and hooks need soon.
func checkAccounts(ctx context.Context, db DB, now time.Time) []Finding {
	states, err := accountstate.List(ctx, db)
	if err != nil {
		return []Finding{{"accounts", Fail, err.Error(), ""}}
	}
	type extra struct {
		access, refresh *time.Time
		verified, hooks int
	}
	more := map[string]extra{}
	rows, err := db.Query(ctx, sqlAccounts)
	if err != nil {
		return []Finding{{"accounts", Fail, err.Error(), ""}}
	}
	var id string
	var e extra
	if _, err := pgx.ForEachRow(rows, []any{&id, &e.access, &e.refresh, &e.verified, &e.hooks}, func() error {
		more[id] = e
		return nil
	}); err != nil {
		return []Finding{{"accounts", Fail, err.Error(), ""}}
	}
	var out []Finding
	for _, a := range states {
		check := "account " + a.Display()
		level := OK
		switch {
		case a.State == accountstate.Paused:
			level = Warn
		case !a.State.Healthy():
			level = Fail
		}
		out = append(out, Finding{check, level, a.Summary(), a.Fix()})
		if !a.State.CanSync() {
			continue // tokens and hooks matter once it syncs
		}
		e := more[a.ID]
		switch {
		case e.refresh != nil && e.refresh.Sub(now) < 7*24*time.Hour:
			out = append(out, Finding{check + " tokens", Warn, "refresh token expires " + e.refresh.Format(time.RFC3339),
				"keep keapsync serve running (it refreshes ahead), or run keapsync auth refresh"})
		case e.access != nil && e.access.Before(now):
			out = append(out, Finding{check + " tokens", Warn, "access token expired " + e.access.Format(time.RFC3339),
				"keapsync serve refreshes it; or run keapsync auth refresh"})
		}
		if e.hooks == 0 || e.verified < e.hooks {
			out = append(out, Finding{check + " hooks", Warn, fmt.Sprintf("%d of %d hooks verified", e.verified, e.hooks),
				"run keapsync hooks ensure --public-url <where Keap reaches serve>"})
		}
	}
	// Work that waits and does not move (keapsync.stalls, at the default thresholds): what
	// /readyz fails on.
	stalls, err := accountstate.Stalls(ctx, db, accountstate.Thresholds{})
	if err != nil {
		return append(out, Finding{"stalls", Fail, err.Error(), ""})
	}
	names := map[string]string{}
	for _, a := range states {
		names[a.ID] = a.Display()
	}
	for _, st := range stalls {
		check := "stall " + st.Path
		if st.AccountID != "" {
			check = "account " + names[st.AccountID] + " " + st.Path
		}
		out = append(out, Finding{check, Fail, st.Summary(),
			"is keapsync serve running? restart it first; docs/runbook.md (Stalls) says where to look"})
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
