package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/objecttype"
)

type conflictRow struct {
	ID         int64
	AccountID  string
	ObjectType string
	TableName  string
	LocalID    int64
	KeapID     *int64
	Field      string
	Base       []byte
	Local      []byte
	Keap       []byte
	Policy     string
	Status     string
	Resolution *string
	Resolved   []byte
	Detected   time.Time
}

const (
	sqlConflictCols = `c.id, c.account_id::text, c.object_type, coalesce(t.table_name, ''), c.local_id, c.keap_id, c.field,
       c.base_value, c.local_value, c.keap_value, c.policy, c.status, c.resolution, c.resolved_value, c.detected_at
  from keapsync.conflicts c left join keapsync.object_types t using (object_type)`
	sqlConflictsOpen = `select ` + sqlConflictCols + `
 where c.account_id = $1 and c.status = 'open' order by c.detected_at desc, c.id desc limit 200`
	sqlConflict        = `select ` + sqlConflictCols + ` where c.id = $1`
	sqlResolve         = `select status from keapsync.resolve_conflict($1, $2, $3)`
	sqlResolveByPolicy = `select keapsync.resolve_conflicts_by_policy($1, $2, nullif($3, ''))`
	sqlObjectTypes     = `select object_type from keapsync.object_types order by object_type`
	// The list carries the first $2 characters of each payload and its length: one oversized
	// record must not make the page megabytes long. The whole payload is a link away.
	sqlDeadLetters = `select id, source, object_type, keap_id, local_id, error, http_status, attempts, status,
       first_failed_at, last_failed_at, left(payload::text, $2), coalesce(length(payload::text), 0)
  from keapsync.dead_letters where account_id = $1 and status in ('parked', 'retry')
 order by last_failed_at desc, id desc limit 200`
	sqlDeadLetterPayload = `select payload from keapsync.dead_letters where id = $1 and payload is not null`
	sqlRetryDeadLetter   = `select status from keapsync.retry_dead_letter($1)`
	sqlDiscardDeadLetter = `select status from keapsync.discard_dead_letter($1)`
	sqlHistory           = `select id, op, origin, changed, actor::text, at, rolled_back_by
  from keapsync.change_history where account_id = $1 and table_name = $2 and row_id = $3
 order by id desc limit 100`
	sqlRollback       = `select keapsync.rollback_change($1)`
	sqlPrunedWindow   = `select keapsync.history_window_of_pruned($1)`
	sqlHistoryAccount = `select account_id::text, table_name, row_id from keapsync.change_history where id = $1`
)

type conflictsData struct {
	Open  []conflictRow
	Types []string
}

func (s *Server) conflicts(w http.ResponseWriter, r *http.Request, u *user) error {
	v := &view{Title: "Conflicts", Nav: "conflicts", User: u, CSRF: u.CSRF}
	d := &conflictsData{}
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		var err error
		rows, _ := tx.Query(r.Context(), sqlConflictsOpen, v.Account.ID)
		if d.Open, err = pgx.CollectRows(rows, pgx.RowToStructByPos[conflictRow]); err != nil {
			return err
		}
		rows, _ = tx.Query(r.Context(), sqlObjectTypes)
		d.Types, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return err
	}
	v.Data = d
	return s.render(w, r, http.StatusOK, "conflicts", v)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &pageError{Status: 404, Code: "not_found", Msg: "No such item."}
	}
	return id, nil
}

func (s *Server) conflict(w http.ResponseWriter, r *http.Request, u *user) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	v := &view{Title: "Conflict", Nav: "conflicts", User: u, CSRF: u.CSRF}
	var c conflictRow
	err = s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		rows, _ := tx.Query(r.Context(), sqlConflict, id)
		c, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[conflictRow])
		if err == pgx.ErrNoRows {
			return &pageError{Status: 404, Code: "not_found", Msg: "No such conflict, or it is in an account you are not a member of."}
		} else if err != nil {
			return err
		}
		// The conflict names its account: show the pages of that one.
		q := r.URL.Query()
		q.Set("account", c.AccountID)
		r.Form = q
		return s.loadAccounts(r, tx, v)
	})
	if err != nil {
		return err
	}
	v.Data = &c
	return s.render(w, r, http.StatusOK, "conflict", v)
}

// resolveConflict calls keapsync.resolve_conflict: the same as `keapsync conflicts resolve` and
// `select keapsync.resolve_conflict(id, choice, value)`.
func (s *Server) resolveConflict(w http.ResponseWriter, r *http.Request, u *user) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	choice := r.PostFormValue("choice")
	var value []byte
	if choice == "value" {
		value = editedValue(r.PostFormValue("value"))
	}
	var account string
	err = s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(r.Context(), sqlResolve, id, choice, value).Scan(&status); err != nil {
			return err
		}
		return tx.QueryRow(r.Context(), "select account_id::text from keapsync.conflicts where id = $1", id).Scan(&account)
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/conflicts?account="+url.QueryEscape(account)+"&done=resolved", http.StatusSeeOther)
	return nil
}

// editedValue reads the edited value: JSON if it parses (numbers, null, objects), else the text
// as a JSON string, so a person can type a name without quoting it.
func editedValue(s string) []byte {
	t := strings.TrimSpace(s)
	if t != "" && json.Valid([]byte(t)) {
		return []byte(t)
	}
	b, _ := json.Marshal(s)
	return b
}

