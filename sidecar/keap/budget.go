package keap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits are one budget's published throttles (FACTS.md §2).
type Limits struct {
	PerSecond int // spike policy; 0 when none applies
	PerMinute int // rolling window
	PerDay    int // resets 00:00 UTC
}

// Keap's published limits.
var (
	OAuthLimits  = Limits{PerSecond: 25, PerMinute: 1500, PerDay: 150000} // per OAuth client id
	KeyLimits    = Limits{PerSecond: 10, PerMinute: 240, PerDay: 30000}   // per personal/service key
	TenantLimits = Limits{PerSecond: 0, PerMinute: 10000, PerDay: 250000} // per app instance, all credentials
)

// BudgetConfig configures a Budget.
type BudgetConfig struct {
	// Key names the budget in metrics, logs and keapsync.rate_budget_members
	// (OAuthBudgetKey, KeyBudgetKey, TenantBudgetKey).
	Key    string
	Limits Limits
	// Margin is the share of the per-minute limit left unspent, for clock skew, network jitter
	// and calls outside keapsync. Default 0.02.
	Margin float64
	// Burst is the token bucket's depth. Default 1 when the spike limit equals the minute
	// average (OAuth: 25/s = 1500/min), PerSecond/5 for a looser spike limit (keys: 2), and
	// PerMinute/100 without a spike limit (tenant: 100).
	Burst int
	// DailyReserve is the share of the daily quota that only Live calls may spend. Default 0.01.
	DailyReserve float64
	Clock        Clock
	Logger       *slog.Logger
}

func (c BudgetConfig) withDefaults() BudgetConfig {
	if c.Margin == 0 {
		c.Margin = 0.02
	}
	if c.Burst == 0 {
		switch l := c.Limits; {
		case l.PerSecond == 0:
			// No spike policy (the tenant budget): a deeper bucket, so a live call seldom
			// waits here behind backfill workers holding tokens while they queue elsewhere.
			c.Burst = max(1, l.PerMinute/100)
		case l.PerSecond*60 > 2*l.PerMinute:
			c.Burst = max(1, l.PerSecond/5)
		default:
			c.Burst = 1
		}
	}
	if c.DailyReserve == 0 {
		c.DailyReserve = 0.01
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c BudgetConfig) Validate() error {
	var errs []error
	if c.Key == "" {
		errs = append(errs, errors.New("budget key is empty"))
	}
	if c.Limits.PerMinute <= 0 && c.Limits.PerSecond <= 0 {
		errs = append(errs, errors.New("budget limits: need a per-minute or per-second limit"))
	}
	if c.Margin < 0 || c.Margin >= 0.5 || c.DailyReserve < 0 || c.DailyReserve >= 1 || c.Burst < 0 {
		errs = append(errs, errors.New("budget margin, reserve or burst out of range"))
	}
	return errors.Join(errs...)
}

// The rate adapts: a 429 or a nearly empty throttle window halves it (at most once per
// cutCooldown, since one overload answers many calls in flight), down to minFactor; below
// that the 429 pauses do the slowing. Every comfortable response after the cooldown gives
// back 5%, so a passing storm costs seconds of reduced speed, not minutes.
const (
	cutCooldown  = time.Second
	minFactor    = 1.0 / 8
	recoverRatio = 1.05
)

// Budget is one Keap budget shared by every call that draws on it: one per OAuth client id (or
// personal key) and one per tenant, across all Clients of the process. It is a token bucket
// (golang.org/x/time/rate) sized from the published limits, divided among the processes sharing
// it (BudgetShare), and corrected by what Keap reports in its x-keap-* headers.
type Budget struct {
	cfg BudgetConfig
	log *slog.Logger

	mu            sync.Mutex
	lim           *rate.Limiter
	limAt         time.Time // the latest moment given to lim: it must never see an earlier one
	limits        Limits    // published, then as Keap's headers report them
	members       int
	factor        float64
	lastCut       time.Time
	pausedUntil   time.Time // every call waits (429 backoff, daily quota gone)
	bgPausedUntil time.Time // Background calls wait (daily reserve reached)
	queue         waitQueue
	seq           uint64
	vtime         uint64         // the turn of the last call granted
	turns         map[any]uint64 // each flow's latest turn handed out
	throttleAvail int            // last x-keap-*-throttle-available, -1 unknown
	quotaAvail    int
	quotaResets   time.Time // when the daily window last reported resets
	granted       atomic.Uint64
}

// NewBudget returns a budget at its full published rate.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("keap budget %q: %w", cfg.Key, err)
	}
	cfg = cfg.withDefaults()
	b := &Budget{cfg: cfg, log: cfg.Logger.With("component", "keap.budget", "budget", cfg.Key),
		lim: rate.NewLimiter(0, cfg.Burst), limits: cfg.Limits, members: 1, factor: 1,
		throttleAvail: -1, quotaAvail: -1}
	now := cfg.Clock.Now()
	b.lim.SetLimitAt(now, b.targetRate()) // the bucket starts full: the margin covers one burst
	b.limAt = now
	return b, nil
}

