package dashboard

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/accountstate"
)

// kpis are an account's key numbers: the overview's cards and charts, and /api/v1/.../kpis.
type kpis struct {
	Contacts    int64       `json:"contacts"`
	NewThisWeek int64       `json:"new_contacts_this_week"`
	Orders      int64       `json:"orders"`
	Revenue12m  float64     `json:"revenue_12_months"`
	ActiveSubs  int64       `json:"active_subscriptions"`
	MRR         float64     `json:"mrr"`
	Weekly      []weekCount `json:"new_contacts_per_week"`
	Monthly     []monthSum  `json:"revenue_per_month"`
	TopTags     []tagCount  `json:"top_tags"`
	// Opportunities: the open pipeline by stage and what was won and lost per month.
	OpenValue   float64      `json:"open_pipeline_value"`
	OpenDeals   int64        `json:"open_opportunities"`
	Pipeline    []stageValue `json:"open_pipeline_by_stage"`
	WonLost     []monthDeals `json:"won_lost_per_month"`
	GeneratedAt time.Time    `json:"generated_at"`
}

type stageValue struct {
	Stage         string  `json:"stage"` // its name, or "Stage <Keap id>" before the stage arrived
	Opportunities int64   `json:"opportunities"`
	Value         float64 `json:"value"` // projected revenue, high else low
}

type monthDeals struct {
	Month     time.Time `json:"month"` // the 1st, 00:00 UTC
	Won       int64     `json:"won"`
	Lost      int64     `json:"lost"`
	WonValue  float64   `json:"won_value"`
	LostValue float64   `json:"lost_value"`
	Partial   bool      `json:"partial"`
}

type weekCount struct {
	Week        time.Time `json:"week"` // Monday 00:00 UTC
	NewContacts int64     `json:"new_contacts"`
	Partial     bool      `json:"partial"` // the week is still running
}

type monthSum struct {
	Month   time.Time `json:"month"` // the 1st, 00:00 UTC
	Orders  int64     `json:"orders"`
	Revenue float64   `json:"revenue"`
	Partial bool      `json:"partial"`
}

type tagCount struct {
	Name     string `json:"name"`
	Contacts int64  `json:"contacts"`
}

// syncSummary is how an account's sync is doing: the overview's Sync card and activity chart,
// and /api/v1/.../sync-status. State is the account's one state (keapsync.account_state);
// Connection is sync_status's word, kept for the API's clients.
type syncSummary struct {
	State        accountstate.Account `json:"state"` // keapsync.account_state: the one truth
	Connection   string               `json:"connection"`
	Conflicts    int64                `json:"conflicts_open"`
	DeadLetters  int64                `json:"dead_letters"`
	LastIn       *time.Time           `json:"last_change_in"`  // the last change applied from Keap
	LastOut      *time.Time           `json:"last_change_out"` // the last push Keap accepted
	InboxPending int64                `json:"hooks_waiting"`
	InboxOldest  *time.Time           `json:"hooks_waiting_since"`
	PushPending  int64                `json:"pushes_waiting"`
	PushOldest   *time.Time           `json:"pushes_waiting_since"`
	LagIn        *int64               `json:"lag_in_seconds"`  // age of the oldest hook not yet applied; null: none waits
	LagOut       *int64               `json:"lag_out_seconds"` // age of the oldest local change not yet in Keap
	Activity     []hourlySync         `json:"activity"`        // the last 48 hours, oldest first
	GeneratedAt  time.Time            `json:"generated_at"`
}

type hourlySync struct {
	Hour    time.Time `json:"hour"`
	In      int64     `json:"in"`
	Out     int64     `json:"out"`
	Partial bool      `json:"partial"`
}

// LastSync is the latest exchange either way.
func (s *syncSummary) LastSync() *time.Time {
	switch {
	case s.LastIn == nil:
		return s.LastOut
	case s.LastOut == nil || s.LastIn.After(*s.LastOut):
		return s.LastIn
	}
	return s.LastOut
}

