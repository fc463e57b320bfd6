package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
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
	expire := at(0.3, 0.5)
	evs := []event{
		{At: 0, Kind: "hook-faults-on"},
		{At: errStart, Kind: "errors-on"},
		{At: errStart + d/5, Kind: "errors-off"},
		{At: at(0.2, 0.5), Kind: "storm-429"},
		{At: at(0.6, 0.9), Kind: "storm-429"},
		{At: expire, Kind: "expire-token"},
		// Right after the clock jump the next call gets a 401 and refreshes: mid-refresh.
		{At: expire + ms(20, 300), Kind: "kill", Serve: rnd.IntN(2)},
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

// runFaults executes the plan against the world until it is done or ctx ends; it returns the
// log of what happened when, for the report.
func runFaults(ctx context.Context, w *world, evs []event) (done []string, err error) {
	start := time.Now()
	var pg sync.WaitGroup
	pgErr, pgNote := make(chan error, 1), make(chan string, 1)
	defer func() {
		pg.Wait()
		select {
		case n := <-pgNote:
			done = append(done, n)
		default:
		}
		select {
		case e := <-pgErr:
			err = errors.Join(err, e)
		default:
		}
	}()
	for _, e := range evs {
		if wait := time.Until(start.Add(e.At)); wait > 0 {
			sleepCtx(ctx, wait)
		}
		if ctx.Err() != nil {
			done = append(done, fmt.Sprintf("%s: not reached, the soak ended", e))
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
		case "storm-429":
			f := w.sb.Faults()
			f.Storm429 += 40
			w.sb.SetFaults(f)
		case "expire-token":
			// Past Keap's 24 h access-token lifetime: every stored access token is now expired.
			w.sb.Advance(25 * time.Hour)
		case "kill", "takeover":
			if !w.serves[e.Serve].kill(e.Hold) {
				note = " (was not running)"
			}
		case "pg-restart":
			// In the background: a slow shutdown must not hold back the rest of the plan.
			pg.Add(1)
			go func(e event) {
				defer pg.Done()
				t0 := time.Now()
				// Not bound to ctx: the soak ending must not kill pg_ctl halfway.
				if err := w.cluster.Stop(context.WithoutCancel(ctx)); err != nil {
					pgErr <- fmt.Errorf("stop Postgres: %w", err)
					return
				}
				stopped := time.Since(t0)
				time.Sleep(e.Hold)
				if err := w.cluster.Start(context.WithoutCancel(ctx)); err != nil {
					pgErr <- fmt.Errorf("start Postgres again: %w", err)
					return
				}
				pgNote <- fmt.Sprintf("Postgres restart at %.2fs: fast shutdown took %s, up again at %.2fs",
					e.At.Seconds(), stopped.Round(time.Millisecond), time.Since(start).Seconds())
			}(e)
		}
		done = append(done, fmt.Sprintf("%s (at %.2fs)%s", e, time.Since(start).Seconds(), note))
		w.log.Info("fault", "event", e.String())
	}
	return done, nil
}
