package push_test

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

const recvlogical = "/usr/lib/postgresql/15/bin/pg_recvlogical"

// BenchmarkSlotThroughput: changes per second the consumer takes off the slot (decoded, written
// to the push queue, confirmed) against pg_recvlogical reading the same workload from a slot
// of its own in the same run (to a file; no work done). Goal: ratio >= 0.5.
func BenchmarkSlotThroughput(b *testing.B) {
	const rows = 10000
	if _, err := exec.LookPath(recvlogical); err != nil {
		b.Skip("pg_recvlogical not installed")
	}
	w := newWorld(b, 0)
	p := w.pusher(w.config(nil))
	stop := w.start(p.Consume) // creates the publication and the slot
	w.streaming()
	stop()
	recvSlot := w.slot + "_recv"
	w.exec(`select pg_create_logical_replication_slot($1, 'pgoutput')`, recvSlot)
	b.Cleanup(func() { _, _ = w.db.Exec(context.Background(), `select pg_drop_replication_slot($1)`, recvSlot) })
	// Rows as a backfill writes them (Keap's origin: not pushed); the workload edits them locally.
	err := pgx.BeginFunc(context.Background(), w.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `select keapsync.set_origin('keap')`); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), `insert into keap.contacts (account_id, keap_id, given_name, email)
		    select $1, 1000000 + g, 'Bench ' || g, 'bench' || g || '@example.com' from generate_series(1, $2) g`, w.account, rows)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}

	var ours, theirs time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w.exec(`update keap.contacts set job_title = $1`, "Run "+strconv.Itoa(i)+" "+strconv.Itoa(rand.Int()))
		var end string
		if err := w.db.QueryRow(context.Background(), `select pg_current_wal_lsn()::text`).Scan(&end); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		start := time.Now()
		cmd := exec.Command(recvlogical, "-d", w.db.Config().ConnString(), "--slot", recvSlot, "--start",
			"-o", "proto_version=1", "-o", "publication_names=keapsync_push", "-E", end, "-f", "/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("pg_recvlogical: %v: %s", err, out)
		}
		theirs += time.Since(start)

		start = time.Now()
		stop := w.start(p.Consume)
		w.eventually("the consumer to confirm "+end, func() bool {
			return w.int(`select count(*) from pg_replication_slots where slot_name = $1 and confirmed_flush_lsn >= $2::pg_lsn`, w.slot, end) == 1
		})
		ours += time.Since(start)
		stop()
		if n := w.int(`select count(*) from keapsync.push_queue`); n != rows {
			b.Fatalf("%d of %d changed records queued", n, rows)
		}
		w.exec(`delete from keapsync.push_queue`)
	}
	changes := float64(rows * b.N)
	b.ReportMetric(changes/ours.Seconds(), "changes/s")
	b.ReportMetric(changes/theirs.Seconds(), "recvlogical-changes/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio-vs-recvlogical")
}

// BenchmarkCoalescing: Keap calls per 1000 local edits when the same 100 contacts are edited
// over and over (one edit per transaction, random order, from 8 connections so the burst's
// length is the database's and not one connection's round trips) while the pusher runs. A
// record whose edits are further apart than the settle time is pushed once for its first edit
// (a single edit goes fast) and once for the rest; a burst longer than MaxSettle (burst-s) pushes
// a record about once more per MaxSettle.
//
// It runs with the product's default (every update fetches first: KnownFor 0) and with the
// opt-in --push-known-for 10s, which lets a hot record's update go without the fetch.
func BenchmarkCoalescing(b *testing.B) {
	for _, knownFor := range []time.Duration{push.DefaultConfig().KnownFor, 10 * time.Second} {
		b.Run("known-for="+knownFor.String(), func(b *testing.B) { benchCoalescing(b, knownFor) })
	}
}