func (s *Server) resolveBulk(w http.ResponseWriter, r *http.Request, u *user) error {
	account := r.PostFormValue("account")
	err := s.asUser(r.Context(), u, 60*time.Second, func(tx pgx.Tx) error {
		var n int
		return tx.QueryRow(r.Context(), sqlResolveByPolicy, account, r.PostFormValue("policy"), r.PostFormValue("type")).Scan(&n)
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/conflicts?account="+url.QueryEscape(account)+"&done=bulk", http.StatusSeeOther)
	return nil
}

type deadLetterRow struct {
	ID          int64
	Source      string
	ObjectType  string
	KeapID      *int64
	LocalID     *int64
	Error       string
	HTTPStatus  *int32
	Attempts    int32
	Status      string
	FirstFailed time.Time
	LastFailed  time.Time
	Payload     *string // the first payloadPreview characters
	PayloadLen  int64   // of the whole payload, in characters
}

// payloadPreview is how much of a payload the dead-letters page shows inline.
const payloadPreview = 4096

// Truncated: the page shows only the start of the payload.
func (d deadLetterRow) Truncated() bool { return d.PayloadLen > payloadPreview }

// PayloadText is the payload as shown: indented when whole, the raw start when truncated.
func (d deadLetterRow) PayloadText() string {
	if d.Payload == nil {
		return ""
	}
	if d.Truncated() {
		return *d.Payload + "…"
	}
	return indentJSON([]byte(*d.Payload))
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request, u *user) error {
	v := &view{Title: "Dead letters", Nav: "deadletters", User: u, CSRF: u.CSRF}
	var list []deadLetterRow
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		var err error
		rows, _ := tx.Query(r.Context(), sqlDeadLetters, v.Account.ID, payloadPreview)
		list, err = pgx.CollectRows(rows, pgx.RowToStructByPos[deadLetterRow])
		return err
	})
	if err != nil {
		return err
	}
	v.Data = list
	return s.render(w, r, http.StatusOK, "deadletters", v)
}

// deadLetterPayload serves one dead letter's whole payload (RLS decides whether the person may
// see it), as a download rather than a page.
func (s *Server) deadLetterPayload(w http.ResponseWriter, r *http.Request, u *user) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var payload []byte
	err = s.asUser(r.Context(), u, 30*time.Second, func(tx pgx.Tx) error {
		err := tx.QueryRow(r.Context(), sqlDeadLetterPayload, id).Scan(&payload)
		if errors.Is(err, pgx.ErrNoRows) {
			return &pageError{Status: 404, Code: "not_found", Msg: "No such dead letter, or it is in an account you are not a member of."}
		}
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="dead-letter-%d.json"`, id))
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(payload)
	return err
}

func (s *Server) deadLetterAction(w http.ResponseWriter, r *http.Request, u *user) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, done := sqlRetryDeadLetter, "retry"
	switch r.PathValue("action") {
	case "retry":
	case "discard":
		q, done = sqlDiscardDeadLetter, "discarded"
	default:
		return &pageError{Status: 404, Code: "not_found", Msg: "No such action."}
	}
	err = s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		var status string
		return tx.QueryRow(r.Context(), q, id).Scan(&status)
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/dead-letters?account="+url.QueryEscape(r.PostFormValue("account"))+"&done="+done, http.StatusSeeOther)
	return nil
}

type historyRow struct {
	ID         int64
	Op, Origin string
	Changed    []byte
	Actor      *string
	At         time.Time
	RolledBack *int64
}

type historyData struct {
	Table string
	Row   int64
	Rows  []historyRow
}

// historyTables are the tables whose records have a history page: every synced type's.
var historyTables = func() map[string]bool {
	out := map[string]bool{}
	for _, t := range objecttype.All {
		out[t.Table] = true
	}
	return out
}()

func (s *Server) history(w http.ResponseWriter, r *http.Request, u *user) error {
	v := &view{Title: "Change history", Nav: "data", User: u, CSRF: u.CSRF}
	d := &historyData{Table: r.URL.Query().Get("table")}
	row, err := strconv.ParseInt(r.URL.Query().Get("row"), 10, 64)
	if !historyTables[d.Table] || err != nil {
		return &pageError{Status: 400, Code: "bad_request", Msg: "Open a record's history from the Data or Conflicts page."}
	}
	d.Row = row
	err = s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		var err error
		rows, _ := tx.Query(r.Context(), sqlHistory, v.Account.ID, d.Table, d.Row)
		d.Rows, err = pgx.CollectRows(rows, pgx.RowToStructByPos[historyRow])
		return err
	})
	if err != nil {
		return err
	}
	v.Data = d
	return s.render(w, r, http.StatusOK, "history", v)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, u *user) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var account, table string
	var row int64
	err = s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		var n *int64
		if err := tx.QueryRow(r.Context(), sqlRollback, id).Scan(&n); err != nil {
			return err
		}
		return tx.QueryRow(r.Context(), sqlHistoryAccount, id).Scan(&account, &table, &row)
	})
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "P0002" {
		// Not there: pruned (older than its account's history window), or never the person's.
		var days *int
		if s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
			return tx.QueryRow(r.Context(), sqlPrunedWindow, id).Scan(&days)
		}) == nil && days != nil {
			// (Err is not the database's "no such change", which the renderer would make a 404.)
			return &pageError{Status: http.StatusGone, Code: "pruned", Err: fmt.Errorf("rollback change %d: pruned", id),
				Msg: fmt.Sprintf("Change %d is older than the history window (%d days) and was pruned: it can no longer be rolled back.", id, *days)}
		}
	}
	if err != nil {
		return err
	}
	q := url.Values{"account": {account}, "table": {table}, "row": {itoa(row)}, "done": {"rollback"}}
	http.Redirect(w, r, "/history?"+q.Encode(), http.StatusSeeOther)
	return nil
}