// Overview queries. Every one names the account the person picked; RLS decides whether they may.
// They read per-account summaries kept by triggers (KPIs: 20261127095000_kpi_summaries.sql;
// activity: 20261203170000_keapsync_sync_activity.sql), a few hundred rows whatever the size.
// Periods are cut in UTC, as the summaries are; empty periods are zero, not missing.
const (
	sqlOverviewTotals = `select coalesce((select contacts from keapsync.kpi_totals where account_id = $1), 0),
       coalesce((select orders from keapsync.kpi_totals where account_id = $1), 0),
       coalesce((select active_subscriptions from keapsync.kpi_subscriptions where account_id = $1), 0),
       coalesce((select mrr from keapsync.kpi_subscriptions where account_id = $1), 0)::float8`
	sqlOverviewWeekly = `select w.week, coalesce(k.new_contacts, 0)
  from generate_series(date_trunc('week', $2::timestamptz at time zone 'UTC') - interval '25 weeks',
                       date_trunc('week', $2::timestamptz at time zone 'UTC'), interval '1 week') g(t)
 cross join lateral (select g.t at time zone 'UTC' as week) w
  left join keapsync.kpi_contacts_weekly k on k.account_id = $1 and k.week = w.week
 order by w.week`
	sqlOverviewMonthly = `select m.month, coalesce(k.orders, 0), coalesce(k.revenue, 0)::float8
  from generate_series(date_trunc('month', $2::timestamptz at time zone 'UTC') - interval '11 months',
                       date_trunc('month', $2::timestamptz at time zone 'UTC'), interval '1 month') g(t)
 cross join lateral (select g.t at time zone 'UTC' as month) m
  left join keapsync.kpi_orders_monthly k on k.account_id = $1 and k.month = m.month
 order by m.month`
	// A tag applied in Keap before the tag itself was fetched has no name here yet.
	sqlOverviewTags = `select coalesce(name, 'Tag ' || coalesce(tag_keap_id, tag_id)), contacts
  from keapsync.kpi_top_tags where account_id = $1
 order by contacts desc, name limit 8`

	// Opportunities (20261203231000_keapsync_opportunities.sql): plain views, an account's
	// pipeline being small. Stages in Keap's order, the stageless last.
	sqlOverviewPipeline = `select coalesce(stage_name, 'Stage ' || coalesce(stage_keap_id::text, '?')), opportunities, value::float8
  from keapsync.kpi_pipeline_by_stage where account_id = $1
 order by stage_order nulls last, stage_keap_id nulls last`
	sqlOverviewWonLost = `select m.month, coalesce(k.won, 0), coalesce(k.lost, 0), coalesce(k.won_value, 0)::float8, coalesce(k.lost_value, 0)::float8
  from generate_series(date_trunc('month', $2::timestamptz at time zone 'UTC') - interval '11 months',
                       date_trunc('month', $2::timestamptz at time zone 'UTC'), interval '1 month') g(t)
 cross join lateral (select g.t at time zone 'UTC' as month) m
  left join keapsync.kpi_opportunities_monthly k on k.account_id = $1 and k.month = m.month
 order by m.month`

	sqlSyncSummary = `select coalesce(s.connection, 'unknown'), coalesce(s.conflicts_open, 0), coalesce(s.dead_letters, 0),
       coalesce(s.inbox_pending, 0), s.inbox_oldest,
       (select count(*) from keapsync.push_queue q where q.account_id = $1),
       (select min(q.first_enqueued_at) from keapsync.push_queue q where q.account_id = $1),
       (select max(a.last_at) from keapsync.sync_activity a where a.account_id = $1 and a.direction = 'in'),
       (select max(a.last_at) from keapsync.sync_activity a where a.account_id = $1 and a.direction = 'out')
  from (select $1::uuid as id) x left join keapsync.sync_status s on s.account_id = x.id`
	sqlSyncActivity = `select h.hour,
       coalesce(sum(a.changes) filter (where a.direction = 'in'), 0)::bigint,
       coalesce(sum(a.changes) filter (where a.direction = 'out'), 0)::bigint
  from generate_series(date_trunc('hour', $2::timestamptz at time zone 'UTC') - interval '47 hours',
                       date_trunc('hour', $2::timestamptz at time zone 'UTC'), interval '1 hour') g(t)
 cross join lateral (select g.t at time zone 'UTC' as hour) h
  left join keapsync.sync_activity a on a.account_id = $1 and a.hour = h.hour
 group by h.hour order by h.hour`
)

