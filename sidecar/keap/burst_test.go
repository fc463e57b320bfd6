package keap

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// quietWhen lets the fake clock move only while no granted call is still on the wire: every
// grant of the app budget ends in exactly one finished round trip. The budgets stay locked
// while the clock moves, so no call is granted at the old time and sent at the new one:
// requests arrive at the sandbox at the instant the limiter granted them (zero network
// latency in fake time).
func quietWhen(e *env) func(advance func() bool) bool { return quietWhenAlso(e, nil) }

// quietWhenAlso adds a condition checked under the budget locks.
func quietWhenAlso(e *env, also func() bool) func(advance func() bool) bool {
	budgets := []*Budget{e.client.app, e.client.tenant}
	return func(advance func() bool) bool {
		if e.client.app.granted.Load() != e.wire.done.Load() {
			return false // cheap check first: the locks below slow the callers down
		}
		for _, b := range budgets {
			b.mu.Lock()
		}
		defer func() {
			for i := len(budgets) - 1; i >= 0; i-- {
				budgets[i].mu.Unlock()
			}
		}()
		done := e.wire.done.Load()
		if e.client.app.granted.Load() != done || (also != nil && !also()) {
			return false
		}
		return advance()
	}
}

type burstResult struct {
	calls, errors int
	elapsed       time.Duration
}

// burst makes n calls from workers goroutines, each one GET /v1/contacts/{id}.
func burst(t testing.TB, e *env, n, workers int, ids []ID) burstResult {
	return burstAt(t, e, context.Background(), n, workers, ids)
}

func burstAt(t testing.TB, e *env, ctx context.Context, n, workers int, ids []ID) burstResult {
	// Time moves only while every worker still at work is queued on a budget: a worker between
	// two calls (its answer read, its next call not yet queued) would otherwise see fake time
	// pass that it could have used, and on a loaded machine the burst measured 0.86 of the limit.
	var active atomic.Int64
	active.Store(int64(workers))
	e.clock.setGate(quietWhenAlso(e, func() bool {
		return int64(len(e.client.app.queue)+len(e.client.tenant.queue)) >= active.Load()
	}))
	defer e.clock.setGate(always)
	jobs := make(chan ID, n) // filled at once: a feeder that lags would leave workers idle too
	for i := range n {
		jobs <- ids[i%len(ids)]
	}
	close(jobs)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := e.clock.Now()
	for range workers {
		wg.Go(func() {
			defer active.Add(-1)
			for id := range jobs {
				if _, err := e.client.GetContact(ctx, id); err != nil {
					if errs.Add(1) < 5 {
						t.Errorf("call %d: %v", id, err)
					}
				}
			}
		})
	}
	wg.Wait()
	return burstResult{calls: n, errors: int(errs.Load()), elapsed: e.clock.Now().Sub(start)}
}

func contactIDs(t testing.TB, e *env) []ID {
	all, err := Collect(e.client.Contacts(context.Background(), ContactQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]ID, len(all))
	for i, c := range all {
		ids[i] = c.ID
	}
	return ids
}

// TestBurstAtRealLimits sends 5000 calls through one client at the sandbox's real limits
// (OAuth: 1500/min rolling, 25/s spike; personal key: 240/min, 10/s) on a shared fake clock:
// not one 429 when the client is alone.
func TestBurstAtRealLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		oauth  bool
		limits Limits
	}{{"oauth", true, OAuthLimits}, {"key", false, KeyLimits}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 50, Seed: 11, RequestLogSize: 20000}, oauth: tc.oauth})
			ids := contactIDs(t, e)
			e.srv.ClearRequests()
			r := burst(t, e, 5000, 16, ids)
			if r.errors != 0 {
				t.Fatalf("%d calls failed", r.errors)
			}
			if n := count429(e.srv); n != 0 {
				t.Fatalf("%d 429s from a client alone at Keap's limits", n)
			}
			frac := float64(r.calls) / r.elapsed.Minutes() / float64(tc.limits.PerMinute)
			t.Logf("5000 calls in %v of fake time: %.3f of the per-minute limit", r.elapsed.Round(time.Second), frac)
			if frac < 0.95 || frac > 1 {
				t.Fatalf("budget use %.3f, want within [0.95, 1]", frac)
			}
		})
	}
}

