package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// event is one planned fault, at an offset into the soak.
type event struct {
	At    time.Duration
	Kind  string
	Serve int           // for kills
	Hold  time.Duration // how long the killed serve or Postgres stays down
}

func (e event) String() string {
	switch e.Kind {
	case "kill", "takeover":
		return fmt.Sprintf("%7.2fs %s serve %s (down ≥%s)", e.At.Seconds(), e.Kind, serveName(e.Serve), e.Hold)
	case "pg-restart":
		return fmt.Sprintf("%7.2fs pg-restart (down %s)", e.At.Seconds(), e.Hold.Round(time.Millisecond))
	case "kill-mid-refresh":
		return fmt.Sprintf("%7.2fs expire-token, then SIGKILL the serve whose refresh is out", e.At.Seconds())
	case "kill-mid-push":
		return fmt.Sprintf("%7.2fs SIGKILL a serve whose push Keap has just accepted, with a push backlog", e.At.Seconds())
	}
	return fmt.Sprintf("%7.2fs %s", e.At.Seconds(), e.Kind)
}

func serveName(i int) string { return string(rune('A' + i)) }

// plan lays out the faults of a soak of length d from the seed: where in the run each one
// happens is random, that each happens is not, so every seed exercises every fault.
func plan(seed int64, d time.Duration) []event {
	rnd := rand.New(rand.NewPCG(uint64(seed), 2))
	at := func(lo, hi float64) time.Duration { return time.Duration((lo + rnd.Float64()*(hi-lo)) * float64(d)) }
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rnd.IntN(hi-lo)) * time.Millisecond }
	errStart := at(0.1, 0.3)
	storm1, storm2 := at(0.2, 0.5), at(0.6, 0.85)
	evs := []event{
		{At: 0, Kind: "hook-faults-on"},
		{At: errStart, Kind: "errors-on"},
		{At: errStart + d/5, Kind: "errors-off"},
		// A storm lasts a while, as Keap's quota windows do, however politely the client backs
		// off (a storm of N calls would last longer the better the client behaves).
		{At: storm1, Kind: "storm-429-on"},
		{At: storm1 + ms(1500, 4000), Kind: "storm-429-off"},
		{At: storm2, Kind: "storm-429-on"},
		{At: storm2 + ms(1500, 4000), Kind: "storm-429-off"},
		// The clock jump expires every access token; the first serve to refresh is killed with
		// its refresh held (and the token row locked), before Keap rotates anything.
		{At: at(0.3, 0.5), Kind: "kill-mid-refresh"},
		// Keap accepts a push and the serve dies before it hears: the write-back is lost.
		// Before the first storm, while pushes flow at full speed.
		{At: at(0.05, 0.18), Kind: "kill-mid-push"},
		{At: at(0.5, 0.65), Kind: "pg-restart", Hold: ms(500, 2000)},
		// A goes down long enough for B to take the slot over (ReconnectDelay is 1 s).
		{At: at(0.7, 0.8), Kind: "takeover", Serve: 0, Hold: 4 * time.Second},
	}
	for n := 2 + int(d/(20*time.Second)); n > 0; n-- {
		evs = append(evs, event{At: at(0.05, 0.9), Kind: "kill", Serve: rnd.IntN(2)})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
	return evs
}

// hookFaults are on for the whole run: drops are caught by the final reconcile, duplicates and
// reordering must be harmless on their own.
var hookFaults = sandbox.Faults{DropRate: 0.05, DuplicateRate: 0.1, Reorder: true}

// faultRun is what the fault plan did: a line per event, where each SIGKILL landed, and the
// deliberate kills that found nothing to land on.
type faultRun struct {
	mu     sync.Mutex
	lines  []faultLine
	Landed map[string]int // mid-refresh, mid-push, mid-read, idle -> kills
	Missed []string
}

type faultLine struct {
	at   time.Duration
	text string
}

func (f *faultRun) note(at time.Duration, text string) {
	f.mu.Lock()
	f.lines = append(f.lines, faultLine{at, text})
	f.mu.Unlock()
}

func (f *faultRun) landed(where string) {
	f.mu.Lock()
	f.Landed[where]++
	f.mu.Unlock()
}

func (f *faultRun) missed(text string) {
	f.mu.Lock()
	f.Missed = append(f.Missed, text)
	f.mu.Unlock()
}

// Lines is the log in plan order.
func (f *faultRun) Lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	sort.SliceStable(f.lines, func(i, j int) bool { return f.lines[i].at < f.lines[j].at })
	out := make([]string, len(f.lines))
	for i, l := range f.lines {
		out[i] = l.text
	}
	return out
}

