package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Roles keapsync's migrations create. Roles belong to the cluster, not the database: one still
// used by another database is kept and said so.
var Roles = []string{"keapsync_sidecar", "keapsync_dashboard", "keap_analyst"}

// Schemas keapsync's migrations create.
var Schemas = []string{"keap", "keapsync"}

// UninstallConfig names the push path's publication and slot (defaults keapsync_push).
type UninstallConfig struct {
	Publication, Slot string
}

// DependentsError: objects that are not keapsync's depend on keapsync's, so removing keapsync
// would remove them too. Nothing was removed.
type DependentsError struct{ Objects []string }

func (e *DependentsError) Error() string {
	return "these objects of yours depend on keapsync's and would be dropped with it; drop or change them first " +
		"(nothing was removed):\n  " + strings.Join(e.Objects, "\n  ")
}

const (
	// Objects outside keap and keapsync that depend on something inside them. keapsync's own such
	// objects (its policies on realtime.messages) are named keapsync_*.
	sqlDependents = `
with ours as (select oid from pg_namespace where nspname = any($1))
select distinct o.type || ' ' || o.identity
  from pg_depend d
  cross join lateral pg_identify_object(d.classid, d.objid, d.objsubid) o
  cross join lateral pg_identify_object(d.refclassid, d.refobjid, 0) r
 where d.deptype in ('n', 'a')
   and (r.schema = any($1) or (d.refclassid = 'pg_namespace'::regclass and d.refobjid in (select oid from ours)))
   -- A trigger, policy, rule or default has no schema of its own: it lives where its table does.
   and coalesce(o.schema, (select t.schema from pg_depend a cross join lateral pg_identify_object(a.refclassid, a.refobjid, 0) t
                            where a.classid = d.classid and a.objid = d.objid and a.deptype in ('a', 'i') and t.schema is not null
                            limit 1), '') <> all($1)
   and not (d.classid = 'pg_namespace'::regclass and d.objid in (select oid from ours))
   and d.classid <> 'pg_default_acl'::regclass -- dropped with the schema
   and not (o.type = 'policy' and o.name like 'keapsync\_%')
 order by 1`
	sqlSlotHolder   = `select coalesce(active_pid, 0) from pg_replication_slots where slot_name = $1`
	sqlDropSlot     = `select pg_drop_replication_slot($1)`
	sqlOwnPolicies  = `select format('%I.%I', schemaname, tablename), policyname from pg_policies where policyname like 'keapsync\_%' and schemaname <> all($1)`
	sqlHistoryOwned = `delete from supabase_migrations.schema_migrations where version = any($1) or name like 'keapsync\_%' returning version`
	sqlHasHistory   = `select to_regclass('supabase_migrations.schema_migrations') is not null`
	sqlSchemaExists = `select exists (select 1 from pg_namespace where nspname = $1)`
	sqlPubExists    = `select exists (select 1 from pg_publication where pubname = $1)`
	sqlRoleExists   = `select exists (select 1 from pg_roles where rolname = $1)`
	// keapsync_sidecar holds rights wherever keapsync is installed (pg_shdepend sees every database).
	sqlInstalledElsewhere = `select exists (select 1 from pg_shdepend s join pg_roles r on r.oid = s.refobjid
	  where r.rolname = 'keapsync_sidecar' and s.dbid <> (select oid from pg_database where datname = current_database()))`
)