// Key is the budget's name.
func (b *Budget) Key() string { return b.cfg.Key }

// targetRate is the steady rate in calls per second. A token bucket of depth B and rate R
// grants at most B+60R calls in any minute and B+R in any second, so R is chosen to keep both
// under Keap's windows minus the margin. The caller holds mu.
func (b *Budget) targetRate() rate.Limit {
	l, burst := b.limits, float64(b.cfg.Burst)
	r := math.Inf(1)
	if l.PerMinute > 0 {
		r = (float64(l.PerMinute)*(1-b.cfg.Margin) - burst) / 60
	}
	if l.PerSecond > 0 {
		// Spike policies count single seconds. At R = PerSecond-B a drained bucket spaces calls
		// so that a second holds at most PerSecond-1 of them: one call of slack for jitter.
		r = min(r, float64(l.PerSecond)-burst)
	}
	r = r / float64(b.members) * b.factor
	floor := float64(max(l.PerMinute, 60)) / 60 * minFactor / float64(b.members)
	return rate.Limit(max(r, floor))
}

func (b *Budget) retune(now time.Time) {
	now = latest(now, b.limAt)
	b.lim.SetLimitAt(now, b.targetRate())
	b.limAt = now
	if h := b.queue.head(); h != nil {
		h.poke() // the head may be sleeping on the old rate
	}
}

// Wait blocks until the budget grants one call at the priority of ctx.
func (b *Budget) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wait for keap budget %s: %w", b.cfg.Key, err)
	}
	w := &waiter{prio: PriorityFrom(ctx), flow: ctx.Value(flowKey{}), wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.enqueue(w)
	var due time.Time // when the token this waiter last slept for came free
	for {
		if b.queue.head() != w {
			b.mu.Unlock()
			due = time.Time{}
			select {
			case <-w.wake:
				b.mu.Lock()
				continue
			case <-ctx.Done():
				return b.leave(w, ctx)
			}
		}
		now := b.cfg.Clock.Now()
		d := b.pauseLeft(now, w.prio)
		if d == 0 {
			d = b.reserve(now, due)
			due = now.Add(d)
		}
		if d == 0 {
			b.queue.remove(w)
			b.vtime = max(b.vtime, w.tag)
			b.granted.Add(1)
			b.mu.Unlock()
			return nil
		}
		timer, stop := b.cfg.Clock.Timer(d)
		b.mu.Unlock()
		select {
		case <-timer:
		case <-w.wake: // a new rate or a new head: reckon again
		case <-ctx.Done():
			stop()
			return b.leave(w, ctx)
		}
		// Stopped under mu, so a clock that moves only once every fired timer is stopped
		// (the tests' fake clock) cannot move between this wake-up and the reservation.
		b.mu.Lock()
		stop()
	}
}

// enqueue queues w behind the calls of its flow: a flow's call takes the turn after its flow's
// previous one, and never one earlier than the turn being served (start-time fair queuing, each
// call costing one turn). Flows with calls waiting are thus served round-robin within a
// priority: one account's backlog of a thousand queued calls delays another account's call by
// about one call per busy flow, not by the whole backlog. Calls without a flow share one. The
// caller holds mu.
func (b *Budget) enqueue(w *waiter) {
	b.seq++
	w.seq = b.seq
	if b.turns == nil {
		b.turns = map[any]uint64{}
	}
	w.tag = max(b.vtime, b.turns[w.flow]) + 1
	b.turns[w.flow] = w.tag
	if len(b.turns) > 2*len(b.queue)+16 {
		// A flow whose last turn is served holds nothing a new call would not get anyway.
		for f, t := range b.turns {
			if t <= b.vtime {
				delete(b.turns, f)
			}
		}
	}
	b.queue.add(w)
}

// reserve takes a token for the head waiter, or says how long until one is free. A head that
// slept for a token and woke late takes it as of when it came free (at most half an interval
// back): the bucket is one token deep, so lateness would otherwise be lost for good, and a
// loaded machine wakes sleepers a millisecond or more late (at 100 calls/s, a tenth of the
// budget). Half an interval keeps every second within the spike limit. A token not taken now
// is given back: a Live call may arrive while the head sleeps, and it must find the token.
// The caller holds mu.
func (b *Budget) reserve(now, due time.Time) time.Duration {
	if !due.IsZero() && due.Before(now) && b.lim.Limit() > 0 {
		half := time.Duration(float64(time.Second) / float64(b.lim.Limit()) / 2)
		// Never before a moment the limiter has seen: it would count that time twice.
		at := latest(due, now.Add(-half), b.limAt)
		r := b.lim.ReserveN(at, 1)
		b.limAt = at
		if r.DelayFrom(at) == 0 {
			return 0
		}
		r.CancelAt(at)
	}
	r := b.lim.ReserveN(now, 1)
	b.limAt = now
	d := r.DelayFrom(now)
	if d > 0 {
		r.CancelAt(now)
	}
	return d
}

