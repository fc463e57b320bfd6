package dashboard

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/accountstate"
)

type overviewData struct {
	Contacts, Orders   int64
	NewThisWeek        int64
	Revenue12m         float64
	ActiveSubs         int64
	MRR                float64
	State              accountstate.Account // keapsync.account_state: the one truth
	Conflicts, Letters int64
	Weekly, Monthly    chart
	Tags               chart
}

// Overview queries. Every one names the account the person picked; RLS decides whether they may.
// They read the KPI views, which read per-account summaries kept by triggers (migration
// 20261127095000_keapsync_kpi_summaries.sql): a few hundred rows per account whatever its size.
const (
	sqlOverviewTotals = `select coalesce((select contacts from keapsync.kpi_totals where account_id = $1), 0),
       coalesce((select orders from keapsync.kpi_totals where account_id = $1), 0),
       coalesce((select active_subscriptions from keapsync.kpi_subscriptions where account_id = $1), 0),
       coalesce((select mrr from keapsync.kpi_subscriptions where account_id = $1), 0)::float8,
       coalesce((select conflicts_open from keapsync.sync_status where account_id = $1), 0),
       coalesce((select dead_letters from keapsync.sync_status where account_id = $1), 0)`
	sqlOverviewWeekly = `select week, new_contacts from keapsync.kpi_contacts_weekly
 where account_id = $1 and week > date_trunc('week', $2::timestamptz) - interval '26 weeks'
   and week <= $2::timestamptz
 order by week`
	sqlOverviewMonthly = `select month, orders, revenue::float8 from keapsync.kpi_orders_monthly
 where account_id = $1 and month > date_trunc('month', $2::timestamptz) - interval '12 months'
   and month <= $2::timestamptz
 order by month`
	// A tag applied in Keap before the tag itself was fetched has no name here yet.
	sqlOverviewTags = `select coalesce(name, 'Tag ' || coalesce(tag_keap_id, tag_id)), contacts
  from keapsync.kpi_top_tags where account_id = $1
 order by contacts desc, name limit 8`
)

func (s *Server) overview(w http.ResponseWriter, r *http.Request, u *user) error {
	v := &view{Title: "Overview", Nav: "overview", User: u, CSRF: u.CSRF}
	var d overviewData
	now := s.cfg.Now()
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		ctx, acct := r.Context(), v.Account.ID
		if err := tx.QueryRow(ctx, sqlOverviewTotals, acct).Scan(&d.Contacts, &d.Orders, &d.ActiveSubs,
			&d.MRR, &d.Conflicts, &d.Letters); err != nil {
			return err
		}
		st, _, err := accountstate.Get(ctx, tx, acct)
		if err != nil {
			return err
		}
		d.State = st
		var weekly, monthly, tags []point
		rows, _ := tx.Query(ctx, sqlOverviewWeekly, acct, now)
		var wk time.Time
		var n int64
		if _, err := pgx.ForEachRow(rows, []any{&wk, &n}, func() error {
			weekly = append(weekly, point{Label: wk.Format("Jan 2"), Value: float64(n), Display: group(itoa(n)) + " new"})
			return nil
		}); err != nil {
			return err
		}
		if len(weekly) > 0 && wk.Equal(truncWeek(now)) {
			d.NewThisWeek = n
		}
		rows, _ = tx.Query(ctx, sqlOverviewMonthly, acct, now)
		var month time.Time
		var rev float64
		if _, err := pgx.ForEachRow(rows, []any{&month, &n, &rev}, func() error {
			monthly = append(monthly, point{Label: month.Format("Jan"), Value: rev,
				Display: funcs["money"].(func(float64) string)(rev) + " from " + group(itoa(n)) + " orders"})
			d.Revenue12m += rev
			return nil
		}); err != nil {
			return err
		}
		rows, _ = tx.Query(ctx, sqlOverviewTags, acct)
		var name string
		if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error {
			tags = append(tags, point{Label: name, Value: float64(n), Display: group(itoa(n)) + " contacts"})
			return nil
		}); err != nil {
			return err
		}
		d.Weekly = barChart("New contacts per week", weekly)
		d.Monthly = barChart("Revenue per month", monthly)
		d.Tags = hbarChart("Top tags", tags)
		return nil
	})
	if err != nil {
		return err
	}
	v.Data = &d
	return s.render(w, r, http.StatusOK, "overview", v)
}

// truncWeek matches date_trunc('week', t) in UTC: Monday 00:00.
func truncWeek(t time.Time) time.Time {
	t = t.UTC().Truncate(24 * time.Hour)
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
}
