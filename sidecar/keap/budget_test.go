package keap

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func newTestBudget(t *testing.T, clock Clock, l Limits) *Budget {
	t.Helper()
	b, err := NewBudget(BudgetConfig{Key: "test", Limits: l, Clock: clock, Logger: testLogger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		runtime.Gosched()
	}
}

func TestBudgetLiveBeforeBackground(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t)
	clock.setGate(never) // hold time still while the queue forms
	b := newTestBudget(t, clock, KeyLimits)
	bg, live := WithPriority(context.Background(), Background), context.Background()
	for range b.cfg.Burst { // empty the full bucket
		if err := b.Wait(bg); err != nil {
			t.Fatal(err)
		}
	}
	order := make(chan Priority, 10)
	start := func(ctx context.Context) {
		go func() {
			if err := b.Wait(ctx); err != nil {
				t.Error(err)
			}
			order <- PriorityFrom(ctx)
		}()
	}
	for i := range 5 {
		start(bg)
		waitFor(t, func() bool { return b.Stats().Waiting == i+1 })
	}
	start(live)
	start(live)
	waitFor(t, func() bool { return b.Stats().Waiting == 7 })
	clock.setGate(always)
	var got []Priority
	for range 7 {
		got = append(got, <-order)
	}
	want := []Priority{Live, Live, Background, Background, Background, Background, Background}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("grant order %v, want %v", got, want)
		}
	}
}

func TestBudgetRateMatchesPublishedLimits(t *testing.T) {
	t.Parallel()
	for _, l := range []Limits{OAuthLimits, KeyLimits} {
		clock := newFakeClock(t)
		b := newTestBudget(t, clock, l)
		start := clock.Now()
		const n = 2000
		for range n {
			if err := b.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		perMinute := float64(n) / clock.Now().Sub(start).Minutes()
		// Sized to 98% of the minute limit, less the bucket depth, so a rolling window never
		// overflows.
		if perMinute > float64(l.PerMinute) || perMinute < 0.96*float64(l.PerMinute) {
			t.Fatalf("%+v: %.1f calls per minute", l, perMinute)
		}
		secs := b.Stats().Rate
		if l.PerSecond > 0 && float64(b.cfg.Burst)+secs >= float64(l.PerSecond+1) {
			t.Fatalf("%+v: burst %d + rate %.2f/s would break the spike limit", l, b.cfg.Burst, secs)
		}
	}
}

// lateClock wakes every sleeper late, as a loaded machine does: After(d) fires at d+late.
// One caller at a time, so fake time is simply moved on.
type lateClock struct {
	mu   sync.Mutex
	now  time.Time
	late time.Duration
}

func (c *lateClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lateClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d + c.late)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch, func() {}
}

// A waiter woken late takes the token it slept for as of when it came free (up to half an
// interval back): a bucket one token deep would otherwise lose every millisecond of lateness.
// Whatever the lateness, no second holds more calls than the spike limit.
func TestBudgetLateWakeupsLoseNoBudget(t *testing.T) {
	t.Parallel()
	l := Limits{PerSecond: 10, PerMinute: 600, PerDay: 1e9} // rate 9/s: one call every 111 ms
	for _, late := range []time.Duration{30 * time.Millisecond, 80 * time.Millisecond} {
		clock := &lateClock{now: t0, late: late}
		b, err := NewBudget(BudgetConfig{Key: "late", Limits: l, Clock: clock, Logger: testLogger(t, slog.LevelWarn)})
		if err != nil {
			t.Fatal(err)
		}
		var grants []time.Time
		for range 300 {
			if err := b.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			grants = append(grants, clock.Now())
		}
		for i := range grants {
			j := i
			for j < len(grants) && grants[j].Sub(grants[i]) < time.Second {
				j++
			}
			if j-i > l.PerSecond {
				t.Fatalf("late %v: %d calls in the second from %v", late, j-i, grants[i].Sub(t0))
			}
		}
		rate := float64(len(grants)-1) / grants[len(grants)-1].Sub(grants[0]).Seconds()
		if want := 0.99 * b.Stats().Rate; late == 30*time.Millisecond && rate < want {
			t.Fatalf("late %v: %.2f calls/s, want the budget's %.2f", late, rate, b.Stats().Rate)
		}
	}
}

