// Package accountstate reads an account's one state (keapsync.account_state: needs
// re-authorization, not connected, paused, failing, catching up, in sync) and words it the same
// way for the dashboard, /readyz, `keapsync doctor` and `keapsync auth status`.
package accountstate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// State is the value of keapsync.account_state.state.
type State string

// The states, in the order keapsync.account_state tests them.
const (
	NotConnected State = "not_connected"
	NeedsReauth  State = "needs_reauth"
	Paused       State = "paused"
	Failing      State = "failing"
	CatchingUp   State = "catching_up"
	InSync       State = "in_sync"
)

// Label is how every surface names the state.
func (s State) Label() string {
	switch s {
	case NeedsReauth:
		return "needs re-authorization"
	case NotConnected:
		return "not connected"
	case Paused:
		return "paused"
	case Failing:
		return "failing"
	case CatchingUp:
		return "catching up"
	case InSync:
		return "in sync"
	}
	return string(s)
}

// Healthy: nothing a person must do (catching up is work in progress, not a fault).
func (s State) Healthy() bool { return s == InSync || s == CatchingUp }

// CanSync: work for the account runs (keapsync.account_can_sync); otherwise it waits, kept.
func (s State) CanSync() bool { return s == Failing || s == CatchingUp || s == InSync }

// NeedsPerson: nothing syncs until a person acts (connects the account again).
func (s State) NeedsPerson() bool { return s == NotConnected || s == NeedsReauth }

// Account is one row of keapsync.account_state (the JSON names are for APIs that show it).
type Account struct {
	ID           string     `json:"account_id"`
	Name         string     `json:"name"`
	Tenant       string     `json:"tenant,omitempty"`
	State        State      `json:"state"`
	Reason       string     `json:"reason,omitempty"`           // why, or with what (empty in sync)
	Since        *time.Time `json:"since,omitempty"`            // since when the state holds (failing: the oldest current failure)
	LastExchange *time.Time `json:"last_exchange_at,omitempty"` // when Keap last answered
}

// Display is the account's tenant, or its name when it has none.
func (a Account) Display() string {
	if a.Tenant != "" {
		return a.Tenant
	}
	return a.Name
}

// Summary is the one line every surface shows: the state, the reason, since when, and for an
// account in sync the last successful exchange.
func (a Account) Summary() string {
	s := a.State.Label()
	if a.Reason != "" {
		s += ": " + a.Reason
	}
	if a.State == InSync || a.State == CatchingUp {
		if a.LastExchange != nil {
			s += " (last exchange with Keap " + stamp(*a.LastExchange) + ")"
		} else {
			s += " (no exchange with Keap yet)"
		}
	} else if a.Since != nil {
		s += " (since " + stamp(*a.Since) + ")"
	}
	return s
}

// Fix says what a person does about the state ("" when nothing).
func (a Account) Fix() string {
	switch a.State {
	case NeedsReauth, NotConnected:
		return "run keapsync auth login (or connect it from /oauth/start); queued work waits and resumes"
	case Paused:
		return "an admin unpauses it in the dashboard's settings (or: update keapsync.accounts set paused = false)"
	case Failing:
		return "see the dashboard's Sync health or keapsync deadletters list; keapsync serve retries"
	}
	return ""
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Querier is what reading needs: a pool, a connection or a transaction (the dashboard's runs
// as the signed-in person, so RLS limits the rows to their accounts).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const sqlStates = `select account_id::text, name, coalesce(keap_tenant, ''), state, coalesce(reason, ''), since, last_exchange_at
  from keapsync.account_state where $1 = '' or account_id::text = $1
 order by name, account_id`

// List reads every account the reader may see.
func List(ctx context.Context, q Querier) ([]Account, error) { return read(ctx, q, "") }

// Get reads one account; ok is false when the reader cannot see it.
func Get(ctx context.Context, q Querier, account string) (Account, bool, error) {
	as, err := read(ctx, q, account)
	if err != nil || len(as) == 0 {
		return Account{}, false, err
	}
	return as[0], true, nil
}

func read(ctx context.Context, q Querier, account string) ([]Account, error) {
	rows, err := q.Query(ctx, sqlStates, account)
	if err != nil {
		return nil, fmt.Errorf("read account states: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Account, error) {
		var a Account
		err := r.Scan(&a.ID, &a.Name, &a.Tenant, &a.State, &a.Reason, &a.Since, &a.LastExchange)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("read account states: %w", err)
	}
	return out, nil
}
