package dashboard

import (
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// Settings are plain rows (keapsync.settings, conflict_policies, members) that RLS lets admins
// of the account change: the dashboard writes them with the same SQL a person would type.

type settingsData struct {
	DefaultPolicy    string
	PropagateDeletes bool
	Policies         []policyRow
	Members          []memberRow
	Types            []string
	Policies4        []string
	Directions       []directionRow
	Directions3      []string
}

type directionRow struct{ ObjectType, Direction string }

type policyRow struct{ ObjectType, Field, Policy string }

type memberRow struct {
	UserID, Role string
	Since        time.Time
}

const (
	sqlSettings = `select coalesce((select default_policy from keapsync.settings where account_id = $1), 'newest_wins'),
       coalesce((select propagate_deletes from keapsync.settings where account_id = $1), false)`
	sqlPolicies = `select object_type, field, policy from keapsync.conflict_policies where account_id = $1
 order by object_type, field`
	sqlMembers = `select user_id::text, role, created_at from keapsync.members where account_id = $1
 order by role, created_at`
	sqlSaveSettings = `insert into keapsync.settings (account_id, default_policy, propagate_deletes) values ($1, $2, $3)
on conflict (account_id) do update set default_policy = excluded.default_policy,
  propagate_deletes = excluded.propagate_deletes, updated_at = now()`
	sqlSavePolicy = `insert into keapsync.conflict_policies (account_id, object_type, field, policy)
values ($1, $2, coalesce(nullif($3, ''), '*'), $4)
on conflict (account_id, object_type, field) do update set policy = excluded.policy`
	// The same one-row update a person would type; the database records it in change_history.
	sqlDirections    = `select object_type, direction from keapsync.sync_directions where account_id = $1 order by object_type`
	sqlSaveDirection = `update keapsync.sync_directions set direction = $3 where account_id = $1 and object_type = $2`
	sqlDeletePolicy  = `delete from keapsync.conflict_policies where account_id = $1 and object_type = $2 and field = $3`
	sqlSaveMember    = `insert into keapsync.members (account_id, user_id, role) values ($1, $2::uuid, $3)
on conflict (account_id, user_id) do update set role = excluded.role`
	sqlDeleteMember = `delete from keapsync.members where account_id = $1 and user_id = $2::uuid and user_id <> (select auth.uid())`
)

var policies = []string{"newest_wins", "keap_wins", "local_wins", "manual"}

var directions = []string{"both", "keap_to_postgres", "off"}

func (s *Server) settings(w http.ResponseWriter, r *http.Request, u *user) error {
	v := &view{Title: "Settings", Nav: "settings", User: u, CSRF: u.CSRF}
	d := &settingsData{Policies4: policies, Directions3: directions}
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		ctx, acct := r.Context(), v.Account.ID
		if err := tx.QueryRow(ctx, sqlSettings, acct).Scan(&d.DefaultPolicy, &d.PropagateDeletes); err != nil {
			return err
		}
		var err error
		rows, _ := tx.Query(ctx, sqlPolicies, acct)
		if d.Policies, err = pgx.CollectRows(rows, pgx.RowToStructByPos[policyRow]); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, sqlMembers, acct)
		if d.Members, err = pgx.CollectRows(rows, pgx.RowToStructByPos[memberRow]); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, sqlDirections, acct)
		if d.Directions, err = pgx.CollectRows(rows, pgx.RowToStructByPos[directionRow]); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, sqlObjectTypes)
		d.Types, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return err
	}
	v.Data = d
	return s.render(w, r, http.StatusOK, "settings", v)
}

// errNotAdmin: RLS hides rows a non-admin may not change, so an UPDATE or DELETE touches nothing
// instead of failing; the page must still say no.
var errNotAdmin = &pageError{Status: 403, Code: "forbidden", Msg: "Only an admin of this account may do this. Ask an admin to change your role."}

func (s *Server) saveSettings(w http.ResponseWriter, r *http.Request, u *user) error {
	acct := r.PostFormValue("account")
	var q string
	var args []any
	switch r.PathValue("what") {
	case "general":
		q, args = sqlSaveSettings, []any{acct, r.PostFormValue("default_policy"), r.PostFormValue("propagate_deletes") == "on"}
	case "policy":
		q, args = sqlSavePolicy, []any{acct, r.PostFormValue("object_type"), r.PostFormValue("field"), r.PostFormValue("policy")}
	case "policy-delete":
		q, args = sqlDeletePolicy, []any{acct, r.PostFormValue("object_type"), r.PostFormValue("field")}
	case "direction":
		q, args = sqlSaveDirection, []any{acct, r.PostFormValue("object_type"), r.PostFormValue("direction")}
	case "member":
		q, args = sqlSaveMember, []any{acct, r.PostFormValue("user_id"), r.PostFormValue("role")}
	case "member-delete":
		q, args = sqlDeleteMember, []any{acct, r.PostFormValue("user_id")}
	default:
		return &pageError{Status: 404, Code: "not_found", Msg: "No such setting."}
	}
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		var admin bool
		if err := tx.QueryRow(r.Context(), "select keapsync.is_admin($1)", acct).Scan(&admin); err != nil {
			return err
		}
		tag, err := tx.Exec(r.Context(), q, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 && !admin {
			return errNotAdmin
		}
		return nil
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/settings?"+url.Values{"account": {acct}, "done": {"saved"}}.Encode(), http.StatusSeeOther)
	return nil
}
