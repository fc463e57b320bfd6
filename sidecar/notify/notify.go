// Package notify tells a person when keapsync needs one: an account needs re-authorization,
// Keap marked hooks Inactive, a path stalled, a record went to the dead letters. Each change of
// such a condition is posted once (Slack-compatible JSON: {"text": ...}) to a webhook URL, and
// its end is posted as a recovery. keapsync.notifications remembers what was posted, so a
// restart or a second serve process does not post it again.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

// DB is what the notifier needs: a pool (each claim commits on its own).
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Notifier posts condition changes to URL.
type Notifier struct {
	URL        string
	DB         DB
	HTTP       *http.Client  // default: 10 s timeout
	Every      time.Duration // how often conditions are read (default 30 s)
	Thresholds accountstate.Thresholds
	Log        *slog.Logger

	loop lifecycle.Loop // the scheduled checks (Start, Stop)
}

// Condition is one thing a person must look at. Seq grows when it worsens anew (a newer dead
// letter), which is posted again; otherwise a condition is posted once until it clears.
type Condition struct {
	Key     string
	Seq     int64
	Message string
}

// conditions, each keyed by kind and account: from keapsync.account_state, keapsync.ops_figures
// and keapsync.stalls (Postgres decides; this only words them).
const sqlConditions = `
select 'needs_reauth/' || s.account_id, 0::bigint,
       'keapsync: account ' || coalesce(s.keap_tenant, s.name) || ' needs re-authorization (' || coalesce(s.reason, '') ||
       '): run keapsync auth login'
  from keapsync.account_state s where s.state = 'needs_reauth'
union all
select 'hooks_inactive/' || f.account_id, 0::bigint,
       'keapsync: account ' || f.account || ': ' || f.hooks_inactive || ' REST Hook subscription(s) Inactive at Keap; serve re-verifies hourly, or run keapsync hooks ensure'
  from keapsync.ops_figures() f where f.hooks_inactive > 0
union all
select 'dead_letters/' || l.account_id, max(l.id),
       'keapsync: account ' || coalesce(min(a.keap_tenant), min(a.name)) || ': ' || count(*) ||
       ' record(s) parked in the dead letters, newest: ' || (array_agg(l.error order by l.id desc))[1] ||
       ' (keapsync deadletters list)'
  from keapsync.dead_letters l join keapsync.accounts a on a.id = l.account_id
 where l.status = 'parked' group by l.account_id`

const (
	sqlClaim = `insert into keapsync.notifications (key, seq, message) values ($1, $2, $3)
on conflict (key) do update set seq = excluded.seq, message = excluded.message, notified_at = now()
 where keapsync.notifications.seq < excluded.seq
returning key`
	sqlRelease = `delete from keapsync.notifications where key = $1 and seq = $2 returning key`
	sqlRestore = `insert into keapsync.notifications (key, message) values ($1, $2) on conflict (key) do nothing returning key`
	sqlCleared = `delete from keapsync.notifications where key <> all($1::text[]) returning key, message`
	sqlNames   = `select id::text, coalesce(keap_tenant, name) from keapsync.accounts`
)

// Start checks now and then every Every in the background until Stop or ctx ends; a failed
// check is logged and the next round retries.
func (n *Notifier) Start(ctx context.Context) error { return n.loop.Go(ctx, n.run) }

// Stop ends the checks and waits until the one in hand has finished.
func (n *Notifier) Stop() { n.loop.Stop() }

// Done is closed when the checks have ended.
func (n *Notifier) Done() <-chan struct{} { return n.loop.Done() }

// Err is why the checks ended (nil after Stop: a failed check never ends them).
func (n *Notifier) Err() error { return n.loop.Err() }

// Run is Start, then Stop when ctx ends; it returns Err.
func (n *Notifier) Run(ctx context.Context) error { return lifecycle.Run(ctx, n) }

func (n *Notifier) run(ctx context.Context) error {
	every := n.Every
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := n.Check(ctx); err != nil && ctx.Err() == nil && n.Log != nil {
			n.Log.Warn("notifications: check failed; the next round retries", "component", "notify", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Conditions reads what needs a person now.
func (n *Notifier) Conditions(ctx context.Context) ([]Condition, error) {
	rows, err := n.DB.Query(ctx, sqlConditions)
	if err != nil {
		return nil, fmt.Errorf("read conditions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Condition, error) {
		var c Condition
		err := r.Scan(&c.Key, &c.Seq, &c.Message)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read conditions: %w", err)
	}
	stalls, err := accountstate.Stalls(ctx, n.DB, n.Thresholds)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if len(stalls) > 0 {
		rows, err := n.DB.Query(ctx, sqlNames)
		if err != nil {
			return nil, fmt.Errorf("read account names: %w", err)
		}
		var id, name string
		if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error { names[id] = name; return nil }); err != nil {
			return nil, fmt.Errorf("read account names: %w", err)
		}
	}
	for _, s := range stalls {
		msg := "keapsync: " + s.Summary()
		if s.AccountID != "" {
			msg = "keapsync: account " + names[s.AccountID] + " " + s.Summary()
		}
		out = append(out, Condition{Key: "stall/" + s.Key(), Message: msg + " (see docs/runbook.md, Stalls)"})
	}
	return out, nil
}

// Check posts every condition that is new (or worse) since the last post, and a recovery for
// every condition that cleared.
func (n *Notifier) Check(ctx context.Context) error {
	conds, err := n.Conditions(ctx)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(conds))
	for _, c := range conds {
		keys = append(keys, c.Key)
		claimed, err := n.exec(ctx, sqlClaim, c.Key, c.Seq, c.Message)
		if err != nil {
			return fmt.Errorf("claim notification %s: %w", c.Key, err)
		}
		if claimed == 0 {
			continue // posted already
		}
		if err := n.post(ctx, c.Message); err != nil {
			// Not posted: forget the claim so the next round tries again.
			n.exec(ctx, sqlRelease, c.Key, c.Seq)
			return err
		}
	}
	rows, err := n.DB.Query(ctx, sqlCleared, keys)
	if err != nil {
		return fmt.Errorf("clear notifications: %w", err)
	}
	type cleared struct{ key, msg string }
	done, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cleared, error) {
		var c cleared
		err := r.Scan(&c.key, &c.msg)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("clear notifications: %w", err)
	}
	for i, c := range done {
		if err := n.post(ctx, "keapsync: recovered: "+c.msg); err != nil {
			// Not posted: put the unposted ones back so the next round tries again.
			for _, r := range done[i:] {
				n.exec(ctx, sqlRestore, r.key, r.msg)
			}
			return err
		}
	}
	return nil
}

// exec runs a statement through Query (all the notifier's DB needs) and counts the rows it returned.
func (n *Notifier) exec(ctx context.Context, sql string, args ...any) (int, error) {
	rows, err := n.DB.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	k := 0
	for rows.Next() {
		k++
	}
	return k, rows.Err()
}

// stripURL drops the URL from an HTTP client error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// post sends one Slack-compatible message.
func (n *Notifier) post(ctx context.Context, text string) error {
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := n.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL is a secret (Slack's carries a token): the error names only the failure.
		return fmt.Errorf("notify: post to the webhook: %w", stripURL(err))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("notify: the webhook answered %d", resp.StatusCode)
	}
	return nil
}
