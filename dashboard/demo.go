package dashboard

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DemoAccountID is the account supabase/seed.sql creates.
const DemoAccountID = "00000000-0000-4000-8000-0000000000de"

// SeedDemoConflict leaves one open conflict to resolve in the demo (and the tests): the contact
// with the given Keap id gets given_name localName here and keapName in Keap, under a manual
// policy for that field. It goes through the same SQL as real sync (a local UPDATE, then
// keapsync.apply_keap_record), so the conflict is genuine. Run it as the database owner.
func SeedDemoConflict(ctx context.Context, db *pgxpool.Pool, account string, keapContactID int64, localName, keapName string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{sqlDemoManual, []any{account}},
			{sqlDemoLocalEdit, []any{account, keapContactID, localName}},
			{sqlDemoKeapEdit, []any{account, keapContactID, keapName}},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
				return fmt.Errorf("seed demo conflict: %w", err)
			}
		}
		return nil
	})
}

const (
	sqlDemoManual = `insert into keapsync.conflict_policies (account_id, object_type, field, policy)
values ($1, 'contact', 'given_name', 'manual')
on conflict (account_id, object_type, field) do update set policy = 'manual'`
	sqlDemoLocalEdit = `update keap.contacts set given_name = $3 where account_id = $1 and keap_id = $2`
	// Keap's version: the object as Keap last sent it, renamed and one second newer than now.
	sqlDemoKeapEdit = `select keapsync.apply_keap_record($1, 'contact',
  (select keap_object from keap.contacts where account_id = $1 and keap_id = $2)
  || jsonb_build_object('given_name', $3::text,
       'last_updated', to_char((clock_timestamp() + interval '1 second') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))`
)
