package supabase_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// Writes of concurrent transactions, each a few statements over shared accounts and buckets,
// some rolled back. Each statement names its writer ($2) and touches only that writer's rows, as
// separate sync paths would: any wait or deadlock between writers could only come from the
// summaries.
var kpiWrites = []string{
	`with c as (
	   insert into keap.contacts (account_id, given_name, date_created)
	   select $1, $2, timestamptz '2026-01-05' + (random() * 200)::int * interval '1 day' from generate_series(1, $3::int)
	   returning account_id, id)
	 insert into keap.contact_tags (account_id, contact_id, tag_id)
	 select c.account_id, c.id, t.id from c join keap.tags t on t.account_id = c.account_id and t.keap_id = 1 + c.id % 5`,
	`update keap.contacts set date_created = date_created + ($3::int - 25) * interval '1 day'
	  where id in (select id from keap.contacts where given_name = $2 and account_id = $1 limit $3)`,
	`update keap.contacts set account_id = $1
	  where id in (select id from keap.contacts c where given_name = $2 and account_id <> $1
	                  and not exists (select 1 from keap.contact_tags ct where ct.contact_id = c.id) limit 3 + $3 / 10)`,
	`delete from keap.contacts where id in (select id from keap.contacts where given_name = $2 and account_id = $1 limit 1 + $3 / 5)`,
	`insert into keap.orders (account_id, title, total, total_paid, order_date)
	 select $1, $2, $3 + g, g, timestamptz '2026-01-01' + (random() * 300)::int * interval '1 day' from generate_series(1, 1 + $3::int / 5) g`,
	`update keap.orders set total = total + 1, order_date = order_date + interval '1 month'
	  where id in (select id from keap.orders where title = $2 and account_id = $1 limit $3)`,
	`delete from keap.orders where id in (select id from keap.orders where title = $2 and account_id = $1 limit 1 + $3 / 10)`,
	`insert into keap.subscriptions (account_id, product_id, active, billing_amount, billing_cycle, quantity)
	 values ($1, hashtext($2), $3 % 2 = 0, $3, (array['MONTH', 'YEAR', 'WEEK'])[1 + $3 % 3], 1)`,
	`update keap.subscriptions set active = not active
	  where id in (select id from keap.subscriptions where product_id = hashtext($2) and account_id = $1 limit 1 + $3 % 2)`,
}

// Every summary as one jsonb value: the sum of each bucket, in key order, and how many rows
// beyond one per bucket there are (writers that overlapped leave a bucket's rows unmerged).
const sqlKPISnapshot = `select jsonb_build_array(
  (select jsonb_agg(k order by account_id, week) from (select account_id, week, sum(contacts) from keapsync.kpi_contacts_by_week
     group by 1, 2 having sum(contacts) <> 0) k),
  (select jsonb_agg(k order by account_id, month) from (select account_id, month, sum(orders), sum(revenue), sum(paid)
     from keapsync.kpi_orders_by_month group by 1, 2 having sum(orders) <> 0 or sum(revenue) <> 0 or sum(paid) <> 0) k),
  (select jsonb_agg(k order by account_id, tag_id) from (select account_id, tag_id, sum(contacts) from keapsync.kpi_tag_counts
     group by 1, 2 having sum(contacts) <> 0) k),
  (select jsonb_agg(k order by account_id) from (select account_id, sum(subscriptions), sum(active), sum(mrr)
     from keapsync.kpi_subscription_totals group by 1 having sum(subscriptions) <> 0) k))::text,
  (select count(*) from keapsync.kpi_contacts_by_week) + (select count(*) from keapsync.kpi_orders_by_month)
  + (select count(*) from keapsync.kpi_tag_counts) + (select count(*) from keapsync.kpi_subscription_totals)`

// TestKPISummariesUnderConcurrency: whatever concurrent writers commit or roll back, the
// summaries equal a from-scratch rebuild afterwards (no delta lost or counted twice), and no
// writer becomes a deadlock victim because of them. The pgTAP suite kpi_summaries.test.sql
// checks the aggregates themselves.
func TestKPISummariesUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Pool(t)
	accounts := []string{"40000000-0000-4000-8000-00000000000a", "40000000-0000-4000-8000-00000000000b"}
	for _, a := range accounts {
		if _, err := db.Exec(ctx, `with a as (insert into keapsync.accounts (id, name) values ($1, 'K') returning id)
			insert into keap.tags (account_id, keap_id, name) select a.id, g, 'T' || g from a, generate_series(1, 4) g`, a); err != nil {
			t.Fatal(err)
		}
	}
	const writers, txs = 6, 40
	var committed, rolledBack, deadlocks atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			name := "writer" + string(rune('A'+w))
			for range txs {
				err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
					for range 1 + rnd.IntN(4) {
						q := kpiWrites[rnd.IntN(len(kpiWrites))]
						if _, err := tx.Exec(ctx, q, accounts[rnd.IntN(len(accounts))], name, rnd.IntN(50)); err != nil {
							return err
						}
					}
					if rnd.IntN(5) == 0 {
						return errRollback
					}
					return nil
				})
				var pe *pgconn.PgError
				switch {
				case err == nil:
					committed.Add(1)
				case errors.Is(err, errRollback):
					rolledBack.Add(1)
				case errors.As(err, &pe) && pe.Code == "40P01":
					deadlocks.Add(1)
				default:
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d committed, %d rolled back, %d deadlock victims", committed.Load(), rolledBack.Load(), deadlocks.Load())
	if committed.Load() < writers*txs/2 {
		t.Fatalf("only %d of %d transactions committed", committed.Load(), writers*txs)
	}

	if deadlocks.Load() > 0 {
		t.Errorf("%d deadlocks between writers that share only summary buckets", deadlocks.Load())
	}

	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var kept, rebuilt string
		var rows, rebuiltRows int64
		if err := tx.QueryRow(ctx, sqlKPISnapshot).Scan(&kept, &rows); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `select keapsync.rebuild_kpi_summaries()`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, sqlKPISnapshot).Scan(&rebuilt, &rebuiltRows); err != nil {
			return err
		}
		t.Logf("%d summary rows for %d buckets", rows, rebuiltRows)
		// Compared as jsonb: numbers by value, so 519.0000000000000001 (a rebuild's sum) equals
		// 519.00000000000000010000 (a sum of deltas that carried a larger scale).
		var same bool
		if err := tx.QueryRow(ctx, `select $1::jsonb = $2::jsonb`, kept, rebuilt).Scan(&same); err != nil {
			return err
		}
		if !same {
			t.Errorf("summaries kept by the triggers differ from a rebuild:\nkept    %s\nrebuilt %s", kept, rebuilt)
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
}

var errRollback = errors.New("roll back on purpose")