func benchCoalescing(b *testing.B, knownFor time.Duration) {
	const contacts, edits, editors = 100, 1000, 8
	w := newWorld(b, contacts)
	cfg := w.config(nil)
	// The product's settle (a MaxSettle below Settle is raised to it: set both).
	def := push.DefaultConfig()
	cfg.Settle, cfg.MaxSettle, cfg.KnownFor = def.Settle, def.MaxSettle, knownFor
	w.start(w.pusher(cfg).Run)
	w.quiet()
	rows, err := w.db.Query(context.Background(), `select id from keap.contacts`)
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	calls, writes, listings := 0, 0, 0
	var burst time.Duration
	for i := 0; i < b.N; i++ {
		w.sb.ClearRequests()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, editors)
		for g := range editors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for e := g; e < edits; e += editors {
					if _, err := w.db.Exec(context.Background(), `update keap.contacts set job_title = $2 where id = $1`,
						ids[rand.IntN(len(ids))], "Edit "+strconv.Itoa(i*edits+e)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		burst += time.Since(start)
		w.quiet()
		calls += len(w.sb.Requests())
		writes += len(w.writes())
		listings += w.listings()
	}
	// Calls: the PATCHes, and a GET (FetchBeforeUpdate) before each one whose Keap version is
	// not known current.
	b.ReportMetric(float64(calls)/float64(b.N)/edits*1000, "calls/1000edits(goal<=150)")
	b.ReportMetric(float64(writes)/float64(b.N)/edits*1000, "writes/1000edits")
	// Of the calls, the listings that read several due contacts at once (preread).
	b.ReportMetric(float64(listings)/float64(b.N)/edits*1000, "listings/1000edits")
	// How long the edits took: a burst longer than MaxSettle is pushed more than once per record.
	b.ReportMetric(burst.Seconds()/float64(b.N), "burst-s")
}

// BenchmarkLatency: commit-to-Keap time (the PATCH reaching the sandbox) of single edits
// spread over a second, under budget, with the default settle window (which is most of it).
// The edits are cold: records not pushed lately, whose Keap version is not known current, so
// each push reads the contact first (GET, then PATCH).
func BenchmarkLatency(b *testing.B) {
	const contacts = 20
	w := newWorld(b, contacts)
	cfg := w.config(nil)
	def := push.DefaultConfig()
	cfg.Settle, cfg.MaxSettle, cfg.KnownFor = def.Settle, def.MaxSettle, def.KnownFor
	cfg.PollInterval, cfg.FlushInterval = def.PollInterval, def.FlushInterval
	w.start(w.pusher(cfg).Run)
	w.quiet()
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		w.exec(`update keapsync.sync_state set last_applied_at = now() - interval '1 hour', last_pushed_at = now() - interval '1 hour'`)
		w.sb.ClearRequests()
		committed := map[int64]time.Time{}
		for n := range contacts {
			id, kid := w.synced(n)
			w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, "Latency "+strconv.Itoa(i))
			committed[kid] = time.Now()
			time.Sleep(50 * time.Millisecond)
		}
		w.quiet()
		for _, r := range w.sb.Requests() {
			if r.Method != "PATCH" {
				continue
			}
			kid, _ := strconv.ParseInt(r.Path[strings.LastIndex(r.Path, "/")+1:], 10, 64)
			if at, ok := committed[kid]; ok {
				lat = append(lat, r.At.Sub(at))
			}
		}
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no PATCH seen")
	}
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms(goal<=1000)")
}

// BenchmarkBacklogDrain: share of Keap's rate budget used while a backlog of 10k edits (10 edits
// of each of 1000 contacts) drains, against a sandbox that enforces a 100/s key limit (Keap's
// own 25/s would take minutes for the same proof). The window runs from the first call to the
// last, as the sandbox saw them. Goal: >= 0.95 with no 429s.
func BenchmarkBacklogDrain(b *testing.B) {
	const records, edits, perSecond = 1000, 10, 100
	w := newWorldWith(b, sandbox.Options{Seed: 11, Contacts: records, Limits: sandbox.Limits{KeyPerSecond: perSecond,
		KeyPerMinute: perSecond * 60, KeyPerDay: 1e9, TenantPerMinute: 1e8, TenantPerDay: 1e9}})
	limited := w.client(keap.Limits{PerSecond: perSecond, PerMinute: perSecond * 60, PerDay: 1e9})
	cfg := w.config(func(context.Context, string) (push.Keap, error) { return limited, nil })
	// Four times Keap's rate wants more records in flight than the default 4 (--push-workers).
	cfg.Workers = 16
	p := w.pusher(cfg)
	w.start(p.Consume)
	w.enqueued() // the slot exists: what follows is read from it
	var calls, throttled float64
	var window time.Duration
	for i := 0; i < b.N; i++ {
		for e := range edits {
			w.exec(`update keap.contacts set job_title = $1`, "Backlog "+strconv.Itoa(i)+"."+strconv.Itoa(e))
		}
		w.enqueued()
		w.sb.ClearRequests()
		stop := w.start(p.Work)
		w.eventually("the backlog to drain", func() bool { return w.int(`select count(*) from keapsync.push_queue`) == 0 })
		stop()
		reqs := w.sb.Requests()
		window += reqs[len(reqs)-1].At.Sub(reqs[0].At)
		for _, r := range reqs {
			calls++
			if r.Status == 429 {
				throttled++
			}
		}
	}
	// n calls at the full rate span (n-1)/rate seconds.
	b.ReportMetric((calls-float64(b.N))/(window.Seconds()*perSecond), "budget-used")
	b.ReportMetric(throttled, "429s")
	b.ReportMetric(calls/float64(b.N*records*edits)*1000, "calls/1000-edits")
}
