package serve

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/accountstate"
)

// opsCollector exports, at scrape time, what the alert rules in docs/ops/ watch per account:
// keapsync.ops_figures (re-authorization, Inactive hooks, inbox and push queue age, dead
// letters, daily quota, token refresh) and keapsync.stalls (one 0/1 series per account and
// path). Reading at scrape keeps the figures as fresh as the scrape and needs no ticker.
type opsCollector struct {
	db         DB
	thresholds accountstate.Thresholds
	log        *slog.Logger
}

var (
	descNeedsReauth = prometheus.NewDesc("keapsync_account_needs_reauth",
		"1 while Keap refuses the account's refresh token (a person must run keapsync auth login).", []string{"account"}, nil)
	descHooksInactive = prometheus.NewDesc("keapsync_hooks_inactive",
		"REST Hook subscriptions Keap marked Inactive (deliveries stopped).", []string{"account"}, nil)
	descInboxPending = prometheus.NewDesc("keapsync_inbox_pending",
		"Hook deliveries received and not yet processed.", []string{"account"}, nil)
	descInboxOldest = prometheus.NewDesc("keapsync_inbox_oldest_pending_seconds",
		"Age of the oldest hook delivery not yet processed (0 when none).", []string{"account"}, nil)
	descPushOldest = prometheus.NewDesc("keapsync_push_queue_oldest_seconds",
		"Age of the oldest local edit waiting in keapsync.push_queue (0 when none).", []string{"account"}, nil)
	descDeadLetters = prometheus.NewDesc("keapsync_dead_letters_parked",
		"Records parked in keapsync.dead_letters awaiting a person.", []string{"account"}, nil)
	descQuotaUsed = prometheus.NewDesc("keapsync_keap_daily_quota_used_ratio",
		"Share of Keap's daily quota used, as Keap last reported it (0 to 1).", []string{"account"}, nil)
	descRefreshFailing = prometheus.NewDesc("keapsync_token_refresh_failing",
		"1 while the last refresh of the account's OAuth token failed.", []string{"account"}, nil)
	descStalled = prometheus.NewDesc("keapsync_stalled",
		"1 while work waits on the path and nothing advanced for longer than the stall threshold (account is empty for the slot).",
		[]string{"account", "path"}, nil)
	descUp = prometheus.NewDesc("keapsync_ops_figures_up",
		"1 when the last scrape read the figures from the database.", nil, nil)
)

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNeedsReauth, descHooksInactive, descInboxPending, descInboxOldest,
		descPushOldest, descDeadLetters, descQuotaUsed, descRefreshFailing, descStalled, descUp} {
		ch <- d
	}
}

const sqlOpsFigures = `select f.account_id::text, f.account, f.needs_reauth, f.hooks_inactive, f.inbox_pending,
       f.inbox_oldest_seconds,
       coalesce((select extract(epoch from now() - min(q.first_enqueued_at)) from keapsync.push_queue q
                  where q.account_id = f.account_id), 0)::float8,
       f.dead_letters_parked, coalesce(f.quota_used_ratio, 0), f.token_refresh_failing
  from keapsync.ops_figures() f`

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.collect(ctx, ch); err != nil {
		c.log.Warn("metrics: ops figures not read", "err", err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
}

func (c *opsCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.Query(ctx, sqlOpsFigures)
	if err != nil {
		return err
	}
	names := map[string]string{}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var id, name string
	var reauth, failing bool
	var inactive, pending, parked int64
	var inboxAge, pushAge, quota float64
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &reauth, &inactive, &pending, &inboxAge, &pushAge, &parked, &quota, &failing}, func() error {
		names[id] = name
		gauge(descNeedsReauth, b2f(reauth), name)
		gauge(descHooksInactive, float64(inactive), name)
		gauge(descInboxPending, float64(pending), name)
		gauge(descInboxOldest, inboxAge, name)
		gauge(descPushOldest, pushAge, name)
		gauge(descDeadLetters, float64(parked), name)
		gauge(descQuotaUsed, quota, name)
		gauge(descRefreshFailing, b2f(failing), name)
		return nil
	})
	if err != nil {
		return err
	}
	stalls, err := accountstate.Stalls(ctx, c.db, c.thresholds)
	if err != nil {
		return err
	}
	stalled := map[[2]string]bool{}
	for _, s := range stalls {
		stalled[[2]string{names[s.AccountID], s.Path}] = true
	}
	for _, name := range names {
		for _, p := range accountstate.Paths {
			if p != accountstate.PathSlot {
				gauge(descStalled, b2f(stalled[[2]string{name, p}]), name, p)
			}
		}
	}
	gauge(descStalled, b2f(stalled[[2]string{"", accountstate.PathSlot}]), "", accountstate.PathSlot)
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
