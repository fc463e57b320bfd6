package accountstate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Stall paths, the values of keapsync.stalls.path.
const (
	PathInbox     = "inbox"
	PathPush      = "push"
	PathSlot      = "slot"
	PathReconcile = "reconcile"
)

// Paths are every path keapsync.stalls watches (metrics export a series for each, 0 or 1).
var Paths = []string{PathInbox, PathPush, PathSlot, PathReconcile}

// Thresholds say how long work may wait with nothing advancing before the path counts as
// stalled. Reconcile runs on a schedule, so its threshold is a multiple of that schedule.
type Thresholds struct {
	Stall     time.Duration // inbox, push queue, slot (default 15 minutes)
	Reconcile time.Duration // default 1 hour
}

// WithDefaults fills unset thresholds.
func (t Thresholds) WithDefaults() Thresholds {
	if t.Stall <= 0 {
		t.Stall = 15 * time.Minute
	}
	if t.Reconcile <= 0 {
		t.Reconcile = time.Hour
	}
	return t
}

// Stall is one row of keapsync.stalls: work waits on a path and nothing advanced.
type Stall struct {
	AccountID    string     `json:"account_id,omitempty"` // empty for the slot (shared by all accounts)
	Path         string     `json:"path"`
	WaitingSince *time.Time `json:"waiting_since,omitempty"`
	LastProgress *time.Time `json:"last_progress_at,omitempty"`
	Detail       string     `json:"detail"`
}

// Summary is the line every surface shows for a stall.
func (s Stall) Summary() string {
	out := "stalled " + s.Path + ": " + s.Detail
	if s.LastProgress != nil {
		out += ", nothing advanced since " + stamp(*s.LastProgress)
	} else {
		out += ", nothing advanced yet"
	}
	return out
}

// Key names the stall for a person and for deduplication: path, and the account when it has one.
func (s Stall) Key() string {
	if s.AccountID == "" {
		return s.Path
	}
	return s.Path + "/" + s.AccountID
}

const sqlStalls = `select coalesce(account_id::text, ''), path, waiting_since, last_progress_at, detail
  from keapsync.stalls(make_interval(secs => $1), make_interval(secs => $2)) order by path, account_id`

// Stalls reads keapsync.stalls with the thresholds.
func Stalls(ctx context.Context, q Querier, t Thresholds) ([]Stall, error) {
	t = t.WithDefaults()
	return readStalls(ctx, q, sqlStalls, t.Stall.Seconds(), t.Reconcile.Seconds())
}

const sqlMyStalls = `select coalesce(account_id::text, ''), path, waiting_since, last_progress_at, detail
  from keapsync.my_stalls(make_interval(secs => $1), make_interval(secs => $2))
 where account_id is null or account_id::text = $3 order by path`

// StallsOf reads the stalls of one account and the slot's as the signed-in person
// (keapsync.my_stalls: only accounts they belong to), for the dashboard.
func StallsOf(ctx context.Context, q Querier, t Thresholds, account string) ([]Stall, error) {
	t = t.WithDefaults()
	return readStalls(ctx, q, sqlMyStalls, t.Stall.Seconds(), t.Reconcile.Seconds(), account)
}

// readStalls runs one of the stall queries, whose rows all have scanStall's columns.
func readStalls(ctx context.Context, q Querier, sql string, args ...any) ([]Stall, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read stalls: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanStall)
	if err != nil {
		return nil, fmt.Errorf("read stalls: %w", err)
	}
	return out, nil
}

func scanStall(r pgx.CollectableRow) (Stall, error) {
	var s Stall
	err := r.Scan(&s.AccountID, &s.Path, &s.WaitingSince, &s.LastProgress, &s.Detail)
	return s, err
}
