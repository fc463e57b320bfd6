package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// Run performs one soak and returns its report. An error means the harness itself could not
// do its job (a report may still come with it); a report that is not OK means the engine did
// not converge.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg.defaults()
	start := time.Now()
	w, err := newWorld(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rep = &Report{Cfg: cfg, Dir: w.dir, KillsLanded: map[string]int{}}
	defer func() {
		rep.Serves = w.serveSummary()
		w.close()
		rep.Elapsed = time.Since(start)
		if err != nil {
			rep.HarnessErr = err.Error()
		}
		if err == nil && rep.OK() {
			_ = os.RemoveAll(w.dir)
		}
	}()
	setup, err := w.prepare(ctx)
	if setup != "" {
		rep.Faults = append(rep.Faults, setup)
		rep.KillsLanded["mid-backfill"]++
	}
	if err != nil {
		return rep, err
	}
	u, initial := w.universe()
	led := newLedger()
	ka := &keapActor{sb: w.sb, u: u, rnd: rand.New(rand.NewPCG(uint64(cfg.Seed), 3)), led: led}
	la := &localActor{pool: w.pool, account: w.account, u: u, rnd: rand.New(rand.NewPCG(uint64(cfg.Seed), 4)), led: led}

	soakStart := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	faultsDone := make(chan error, 1)
	var faults *faultRun
	go func() {
		var ferr error
		faults, ferr = runFaults(runCtx, w, plan(cfg.Seed, cfg.Duration))
		faultsDone <- ferr
	}()
	runActors(runCtx, ka, la, cfg.Rate)
	cancel()
	ferr := <-faultsDone
	rep.Faults = append(rep.Faults, faults.Lines()...)
	for where, n := range faults.Landed {
		rep.KillsLanded[where] += n
	}
	rep.MissedKills = faults.Missed
	if ferr != nil {
		return rep, ferr
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}

	// Faults off; let everything drain; one reconcile pass with the delete sweep; drain again.
	w.sb.SetFaults(sandbox.Faults{})
	for _, s := range w.serves {
		if err := s.waitUp(ctx, time.Minute); err != nil {
			return rep, err
		}
	}
	if err := w.quiesce(ctx, cfg.Quiesce); err != nil {
		rep.QuiesceErr = "before reconcile: " + err.Error()
		w.stuck(rep)
	}
	out, rerr := w.cli(ctx, append([]string{"reconcile", "--deletes"}, w.keapArgs...)...)
	rep.Reconcile = strings.Join(strings.Fields(out), " ")
	if rerr != nil {
		return rep, fmt.Errorf("reconcile: %w\n%s", rerr, out)
	}
	if err := w.quiesce(ctx, cfg.Quiesce); err != nil && rep.QuiesceErr == "" {
		rep.QuiesceErr = "after reconcile: " + err.Error()
		w.stuck(rep)
	}
	return rep, w.check(ctx, rep, led, u, initial, soakStart)
}

// universe picks what the actors fight over from the state after backfill: 40 hot contacts
// (seeded), every tag, the free-text custom field, every product and the orders. It also
// returns the contacts' state, the baseline for fields nobody wrote.
func (w *world) universe() (universe, map[int64]fields) {
	st := w.sb.Snapshot()
	initial, _ := keapContacts(st)
	var u universe
	u.all = sortedKeys(initial)
	rnd := rand.New(rand.NewPCG(uint64(w.cfg.Seed), 5))
	hot := slices.Clone(u.all)
	rnd.Shuffle(len(hot), func(i, j int) { hot[i], hot[j] = hot[j], hot[i] })
	u.hot = hot[:min(40, len(hot))]
	for _, t := range st.Tags {
		u.tags = append(u.tags, asInt64(t["id"]))
	}
	for _, f := range st.CustomFields {
		if f.FieldType == "Text" && f.RecordType == "CONTACT" {
			u.cf = f.ID
		}
	}
	for _, p := range st.Products {
		u.products = append(u.products, p.ID)
	}
	for i, o := range st.Orders {
		id := asInt64(o["id"])
		u.orders = append(u.orders, id)
		switch {
		case i%2 == 0:
			u.payable = append(u.payable, id)
		case scalar(o["total_paid"]) == "0":
			u.deletable = append(u.deletable, id)
		}
	}
	return u, initial
}