func latest(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if m.After(t) {
			t = m
		}
	}
	return t
}

func (b *Budget) leave(w *waiter, ctx context.Context) error {
	b.mu.Lock()
	b.queue.remove(w)
	b.mu.Unlock()
	return fmt.Errorf("wait for keap budget %s: %w", b.cfg.Key, ctx.Err())
}

// pauseLeft is how long a call of priority p must still wait for a pause. The caller holds mu.
func (b *Budget) pauseLeft(now time.Time, p Priority) time.Duration {
	until := b.pausedUntil
	if p == Background && b.bgPausedUntil.After(until) {
		until = b.bgPausedUntil
	}
	if until.After(now) {
		return until.Sub(now)
	}
	return 0
}

// SetMembers divides the budget among n processes (BudgetShare calls it).
func (b *Budget) SetMembers(n int) {
	n = max(n, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if n != b.members {
		b.log.Info("budget shared", "members", n)
		b.members = n
		b.retune(b.cfg.Clock.Now())
	}
}

// Throttled tells the budget Keap answered 429: every caller slows down (law 7). The rate is
// halved and the whole budget pauses for pause, the caller's backoff.
func (b *Budget) Throttled(pause time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Clock.Now()
	if until := now.Add(pause); until.After(b.pausedUntil) {
		b.pausedUntil = until
	}
	b.cut(now)
}

// cut halves the rate, at most once per cooldown. The caller holds mu.
func (b *Budget) cut(now time.Time) {
	if now.Sub(b.lastCut) < cutCooldown {
		return
	}
	b.lastCut = now
	b.factor = max(minFactor, b.factor/2)
	b.log.Debug("budget rate cut", "factor", b.factor)
	b.retune(now)
}

// window is one throttle or quota window from Keap's headers.
type window struct {
	unit      string // minute, day, second
	limit     int
	available int
	expiry    time.Time // zero when Keap did not say
}

// observe corrects the budget from the windows one response reported.
func (b *Budget) observe(ws []window) {
	if len(ws) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Clock.Now()
	for _, w := range ws {
		switch w.unit {
		case "minute":
			b.observeMinute(now, w)
		case "day":
			b.observeDay(now, w)
		}
	}
}

func (b *Budget) observeMinute(now time.Time, w window) {
	b.throttleAvail = w.available
	if w.limit > 0 && w.limit != b.limits.PerMinute {
		b.log.Info("keap reports another per-minute limit", "published", b.limits.PerMinute, "reported", w.limit)
		b.limits.PerMinute = w.limit
		b.retune(now)
	}
	// The window is shared with every other consumer of the budget. Steady full-speed draining
	// leaves about Margin*limit available; half of that means someone else is spending too.
	low := max(1, int(float64(w.limit)*b.cfg.Margin/2))
	switch {
	case w.available <= low:
		b.cut(now)
	case b.factor < 1 && now.Sub(b.lastCut) >= cutCooldown:
		b.factor = min(1, b.factor*recoverRatio)
		b.retune(now)
	}
}

func (b *Budget) observeDay(now time.Time, w window) {
	b.quotaAvail = w.available
	if w.limit > 0 {
		b.limits.PerDay = w.limit
	}
	expiry := w.expiry
	if expiry.IsZero() || !expiry.After(now) {
		expiry = now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour) // Keap resets at 00:00 UTC
	}
	b.quotaResets = expiry
	switch {
	case w.available <= 0:
		if expiry.After(b.pausedUntil) {
			b.log.Warn("daily quota exhausted; pausing until it resets", "until", expiry)
			b.pausedUntil = expiry
		}
	case float64(w.available) <= float64(w.limit)*b.cfg.DailyReserve:
		if expiry.After(b.bgPausedUntil) {
			b.log.Warn("daily quota low; background work paused until it resets", "available", w.available, "until", expiry)
			b.bgPausedUntil = expiry
		}
	}
}

// BudgetStats is a snapshot for metrics, status and tests.
type BudgetStats struct {
	Key               string
	Rate              float64 // calls per second this process may make now
	Members           int
	Factor            float64 // 1 = full share; less after 429s or a crowded window
	ThrottleAvailable int     // last reported, -1 unknown
	QuotaAvailable    int
	Limits            Limits    // as Keap last reported them (published until it does)
	QuotaResets       time.Time // when the reported daily quota resets; zero until reported
	PausedUntil       time.Time
	Waiting           int    // calls queued now
	Granted           uint64 // calls granted since the budget was made
}

// Stats returns a snapshot.
func (b *Budget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Key: b.cfg.Key, Rate: float64(b.lim.Limit()), Members: b.members, Factor: b.factor,
		ThrottleAvailable: b.throttleAvail, QuotaAvailable: b.quotaAvail, Limits: b.limits, QuotaResets: b.quotaResets,
		PausedUntil: b.pausedUntil, Waiting: len(b.queue),
		Granted: b.granted.Load()}
}