// runFaults executes the plan against the world until it is done or ctx ends. Events that wait
// for something (a Postgres restart, a call to hold) run beside the plan, so it keeps its times.
func runFaults(ctx context.Context, w *world, evs []event) (*faultRun, error) {
	start := time.Now()
	run := &faultRun{Landed: map[string]int{}}
	var bg sync.WaitGroup
	var errMu sync.Mutex
	var errs error
	background := func(e event, fn func() (string, error)) {
		bg.Add(1)
		go func() {
			defer bg.Done()
			text, err := fn()
			run.note(e.At, fmt.Sprintf("%s: %s", e, text))
			if err != nil {
				errMu.Lock()
				errs = errors.Join(errs, err)
				errMu.Unlock()
			}
		}()
	}
	for _, e := range evs {
		if wait := time.Until(start.Add(e.At)); wait > 0 {
			sleepCtx(ctx, wait)
		}
		if ctx.Err() != nil {
			run.note(e.At, fmt.Sprintf("%s: not reached, the soak ended", e))
			if strings.HasPrefix(e.Kind, "kill-mid-") {
				run.missed(e.String() + ": the soak ended first")
			}
			continue
		}
		note := ""
		switch e.Kind {
		case "hook-faults-on":
			w.sb.SetFaults(hookFaults)
		case "errors-on":
			f := w.sb.Faults()
			f.ErrorRate, f.Latency = 0.08, 20*time.Millisecond
			w.sb.SetFaults(f)
		case "errors-off":
			f := w.sb.Faults()
			f.ErrorRate, f.Latency = 0, 0
			w.sb.SetFaults(f)
		case "storm-429-on", "storm-429-off":
			f := w.sb.Faults()
			f.Storm429 = 0
			if e.Kind == "storm-429-on" {
				f.Storm429 = math.MaxInt32 // every Keap call, until the storm is off
			}
			w.sb.SetFaults(f)
		case "kill", "takeover":
			where, text := w.kill(ctx, e.Serve, e.Hold)
			if where != "" {
				run.landed(where)
			}
			note = " " + text
		case "kill-mid-refresh":
			background(e, func() (string, error) {
				// Past Keap's 24 h access-token lifetime: every stored access token is now expired.
				return run.trapKill(ctx, w, newTrap(callRefresh, "", false), func() { w.advanceKeap(25 * time.Hour) },
					"held before Keap saw it (the token row stays locked until the kill ends its session)"), nil
			})
		case "kill-mid-push":
			background(e, func() (string, error) {
				return run.trapKill(ctx, w, newTrap(callWrite, "", true), func() { w.waitBacklog(ctx, 2) },
					"answered by Keap, the answer withheld (its write-back is lost)"), nil
			})
		case "pg-restart":
			// Beside the plan: a slow shutdown must not hold back the rest of it.
			background(e, func() (string, error) {
				t0 := time.Now()
				// Not bound to ctx: the soak ending must not kill pg_ctl halfway.
				if err := w.cluster.Stop(context.WithoutCancel(ctx)); err != nil {
					return "failed", fmt.Errorf("stop Postgres: %w", err)
				}
				stopped := time.Since(t0)
				time.Sleep(e.Hold)
				if err := w.cluster.Start(context.WithoutCancel(ctx)); err != nil {
					return "failed", fmt.Errorf("start Postgres again: %w", err)
				}
				return fmt.Sprintf("fast shutdown took %s, up again at %.2fs", stopped.Round(time.Millisecond),
					time.Since(start).Seconds()), nil
			})
			continue
		}
		if !strings.HasPrefix(e.Kind, "kill-mid-") {
			run.note(e.At, fmt.Sprintf("%s (at %.2fs)%s", e, time.Since(start).Seconds(), note))
		}
		w.log.Info("fault", "event", e.String())
	}
	bg.Wait()
	return run, errs
}

// trapKill arms tr at both serves' taps, sets off cause, waits until one of them holds a
// matching call (or the soak ends: a miss), and SIGKILLs that serve while the call is held. It
// says what landed.
func (run *faultRun) trapKill(ctx context.Context, w *world, tr *trap, cause func(), how string) string {
	for _, s := range w.serves {
		w.taps[s.name].arm(tr)
	}
	defer func() {
		for _, s := range w.serves {
			w.taps[s.name].disarm(tr)
		}
	}()
	cause()
	select {
	case h := <-tr.held:
		where, text := w.kill(ctx, int(h.tap[0]-'A'), 0)
		tr.done(true)
		if where != "" {
			run.landed(where)
		}
		return fmt.Sprintf("serve %s SIGKILLed with its %s %s; %s", h.tap, h.call, how, text)
	case <-ctx.Done():
		tr.done(false)
		text := fmt.Sprintf("MISSED: the soak ended before a %s call came", tr.kind)
		run.missed(text)
		return text
	}
}