func TestBudgetHeadersCorrectIt(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t)
	b := newTestBudget(t, clock, OAuthLimits)
	full := b.Stats().Rate

	// Keap reports a different per-minute limit: it wins.
	b.observe([]window{{unit: "minute", limit: 600, available: 500}})
	if r := b.Stats().Rate; math.Abs(r-(600*0.98-1)/60) > 1e-9 {
		t.Fatalf("rate after limit 600: %v", r)
	}
	b.observe([]window{{unit: "minute", limit: 1500, available: 1400}})
	if r := b.Stats().Rate; r != full {
		t.Fatalf("rate back at 1500: %v want %v", r, full)
	}
	// Someone else spends the window: available runs low, the rate halves.
	b.observe([]window{{unit: "minute", limit: 1500, available: 3}})
	if st := b.Stats(); st.Factor != 0.5 || st.ThrottleAvailable != 3 {
		t.Fatalf("low window: %+v", st)
	}
	// ... and creeps back once the window is comfortable again.
	clock.Advance(2 * time.Second)
	b.observe([]window{{unit: "minute", limit: 1500, available: 900}})
	if f := b.Stats().Factor; f <= 0.5 || f >= 1 { // 5% back per comfortable response
		t.Fatalf("recovery: factor %v", f)
	}

	// The daily reserve stops background work only; an exhausted quota stops everything until
	// it resets.
	expiry := clock.Now().Add(3 * time.Hour)
	b.observe([]window{{unit: "day", limit: 150000, available: 1000, expiry: expiry}})
	// What the dashboard shows comes from the same numbers.
	if st := b.Stats(); st.QuotaAvailable != 1000 || st.Limits.PerDay != 150000 || !st.QuotaResets.Equal(expiry) || st.Limits.PerMinute != 1500 {
		t.Fatalf("stats after the day window: %+v", st)
	}
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := clock.Now()
	if err := b.Wait(WithPriority(context.Background(), Background)); err != nil {
		t.Fatal(err)
	}
	if clock.Now().Before(expiry) {
		t.Fatalf("background ran at %v inside the daily reserve (resets %v; waited from %v)", clock.Now(), expiry, before)
	}
	expiry = clock.Now().Add(5 * time.Hour)
	b.observe([]window{{unit: "day", limit: 150000, available: 0, expiry: expiry}})
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if clock.Now().Before(expiry) {
		t.Fatal("a live call ran with the daily quota exhausted")
	}
}

func TestBudgetMembersAndCancel(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t)
	b := newTestBudget(t, clock, OAuthLimits)
	full := b.Stats().Rate
	b.SetMembers(3)
	if r := b.Stats().Rate; math.Abs(r-full/3) > 1e-9 {
		t.Fatalf("3 members: %v, want %v", r, full/3)
	}
	clock.setGate(never)
	for range b.cfg.Burst {
		_ = b.Wait(context.Background())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Wait(ctx) }()
	waitFor(t, func() bool { return b.Stats().Waiting == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || b.Stats().Waiting != 0 {
		t.Fatalf("cancel: %v, %d waiting", err, b.Stats().Waiting)
	}
}

func TestHeaderWindows(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	set := func(k, v string) { h[k] = []string{v} }
	set("x-keap-product-throttle-limit", "1500")
	set("x-keap-product-throttle-available", "1499")
	set("x-keap-product-throttle-time-unit", "minute")
	set("x-keap-product-quota-limit", "150000")
	set("x-keap-product-quota-available", "149000")
	set("x-keap-product-quota-time-unit", "day")
	set("x-keap-product-quota-expiry-time", "1723680000000")
	h.Set("X-Keap-Tenant-Throttle-Limit", "10000|250000") // canonical case, as parsed off the wire
	h.Set("X-Keap-Tenant-Throttle-Available", "9990|249000")
	h.Set("X-Keap-Tenant-Throttle-Time-Unit", "minute|day")
	p := productWindows(h)
	if len(p) != 2 || p[0] != (window{unit: "minute", limit: 1500, available: 1499}) ||
		p[1].unit != "day" || p[1].available != 149000 || p[1].expiry.UnixMilli() != 1723680000000 {
		t.Fatalf("product: %+v", p)
	}
	tw := tenantWindows(h)
	if len(tw) != 2 || tw[0] != (window{unit: "minute", limit: 10000, available: 9990}) || tw[1] != (window{unit: "day", limit: 250000, available: 249000}) {
		t.Fatalf("tenant: %+v", tw)
	}
	if w := tenantWindows(http.Header{}); len(w) != 0 {
		t.Fatalf("no headers: %+v", w)
	}
}

// One account's backlog queued on the shared app budget delays another account's call by about
// one call, not by the backlog: flows with calls waiting take turns within a priority.
func TestBudgetSharesTurnsFairlyAcrossAccounts(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t)
	clock.setGate(never) // hold time still while the queue forms
	b := newTestBudget(t, clock, OAuthLimits)
	busy, quiet := withFlow(context.Background(), "busy"), withFlow(context.Background(), "quiet")
	for range b.cfg.Burst { // empty the full bucket
		if err := b.Wait(busy); err != nil {
			t.Fatal(err)
		}
	}
	order := make(chan string, 20)
	start := func(ctx context.Context) {
		go func() {
			if err := b.Wait(ctx); err != nil {
				t.Error(err)
			}
			order <- ctx.Value(flowKey{}).(string)
		}()
	}
	for i := range 10 {
		start(busy)
		waitFor(t, func() bool { return b.Stats().Waiting == i+1 })
	}
	start(quiet)
	waitFor(t, func() bool { return b.Stats().Waiting == 11 })
	clock.setGate(always)
	var got []string
	for range 11 {
		got = append(got, <-order)
	}
	at := slices.Index(got, "quiet")
	if at > 1 {
		t.Fatalf("the quiet account's call was granted %dth, behind the busy account's backlog: %v", at+1, got)
	}
}
