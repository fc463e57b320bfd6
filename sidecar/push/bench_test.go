package push_test

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/push"
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
	w.eventually("the slot", func() bool {
		return w.int(`select count(*) from pg_replication_slots where slot_name = $1 and active`, w.slot) == 1
	})
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
// over and over (one edit per transaction, random order) while the pusher runs.
func BenchmarkCoalescing(b *testing.B) {
	const contacts, edits = 100, 1000
	w := newWorld(b, contacts)
	cfg := w.config(nil)
	cfg.Settle = push.DefaultConfig().Settle
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
	calls := 0
	for i := 0; i < b.N; i++ {
		w.sb.ClearRequests()
		for e := range edits {
			w.exec(`update keap.contacts set job_title = $2 where id = $1`, ids[rand.IntN(len(ids))], "Edit "+strconv.Itoa(i*edits+e))
		}
		w.quiet()
		calls += len(w.writes())
	}
	b.ReportMetric(float64(calls)/float64(b.N)/edits*1000, "calls/1000edits")
}