// Uninstall removes keapsync from the database on conn: the push publication and slot, keapsync's
// policies outside its schemas, the keap and keapsync schemas, its rows in the migration history
// and its roles. It refuses, removing nothing, while the slot is held or while objects of the
// user's depend on keapsync's. It returns what it removed and what it kept, one line each.
func (m *Migrator) Uninstall(ctx context.Context, conn *pgx.Conn, cfg UninstallConfig) (removed, kept []string, err error) {
	if cfg.Publication == "" {
		cfg.Publication = "keapsync_push"
	}
	if cfg.Slot == "" {
		cfg.Slot = "keapsync_push"
	}
	var pid int32
	slot := true
	switch err := conn.QueryRow(ctx, sqlSlotHolder, cfg.Slot).Scan(&pid); {
	case errors.Is(err, pgx.ErrNoRows):
		slot = false
	case err != nil:
		return nil, nil, fmt.Errorf("read replication slot %s: %w", cfg.Slot, err)
	case pid != 0:
		return nil, nil, fmt.Errorf("replication slot %s is held by server process %d: stop keapsync serve first (nothing was removed)", cfg.Slot, pid)
	}
	rows, _ := conn.Query(ctx, sqlDependents, Schemas)
	deps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("look for objects that depend on keapsync: %w", err)
	}
	if len(deps) > 0 {
		return nil, nil, &DependentsError{Objects: deps}
	}

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		removed = nil
		if exists(ctx, tx, sqlPubExists, cfg.Publication) {
			if _, err := tx.Exec(ctx, "drop publication "+pgx.Identifier{cfg.Publication}.Sanitize()); err != nil {
				return fmt.Errorf("drop publication %s: %w", cfg.Publication, err)
			}
			removed = append(removed, "publication "+cfg.Publication)
		}
		rows, _ := tx.Query(ctx, sqlOwnPolicies, Schemas)
		type policy struct{ Table, Name string }
		policies, err := pgx.CollectRows(rows, pgx.RowToStructByPos[policy])
		if err != nil {
			return fmt.Errorf("list keapsync's policies: %w", err)
		}
		for _, p := range policies {
			if _, err := tx.Exec(ctx, "drop policy "+pgx.Identifier{p.Name}.Sanitize()+" on "+p.Table); err != nil {
				return fmt.Errorf("drop policy %s on %s: %w", p.Name, p.Table, err)
			}
			removed = append(removed, "policy "+p.Name+" on "+p.Table)
		}
		for _, s := range Schemas {
			if !exists(ctx, tx, sqlSchemaExists, s) {
				continue
			}
			if _, err := tx.Exec(ctx, "drop schema "+pgx.Identifier{s}.Sanitize()+" cascade"); err != nil {
				return fmt.Errorf("drop schema %s: %w", s, err)
			}
			removed = append(removed, "schema "+s+" and everything in it")
		}
		var history bool
		if err := tx.QueryRow(ctx, sqlHasHistory).Scan(&history); err != nil || !history {
			return err
		}
		versions := make([]string, len(m.Migrations))
		for i, mig := range m.Migrations {
			versions[i] = mig.Version
		}
		rows, _ = tx.Query(ctx, sqlHistoryOwned, versions)
		gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("remove keapsync's migration history: %w", err)
		}
		if len(gone) > 0 {
			removed = append(removed, fmt.Sprintf("%d rows of supabase_migrations.schema_migrations (keapsync's)", len(gone)))
		}
		// The roles migration lets keapsync_sidecar read the history (doctor's pending check);
		// left granted, that right alone would keep the role from being dropped below.
		for _, r := range Roles {
			if !exists(ctx, tx, sqlRoleExists, r) {
				continue
			}
			for _, on := range []string{"table supabase_migrations.schema_migrations", "schema supabase_migrations"} {
				if _, err := tx.Exec(ctx, "revoke all on "+on+" from "+pgx.Identifier{r}.Sanitize()); err != nil {
					return fmt.Errorf("revoke %s's rights on %s: %w", r, on, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	// Outside the transaction: dropping a slot cannot be rolled back.
	if slot {
		if _, err := conn.Exec(ctx, sqlDropSlot, cfg.Slot); err != nil {
			return removed, nil, fmt.Errorf("drop replication slot %s: %w", cfg.Slot, err)
		}
		removed = append(removed, "replication slot "+cfg.Slot)
	}
	var elsewhere bool
	if err := conn.QueryRow(ctx, sqlInstalledElsewhere).Scan(&elsewhere); err != nil {
		return removed, nil, fmt.Errorf("look for keapsync in other databases: %w", err)
	}
	for _, r := range Roles {
		if !exists(ctx, conn, sqlRoleExists, r) {
			continue
		}
		if elsewhere {
			kept = append(kept, "role "+r+" (roles belong to the cluster, and another database of it still has keapsync)")
			continue
		}
		if _, err := conn.Exec(ctx, "drop role "+pgx.Identifier{r}.Sanitize()); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "2BP01" {
				kept = append(kept, "role "+r+" (roles belong to the cluster: another database still grants it rights)")
			} else {
				kept = append(kept, fmt.Sprintf("role %s (%v)", r, err))
			}
			continue
		}
		removed = append(removed, "role "+r)
	}
	return removed, kept, nil
}

func exists(ctx context.Context, q querier, sql, name string) bool {
	var ok bool
	_ = q.QueryRow(ctx, sql, name).Scan(&ok)
	return ok
}
