package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	active     prometheus.Gauge
	lagBytes   prometheus.Gauge
	lagOver    prometheus.Gauge
	lagSeconds prometheus.Gauge
	depth      prometheus.Gauge
	oldest     prometheus.Gauge
	changes    prometheus.Counter
	enqueued   prometheus.Counter
	pushes     *prometheus.CounterVec
	fetchSkips prometheus.Counter
	prereads   prometheus.Counter
}

// Push outcomes, the values of keapsync_push_pushes_total{outcome}.
const (
	OutcomeCreated     = "created"
	OutcomeUpdated     = "updated"
	OutcomeDeleted     = "deleted"
	OutcomeKeapDeleted = "keap-deleted" // an update for a contact Keap had deleted: deleted here too
	OutcomeNone        = "none"         // nothing left to send (coalesced, or equal to agreed)
	OutcomeRetry       = "retry"        // Keap down, throttling or a network error: kept, backed off
	OutcomeDeadLetter  = "dead_letter"  // Keap refused the record (4xx): parked
	OutcomeUnsupported = "unsupported"  // Keap's API cannot do it: parked with the reason
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keapsync_push_slot_active",
			Help: "1 while this process streams from the replication slot (0 on a standby)."}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keapsync_push_slot_lag_bytes",
			Help: "WAL bytes between the server's current position and the slot's confirmed position."}),
		lagOver: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keapsync_push_slot_lag_over_limit",
			Help: "1 while the slot retains more WAL than MaxSlotLag (alert on it; see docs/runbook.md, WAL pile-up)."}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keapsync_push_slot_lag_seconds",
			Help: "Age of the last transaction confirmed when it was confirmed (0 when caught up)."}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keapsync_push_queue_depth",
			Help: "Records waiting in keapsync.push_queue."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keapsync_push_oldest_pending_seconds",
			Help: "Age of the oldest change waiting to be pushed."}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "keapsync_push_changes_total",
			Help: "Local row changes read from the slot (Keap's own writes are not counted)."}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{Name: "keapsync_push_enqueued_total",
			Help: "Changed records written to the push queue (after coalescing within a batch)."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keapsync_push_pushes_total",
			Help: "Records pushed to Keap, by outcome."}, []string{"outcome"}),
		fetchSkips: prometheus.NewCounter(prometheus.CounterOpts{Name: "keapsync_push_fetch_skipped_total",
			Help: "Updates sent without their own fetch-before-update: a listing read the contact after the change was queued, or (KnownFor) Keap's version was applied within KnownFor; no hook for it was pending."}),
		prereads: prometheus.NewCounter(prometheus.CounterOpts{Name: "keapsync_push_prereads_total",
			Help: "Listings of an account's contacts changed since the versions held, each read for several due updates at once."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.active, m.lagBytes, m.lagOver, m.lagSeconds, m.depth, m.oldest, m.changes, m.enqueued, m.pushes, m.fetchSkips, m.prereads} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("push: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

const sqlSample = `
select (select count(*) from keapsync.push_queue),
       coalesce((select extract(epoch from now() - min(first_enqueued_at)) from keapsync.push_queue), 0)::float8,
       coalesce((select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)
                   from pg_replication_slots where slot_name = $1), 0)::float8`

// sampleOnce refreshes the gauges read from the database once.
func (p *Pusher) sampleOnce(ctx context.Context) error {
	var depth int64
	var oldest, lag float64
	if err := p.cfg.DB.QueryRow(ctx, sqlSample, p.cfg.Slot).Scan(&depth, &oldest, &lag); err != nil {
		return err
	}
	p.metrics.depth.Set(float64(depth))
	p.metrics.oldest.Set(oldest)
	p.metrics.lagBytes.Set(lag)
	if p.cfg.MaxSlotLag > 0 && lag > float64(p.cfg.MaxSlotLag) {
		p.metrics.lagOver.Set(1)
		p.log.Warn("the push slot retains more WAL than allowed; see docs/runbook.md (WAL pile-up)",
			"lag_bytes", int64(lag), "limit_bytes", p.cfg.MaxSlotLag)
	} else {
		p.metrics.lagOver.Set(0)
	}
	return nil
}

// sample refreshes the gauges read from the database until ctx ends.
func (p *Pusher) sample(ctx context.Context) error {
	t := time.NewTicker(p.cfg.MetricsInterval)
	defer t.Stop()
	for {
		if err := p.sampleOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("sample push metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