// loadKPIs reads an account's key numbers as of now.
func loadKPIs(ctx context.Context, tx pgx.Tx, acct string, now time.Time) (*kpis, error) {
	k := &kpis{GeneratedAt: now.UTC(), Weekly: []weekCount{}, Monthly: []monthSum{}, TopTags: []tagCount{},
		Pipeline: []stageValue{}, WonLost: []monthDeals{}}
	if err := tx.QueryRow(ctx, sqlOverviewTotals, acct).Scan(&k.Contacts, &k.Orders, &k.ActiveSubs, &k.MRR); err != nil {
		return nil, err
	}
	thisWeek, thisMonth := truncWeek(now), truncMonth(now)
	rows, _ := tx.Query(ctx, sqlOverviewWeekly, acct, now)
	var w weekCount
	if _, err := pgx.ForEachRow(rows, []any{&w.Week, &w.NewContacts}, func() error {
		w.Week = w.Week.UTC()
		w.Partial = w.Week.Equal(thisWeek)
		if w.Partial {
			k.NewThisWeek = w.NewContacts
		}
		k.Weekly = append(k.Weekly, w)
		return nil
	}); err != nil {
		return nil, err
	}
	rows, _ = tx.Query(ctx, sqlOverviewMonthly, acct, now)
	var m monthSum
	if _, err := pgx.ForEachRow(rows, []any{&m.Month, &m.Orders, &m.Revenue}, func() error {
		m.Month = m.Month.UTC()
		m.Partial = m.Month.Equal(thisMonth)
		k.Monthly = append(k.Monthly, m)
		k.Revenue12m += m.Revenue
		return nil
	}); err != nil {
		return nil, err
	}
	rows, _ = tx.Query(ctx, sqlOverviewTags, acct)
	var t tagCount
	if _, err := pgx.ForEachRow(rows, []any{&t.Name, &t.Contacts}, func() error {
		k.TopTags = append(k.TopTags, t)
		return nil
	}); err != nil {
		return nil, err
	}
	rows, _ = tx.Query(ctx, sqlOverviewPipeline, acct)
	var sv stageValue
	if _, err := pgx.ForEachRow(rows, []any{&sv.Stage, &sv.Opportunities, &sv.Value}, func() error {
		k.Pipeline = append(k.Pipeline, sv)
		k.OpenDeals += sv.Opportunities
		k.OpenValue += sv.Value
		return nil
	}); err != nil {
		return nil, err
	}
	rows, _ = tx.Query(ctx, sqlOverviewWonLost, acct, now)
	var md monthDeals
	if _, err := pgx.ForEachRow(rows, []any{&md.Month, &md.Won, &md.Lost, &md.WonValue, &md.LostValue}, func() error {
		md.Month = md.Month.UTC()
		md.Partial = md.Month.Equal(thisMonth)
		k.WonLost = append(k.WonLost, md)
		return nil
	}); err != nil {
		return nil, err
	}
	return k, nil
}