// TestBurstThrottleStorm injects 200 429s at the start of a 5000-call burst: every call still
// succeeds, no 429 beyond the injected ones follows, and the rate recovers.
func TestBurstThrottleStorm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 50, Seed: 12, RequestLogSize: 20000}, oauth: true})
	ids := contactIDs(t, e)
	e.srv.ClearRequests()
	e.srv.SetFaults(sandbox.Faults{Storm429: 200})
	r := burst(t, e, 5000, 16, ids)
	if r.errors != 0 {
		t.Fatalf("%d calls failed", r.errors)
	}
	if n := count429(e.srv); n != 200 {
		t.Fatalf("%d 429s, want exactly the 200 injected", n)
	}
	st := e.client.AppBudget().Stats()
	if st.Factor != 1 {
		t.Fatalf("rate not recovered after the storm: %+v", st)
	}
	// After the last 429 the client must be back at full speed within seconds.
	reqs := e.srv.Requests()
	last := 0
	for i, rq := range reqs {
		if rq.Status == 429 {
			last = i
		}
	}
	// The last 429 paused the budget; speed is measured from the first answer after the pause.
	after := reqs[last+1:]
	span := after[len(after)-1].At.Sub(after[0].At)
	frac := float64(len(after)-1) / span.Minutes() / 1500
	t.Logf("storm of 200 429s over %v of fake time (pauses back off exponentially); then %d calls in %v: %.3f of the limit",
		reqs[last].At.Sub(reqs[0].At).Round(time.Second), len(after), span.Round(time.Second), frac)
	if frac < 0.9 {
		t.Fatalf("after the storm the client used only %.3f of the limit", frac)
	}
}

// TestLiveBeforeBackfill runs a 2000-call backfill (Background, 16 workers) and, meanwhile, live
// calls one at a time: each live call goes next, not behind the backlog.
func TestLiveBeforeBackfill(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 20, Seed: 14, RequestLogSize: 5000}, oauth: true})
	ids := contactIDs(t, e)
	done := make(chan burstResult)
	go func() { done <- burstAt(t, e, WithPriority(context.Background(), Background), 2000, 16, ids) }()
	waitFor(t, func() bool { return e.client.AppBudget().Stats().Waiting >= 10 })
	// While a live call is being made, time moves only once it is queued on the app budget:
	// its wait is then measured in fake time exactly, however the goroutines are scheduled.
	var calling atomic.Bool
	e.clock.setGate(quietWhenAlso(e, func() bool {
		return !calling.Load() || slices.ContainsFunc(e.client.app.queue, func(w *waiter) bool { return w.prio == Live })
	}))
	interval := time.Duration(float64(time.Second) / e.client.AppBudget().Stats().Rate)
	var worst time.Duration
	for i := range 20 {
		calling.Store(true)
		start := e.clock.Now()
		if _, err := e.client.GetContact(context.Background(), ids[i]); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, e.clock.Now().Sub(start))
		calling.Store(false)
	}
	r := <-done
	if r.errors != 0 || count429(e.srv) != 0 {
		t.Fatalf("%d errors, %d 429s", r.errors, count429(e.srv))
	}
	// In FIFO order a live call would wait behind the 16 queued workers: 16 intervals. With
	// priority it waits for the next token; when it queues just as a token is being handed to a
	// background waiter (a scheduling race the fake clock cannot exclude), for the one after.
	t.Logf("live calls waited at most %v behind a backlog of 16 workers (token interval %v)", worst, interval)
	if worst > 2*interval+time.Millisecond {
		t.Fatalf("a live call waited %v behind the backfill", worst)
	}
}

// TestClientsShareOneBudget runs two Clients (say, two tenants of one OAuth app) on one app
// Budget: together they stay inside the app's limit instead of each spending all of it.
func TestClientsShareOneBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 30, Seed: 15, RequestLogSize: 10000}, oauth: true})
	second, err := New(Config{APIURL: e.client.cfg.APIURL, HTTPClient: e.client.cfg.HTTPClient, Clock: e.clock,
		Credentials: e.client.cfg.Credentials, AppBudget: e.client.AppBudget(), Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	ids := contactIDs(t, e)
	e.srv.ClearRequests()
	e.clock.setGate(quietWhen(e)) // the shared app budget counts both clients' grants
	start := e.clock.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range 16 {
		c := e.client
		if w%2 == 1 {
			c = second
		}
		wg.Go(func() {
			for i := range 200 {
				if _, err := c.GetContact(context.Background(), ids[(w+i)%len(ids)]); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	e.clock.setGate(always)
	perMinute := 3200 / e.clock.Now().Sub(start).Minutes()
	t.Logf("two clients, one budget: %.0f calls/min together", perMinute)
	if failed.Load() != 0 || count429(e.srv) != 0 || perMinute > 1500 || perMinute < 0.95*1500 {
		t.Fatalf("%d failed, %d 429s, %.0f/min", failed.Load(), count429(e.srv), perMinute)
	}
}
