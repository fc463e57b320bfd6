package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// What the sidecar's database role must hold, one row per missing right, each with the statement
// that grants it. A superuser holds everything; keapsync_sidecar is granted exactly this by the
// roles migration. The checks read the catalogue only, so they run as the role itself.
const sqlMissingRights = `
with me as (select r.rolname, r.rolsuper, r.rolreplication, r.rolbypassrls from pg_roles r where r.rolname = current_user)
select right_, fix from (
  select 'REPLICATION' as right_, format('alter role %I with replication', me.rolname) as fix, 1 as ord, '' as obj
    from me where not (me.rolsuper or me.rolreplication)
  union all
  select format('USAGE on schema %s', s), format('grant usage on schema %I to %I', s, me.rolname), 2, s
    from me, unnest(array['keap', 'keapsync']) s
   where to_regnamespace(s) is not null and not has_schema_privilege(me.rolname, s, 'USAGE')
  union all
  select format('%s on table %s', p, c.oid::regclass), format('grant %s on %s to %I', lower(p), c.oid::regclass, me.rolname), 3, c.oid::regclass::text
    from me, pg_class c join pg_namespace n on n.oid = c.relnamespace, unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
   where n.nspname in ('keap', 'keapsync') and c.relkind in ('r', 'p') and not has_table_privilege(me.rolname, c.oid, p)
  union all
  select format('` + policyRight + ` on table %s', c.oid::regclass),
         'select keapsync.grant_sidecar_rls()  -- as the tables'' owner', 4, c.oid::regclass::text
    from me, pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('keap', 'keapsync') and c.relkind in ('r', 'p') and c.relrowsecurity
     and not (me.rolsuper or me.rolbypassrls)
     and not exists (select 1 from pg_policy p where p.polrelid = c.oid and p.polcmd = '*'
                       and exists (select 1 from unnest(p.polroles) r where r = 0 or pg_has_role(me.rolname, r, 'USAGE')))
  union all
  select format('EXECUTE on function %s', f.oid::regprocedure), format('grant execute on function %s to %I', f.oid::regprocedure, me.rolname),
         5, f.oid::regprocedure::text
    from me, pg_proc f join pg_namespace n on n.oid = f.pronamespace
   where n.nspname = 'keapsync' and f.prokind = 'f' and f.prorettype <> 'trigger'::regtype
     and f.proname <> 'grant_sidecar_rls' and not has_function_privilege(me.rolname, f.oid, 'EXECUTE')
) missing order by ord, obj, right_`

// RightReplication is the role attribute logical replication needs.
const RightReplication = "REPLICATION"

// Right is one right the database role lacks, and the statement that grants it.
type Right struct{ Right, Fix string }

// MissingRights lists what the connected role lacks to run the sidecar (`serve`, backfill,
// reconcile, auth, hooks): nothing for keapsync_sidecar or a superuser.
func MissingRights(ctx context.Context, db DB) ([]Right, error) {
	rows, _ := db.Query(ctx, sqlMissingRights)
	missing, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Right])
	if err != nil {
		return nil, fmt.Errorf("read the database role's rights: %w", err)
	}
	return missing, nil
}

// IsPolicy: the right is a row-level security policy, not a grant.
func (r Right) IsPolicy() bool { return strings.HasPrefix(r.Right, policyRight) }

const policyRight = "a row-level security policy"

// RightsError names the first rights the role lacks.
type RightsError struct {
	Role    string
	Missing []Right
}

func (e *RightsError) Error() string {
	msg := fmt.Sprintf("database role %s lacks %s (as the owner: %s)", e.Role, e.Missing[0].Right, e.Missing[0].Fix)
	if len(e.Missing) > 1 {
		msg += fmt.Sprintf(" and %d more rights; keapsync doctor lists them", len(e.Missing)-1)
	}
	return msg + "; the keapsync_sidecar role has them all"
}

// CheckRights returns a *RightsError when the connected role lacks a grant the sidecar uses
// (REPLICATION only when it pushes). A table without the sidecar's policy is only a problem if
// the sidecar uses it, so those come back as unseen, for a warning.
func CheckRights(ctx context.Context, db DB, replication bool) (unseen []Right, err error) {
	missing, err := MissingRights(ctx, db)
	if err != nil {
		return nil, err
	}
	var lacking []Right
	for _, r := range missing {
		switch {
		case r.IsPolicy():
			unseen = append(unseen, r)
		case replication || r.Right != RightReplication:
			lacking = append(lacking, r)
		}
	}
	if len(lacking) == 0 {
		return unseen, nil
	}
	var role string
	if err := db.QueryRow(ctx, `select current_user`).Scan(&role); err != nil {
		return unseen, fmt.Errorf("read the database role: %w", err)
	}
	return unseen, &RightsError{Role: role, Missing: lacking}
}

// What the dashboard's role needs: to become authenticated per request (so RLS applies), and no
// way around RLS of its own.
const sqlDashboardRole = `
select r.rolname, pg_has_role(r.rolname, 'authenticated', 'MEMBER'), r.rolsuper or r.rolbypassrls,
       exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace  -- by oid: it may not use the schema
               where n.nspname = 'keapsync' and c.relname = 'oauth_tokens' and has_table_privilege(r.rolname, c.oid, 'SELECT'))
  from pg_roles r where r.rolname = current_user`

// CheckDashboardRole checks the role the dashboard connects as (keapsync_dashboard).
func CheckDashboardRole(ctx context.Context, db DB) Finding {
	var role string
	var canBecome, bypasses, readsTokens bool
	if err := db.QueryRow(ctx, sqlDashboardRole).Scan(&role, &canBecome, &bypasses, &readsTokens); err != nil {
		return Finding{"dashboard role", Fail, err.Error(), "check the dashboard's DATABASE_URL"}
	}
	switch {
	case !canBecome:
		return Finding{"dashboard role", Fail, role + " cannot become authenticated, so no query can run as the signed-in person",
			fmt.Sprintf("grant authenticated to %s (as the owner), or connect as keapsync_dashboard", pgx.Identifier{role}.Sanitize())}
	case bypasses || readsTokens:
		return Finding{"dashboard role", Warn, role + " holds more than the dashboard needs (it bypasses RLS or reads token ciphertext)",
			"connect the dashboard as keapsync_dashboard"}
	}
	return Finding{"dashboard role", OK, role + " may only act as the signed-in person", ""}
}