// loadSyncSummary reads how an account's sync is doing as of now.
func loadSyncSummary(ctx context.Context, tx pgx.Tx, acct string, now time.Time) (*syncSummary, error) {
	s := &syncSummary{GeneratedAt: now.UTC(), Activity: []hourlySync{}}
	st, _, err := accountstate.Get(ctx, tx, acct)
	if err != nil {
		return nil, err
	}
	s.State = st
	if err := tx.QueryRow(ctx, sqlSyncSummary, acct).Scan(&s.Connection, &s.Conflicts, &s.DeadLetters,
		&s.InboxPending, &s.InboxOldest, &s.PushPending, &s.PushOldest, &s.LastIn, &s.LastOut); err != nil {
		return nil, err
	}
	s.LagIn, s.LagOut = age(now, s.InboxOldest), age(now, s.PushOldest)
	thisHour := now.UTC().Truncate(time.Hour)
	rows, _ := tx.Query(ctx, sqlSyncActivity, acct, now)
	var h hourlySync
	if _, err := pgx.ForEachRow(rows, []any{&h.Hour, &h.In, &h.Out}, func() error {
		h.Hour = h.Hour.UTC()
		h.Partial = h.Hour.Equal(thisHour)
		s.Activity = append(s.Activity, h)
		return nil
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// age is how long ago t was, in whole seconds; nil for nil.
func age(now time.Time, t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	d := int64(max(0, now.Sub(*t)/time.Second))
	return &d
}

type overviewData struct {
	K                         *kpis
	Sync                      *syncSummary
	Now                       time.Time
	Weekly, Monthly, Activity chart
	Tags                      chart
	Pipeline, WonLost         chart
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request, u *user) error {
	v := &view{Title: "Overview", Nav: "overview", User: u, CSRF: u.CSRF}
	d := &overviewData{Now: s.cfg.Now()}
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		if err := s.loadAccounts(r, tx, v); err != nil || v.Account == nil {
			return err
		}
		var err error
		if d.K, err = loadKPIs(r.Context(), tx, v.Account.ID, d.Now); err != nil {
			return err
		}
		d.Sync, err = loadSyncSummary(r.Context(), tx, v.Account.ID, d.Now)
		return err
	})
	if err != nil {
		return err
	}
	d.charts()
	v.Data = d
	return s.render(w, r, http.StatusOK, "overview", v)
}

// charts draws the overview's charts from its numbers.
func (d *overviewData) charts() {
	money := funcs["money"].(func(float64) string)
	var weekly, monthly, tags, in, out, pipeline, won, lost []point
	for _, w := range d.K.Weekly {
		weekly = append(weekly, point{Label: w.Week.Format("Jan 2"), Value: float64(w.NewContacts),
			Display: group(itoa(w.NewContacts)) + " new", Partial: w.Partial})
	}
	for _, m := range d.K.Monthly {
		monthly = append(monthly, point{Label: m.Month.Format("Jan"), Value: m.Revenue,
			Display: money(m.Revenue) + " from " + group(itoa(m.Orders)) + " orders", Partial: m.Partial})
	}
	for _, t := range d.K.TopTags {
		tags = append(tags, point{Label: t.Name, Value: float64(t.Contacts), Display: group(itoa(t.Contacts)) + " contacts"})
	}
	for _, p := range d.K.Pipeline {
		pipeline = append(pipeline, point{Label: p.Stage, Value: p.Value,
			Display: money(p.Value) + " · " + group(itoa(p.Opportunities)) + " open"})
	}
	for _, m := range d.K.WonLost {
		label := m.Month.Format("Jan")
		won = append(won, point{Label: label, Value: float64(m.Won), Display: group(itoa(m.Won)) + " won, " + money(m.WonValue), Partial: m.Partial})
		lost = append(lost, point{Label: label, Value: float64(m.Lost), Display: group(itoa(m.Lost)) + " lost, " + money(m.LostValue), Partial: m.Partial})
	}
	for _, h := range d.Sync.Activity {
		label := h.Hour.Format("15:00")
		if h.Hour.Hour() == 0 {
			label = h.Hour.Format("Jan 2")
		}
		in = append(in, point{Label: label, Value: float64(h.In), Display: group(itoa(h.In)) + " in", Partial: h.Partial})
		out = append(out, point{Label: label, Value: float64(h.Out), Display: group(itoa(h.Out)) + " out", Partial: h.Partial})
	}
	d.Weekly = barChart("New contacts per week", "New contacts", "Week starting (UTC)", weekly, compact)
	d.Monthly = barChart("Revenue per month", "Revenue", "Month (UTC)", monthly, compactMoney)
	d.Tags = hbarChart("Top tags", "No tags applied yet.", tags)
	d.Pipeline = hbarChart("Open pipeline by stage", "No open opportunities yet.", pipeline)
	d.WonLost = groupedChart("Opportunities won and lost per month", "Opportunities", "Month (UTC)", chartW,
		[]series{{Name: "Won", Class: "bar", Points: won}, {Name: "Lost", Class: "bar-out", Points: lost}}, compact)
	d.Activity = groupedChart("Sync activity, last 48 hours", "Changes", "Hour (UTC)", 2*chartW,
		[]series{{Name: "In from Keap", Class: "bar", Points: in}, {Name: "Out to Keap", Class: "bar-out", Points: out}}, compact)
}

// truncWeek matches date_trunc('week', t) in UTC: Monday 00:00.
func truncWeek(t time.Time) time.Time {
	t = t.UTC().Truncate(24 * time.Hour)
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
}

func truncMonth(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
