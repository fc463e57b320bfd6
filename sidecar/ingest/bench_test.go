package ingest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// benchContacts is the backfill size; KEAPSYNC_BENCH_CONTACTS overrides it (the issue's figure
// is 100k; CI-sized runs may use less).
func benchContacts() int {
	if n, err := strconv.Atoi(os.Getenv("KEAPSYNC_BENCH_CONTACTS")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// BenchmarkBackfillVsCopy: backfill rows/s (HTTP from the sandbox, each page as one jsonb[], set-based
// apply, triggers and history) divided by the rows/s of a plain COPY of the same Keap rows into
// the same table with its triggers, measured in the same run (goal >= 0.8; the medians of three
// interleaved rounds of each), and divided by the
// rows/s of a COPY of the rows the backfill stored, every column, into a table of the same
// columns without triggers: the physical limit (goal >= 0.3).
func BenchmarkBackfillVsCopy(b *testing.B) {
	n := benchContacts()
	ctx := context.Background()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		w := oauthWorld(b, n)
		// The same rows, as Keap sends them to the backfill: read once through the client.
		var rows [][]any
		fetchStart := time.Now()
		for c, err := range w.api.ContactsSince(ctx, time.Time{}, keap.ContactQuery{OptionalProperties: keap.SyncProperties, Limit: 1000}) {
			if err != nil {
				b.Fatal(err)
			}
			rows = append(rows, []any{w.account, int64(c.ID), json.RawMessage(c.Raw)})
		}
		b.ReportMetric(float64(len(rows))/time.Since(fetchStart).Seconds(), "fetch-only-rows/s")
		reset := func() {
			if _, err := w.db.Exec(ctx, `truncate keap.contacts cascade; delete from keapsync.sync_state;
			    truncate keapsync.change_history; delete from keapsync.sync_cursors`); err != nil {
				b.Fatal(err)
			}
		}
		// The medians of interleaved rounds: in one round, either side alone varied by as much
		// as the gap to the goal on a two-core machine.
		var copies, backfills []float64
		for round := range benchRounds {
			start := time.Now()
			if _, err := w.db.CopyFrom(ctx, pgx.Identifier{"keap", "contacts"}, []string{"account_id", "keap_id", "keap_object"},
				pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
			copies = append(copies, float64(len(rows))/time.Since(start).Seconds())
			reset()
			start = time.Now()
			b.StartTimer()
			if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			backfills = append(backfills, float64(n)/time.Since(start).Seconds())
			if round < benchRounds-1 {
				reset() // the last backfill's rows stay for the trigger-free COPY below
			}
		}
		rows = nil
		ours, copyRate := median(backfills), median(copies)
		b.ReportMetric(ours, "backfill-rows/s")
		b.ReportMetric(copyRate, "copy-rows/s")
		b.ReportMetric(ours/copyRate, "ratio(goal>=0.8)")
		plainRate := plainCopyRate(b, w)
		b.ReportMetric(plainRate, "plain-copy-rows/s")
		b.ReportMetric(ours/plainRate, "ratio-vs-plain-copy(goal>=0.3)")

		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	}
}

// BenchmarkBackfillHeap: the heap a backfill of 100k contacts holds at its peak, and how much
// more that is than for 20k (flat in rows: goal <= 1.5; skipped with -short). A backfill holds
// at most Fetchers pieces (about as many pages) ahead of its apply, so an account smaller than
// that window holds less: both sizes are past it, and their ratio shows growth with the
// account. A benchmark of its own: its worlds (the sandbox holds every contact in this process)
// are gone before BenchmarkBackfillVsCopy times anything, so their heap does not tax its GC.
func BenchmarkBackfillHeap(b *testing.B) {
	if testing.Short() {
		b.Skip("the heap of backfills of 100k and 20k contacts: not in -short")
	}
	ctx := context.Background()
	heap := func(contacts int) float64 {
		w := oauthWorld(b, contacts)
		return heapGrowthMiB(b, func() error { return w.sweeper.Backfill(ctx, w.account, []string{"contact"}) })
	}
	for range b.N {
		large, small := heap(100000), heap(20000)
		b.ReportMetric(large, "backfill-heap-MiB")
		b.ReportMetric(large/small, "heap-5x-rows-ratio(goal<=1.5)")
	}
}

// benchRounds is how many interleaved rounds BenchmarkBackfillVsCopy takes the medians of.
const benchRounds = 3

// median is the middle of xs (odd length).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// plainCopyRate is the rows/s of a COPY of every row (every column) the backfill stored in
// keap.contacts into a table of the same columns, indexes and constraints but no triggers.
func plainCopyRate(b *testing.B, w *world) float64 {
	ctx := context.Background()
	if _, err := w.db.Exec(ctx, `drop table if exists public.bench_plain_contacts;
	    create table public.bench_plain_contacts (like keap.contacts including all)`); err != nil {
		b.Fatal(err)
	}
	rows, err := w.db.Query(ctx, `select * from keap.contacts`)
	if err != nil {
		b.Fatal(err)
	}
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	var all [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, v)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := w.db.CopyFrom(ctx, pgx.Identifier{"public", "bench_plain_contacts"}, cols, pgx.CopyFromRows(all)); err != nil {
		b.Fatal(err)
	}
	return float64(len(all)) / time.Since(start).Seconds()
}

// oauthWorld is a world whose client connects with OAuth, as `keapsync auth login` does (a
// personal key's 240 calls a minute would cap any backfill at 4,000 rows/s, whatever keapsync
// does), and whose sweeper uses the production page size.
func oauthWorld(b *testing.B, contacts int) *world {
	w := newWorld(b, contacts)
	w.sweeper.PageSize = 0
	cfg := keap.DefaultConfig()
	cfg.APIURL = w.sb.URL() + "/crm/rest"
	cfg.Credentials = keap.BearerToken(w.sb.IssueTokens().AccessToken)
	var err error
	if w.api, err = keap.New(cfg); err != nil {
		b.Fatal(err)
	}
	return w
}

// heapGrowthMiB runs f and returns how far the live heap rose above its level before f: what
// f itself holds at its peak. The heap's total size would also count garbage, which the GC lets
// pile up in proportion to whatever else is live, so this reads the live heap each collection
// found. During f the collector runs whenever the heap has grown by a tenth, so collections
// follow f's holdings closely; forcing one every few milliseconds instead costs a whole mark of
// the benchmark's large heap each time, and still missed short peaks between them.
func heapGrowthMiB(b *testing.B, f func() error) float64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := live()
	peak := base
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				peak = max(peak, live())
			}
		}
	}()
	err := f()
	close(stop)
	<-sampled
	if err != nil {
		b.Fatal(err)
	}
	return float64(peak-base) / (1 << 20)
}

// BenchmarkHookedChangesAPICalls: Keap API calls spent per 1000 records of each synced type
// changed in Keap and delivered by hooks (naive: 1000+; goal <= 5), one sub-benchmark per type
// of the registry that has hooks. KEAPSYNC_BENCH_HOOKED sets how many records change (default
// 1000, the issue's figure). Keap holds hookedCollection times as many records of the type as
// change, so a cost that grows with the collection (a listing of all of it) shows.
func BenchmarkHookedChangesAPICalls(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("KEAPSYNC_BENCH_HOOKED")); err == nil && v > 0 {
		n = v
	}
	for _, typ := range objecttype.All {
		if len(typ.Events) == 0 {
			continue
		}
		h, ok := hookedChanges[typ.Name]
		if !ok {
			b.Fatalf("no way to change %ss in Keap for this benchmark: add one to hookedChanges", typ.Name)
		}
		// The count is in the name: one list call covers up to 1000 changes, so a run with
		// fewer changes reports more calls per 1000 than the same code spends on 1000
		// (benchreport judges the goal only at 1000 or more).
		b.Run(typ.Name+"/changes="+strconv.Itoa(n), func(b *testing.B) {
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				benchHookedChanges(b, typ, h, n)
			}
		})
	}
}

// Every type with hooks has a way to change it in BenchmarkHookedChangesAPICalls, checked here
// because make test does not run the benchmarks and a type added without one stops make bench.
func TestHookedChangesCoverEveryHookedType(t *testing.T) {
	for _, typ := range objecttype.All {
		if _, ok := hookedChanges[typ.Name]; len(typ.Events) > 0 && !ok {
			t.Errorf("%s has hooks but no entry in hookedChanges: BenchmarkHookedChangesAPICalls would stop", typ.Name)
		}
	}
}

// hookedCollection is how many times more records of a type Keap holds than the benchmark
// changes. At 1 a listing of the whole collection costs what a listing of the changes does: the
// benchmark reported 1-2 calls per 1000 for products, notes and opportunities, which cost 6, 10
// and 5 with five times as many records in Keap.
const hookedCollection = 5

// hookedAge is how long before the changes the collection was last changed in Keap: older than
// the hour before the oldest hook that a batch reads what changed in, as an account's records
// mostly are. Made during the benchmark, they were all in that hour, and a listing of what
// changed in it (companies, tasks) cost what a listing of the whole collection does.
const hookedAge = 3 * time.Hour

// behindClock is the wall clock behind by a duration, which the sandbox's Advance takes back.
type behindClock time.Duration

func (c behindClock) Now() time.Time { return time.Now().Add(-time.Duration(c)) }

// hookedChange is how the benchmark makes records of one type in Keap and changes them there as
// a person would, so that Keap sends the type's hook.
type hookedChange struct {
	contacts int      // generated contacts the sandbox needs per record (orders, subscriptions come with them)
	needs    []string // types backfilled before this one, as its records refer to them (a note's contact)
	seed     func(w *world, n int) error
	// change changes record id (a Keap id already here) and returns the Keap id it changed.
	change func(w *world, id int64, i int) (int64, error)
}

var hookedChanges = map[string]hookedChange{
	"tag": {
		seed: func(w *world, n int) error {
			for i := range n {
				if _, err := w.sb.CreateTag("Seed tag "+strconv.Itoa(i), "made in Keap"); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(w *world, id int64, _ int) (int64, error) {
			return id, w.sb.EditTag(id, "Changed "+strconv.FormatInt(id, 10))
		},
	},
	"company": {
		seed: func(w *world, n int) error {
			for i := range n {
				if _, err := w.sb.CreateCompany(map[string]any{"company_name": "Company " + strconv.Itoa(i)}); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(w *world, id int64, _ int) (int64, error) {
			return id, w.sb.EditCompany(id, map[string]any{"notes": "Changed " + strconv.FormatInt(id, 10)})
		},
	},
	"product": {
		seed: func(w *world, n int) error {
			for i := range n {
				if _, err := w.sb.CreateProduct(map[string]any{"name": "Product " + strconv.Itoa(i), "price": 100 + i, "short_description": "p"}); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(w *world, id int64, _ int) (int64, error) {
			return id, w.sb.EditProduct(id, map[string]any{"description": "Changed " + strconv.FormatInt(id, 10)})
		},
	},
	"contact": {contacts: 2, change: func(w *world, id int64, _ int) (int64, error) {
		return id, w.sb.EditContact(id, map[string]any{"job_title": "Changed " + strconv.FormatInt(id, 10)})
	}},
	"task": {
		seed: func(w *world, n int) error {
			for i := range n {
				if _, err := w.sb.CreateTask(map[string]any{"title": "Task " + strconv.Itoa(i), "assigned_to_user_id": "1", "contact_id": "1"}); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(w *world, id int64, _ int) (int64, error) {
			return id, w.sb.EditTask(id, map[string]any{"description": "Changed " + strconv.FormatInt(id, 10)})
		},
	},
	"note": {
		contacts: 1, needs: []string{"contact"},
		seed: func(w *world, n int) error {
			contacts := w.sb.Snapshot().Contacts
			for i := range n {
				contact, err := keapIDOf(contacts[i%len(contacts)])
				if err != nil {
					return err
				}
				if _, err := w.sb.CreateNote(map[string]any{"contact_id": contact, "title": "Note " + strconv.Itoa(i),
					"user_id": 1 + i%3}); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(w *world, id int64, _ int) (int64, error) {
			return id, w.sb.EditNote(id, map[string]any{"body": "Changed " + strconv.FormatInt(id, 10)})
		},
	},
	"opportunity": {
		contacts: 1, needs: []string{"contact", "opportunity_stage"},
		seed: func(w *world, n int) error {
			stage, err := w.sb.CreateOpportunityStage(map[string]any{"name": "Qualified", "order": 1, "probability": 10, "target_number_days": 5})
			if err != nil {
				return err
			}
			contacts := w.sb.Snapshot().Contacts
			for i := range n {
				contact, err := keapIDOf(contacts[i%len(contacts)])
				if err != nil {
					return err
				}
				if _, err := w.sb.CreateOpportunity(map[string]any{"opportunity_title": "Deal " + strconv.Itoa(i),
					"contact_id": strconv.FormatInt(contact, 10), "stage_id": strconv.FormatInt(stage, 10)}); err != nil {
					return err
				}
			}
			return nil
		},
		change: func(w *world, id int64, _ int) (int64, error) {
			return id, w.sb.EditOpportunity(id, map[string]any{"opportunity_notes": "Changed " + strconv.FormatInt(id, 10)})
		},
	},
	// About one generated contact in three has an order, one in ten a subscription.
	"order": {contacts: 4, change: func(w *world, id int64, _ int) (int64, error) {
		return id, w.sb.PayOrder(id, 0.01)
	}},
	"subscription": {contacts: 13, change: func(w *world, id int64, _ int) (int64, error) {
		var active bool
		if err := w.db.QueryRow(context.Background(), `select coalesce(active, false) from keap.subscriptions where keap_id = $1`, id).Scan(&active); err != nil {
			return 0, err
		}
		return id, w.sb.SetSubscriptionActive(id, !active)
	}},
}

// benchHookedChanges backfills records of typ, subscribes to hooks, changes n records in Keap,
// delivers the hooks and times the worker's fetching them; it reports the Keap calls the worker
// made per 1000 changes, after checking every change arrived.
func benchHookedChanges(b *testing.B, typ objecttype.Type, h hookedChange, n int) {
	ctx := context.Background()
	w := newWorldWith(b, sandbox.Options{Seed: 7, Contacts: max(5, h.contacts*n*hookedCollection), Clock: behindClock(hookedAge)})
	if h.seed != nil {
		if err := h.seed(w, n*hookedCollection); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.sweeper.Backfill(ctx, w.account, append(slices.Clone(h.needs), typ.Name)); err != nil {
		b.Fatal(err)
	}
	w.sb.Advance(hookedAge) // the changes are made now
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		b.Fatal(err)
	}
	// The records' tables come from the registry, not from input.
	table := pgx.Identifier{"keap", typ.Table}.Sanitize()
	var here []int64
	if err := w.db.QueryRow(ctx, `select coalesce(array_agg(keap_id order by keap_id), '{}') from (select keap_id from `+table+
		` where keap_id is not null order by keap_id limit $1) s`, n).Scan(&here); err != nil {
		b.Fatal(err)
	}
	if len(here) < n {
		b.Fatalf("%d %s records here, want %d to change", len(here), typ.Name, n)
	}
	var before time.Time
	if err := w.db.QueryRow(ctx, `select clock_timestamp()`).Scan(&before); err != nil {
		b.Fatal(err)
	}
	changed := make([]int64, 0, n)
	for i := range n {
		var id int64
		if i < len(here) {
			id = here[i]
		}
		kid, err := h.change(w, id, i)
		if err != nil {
			b.Fatal(err)
		}
		changed = append(changed, kid)
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		b.Fatal(err)
	}
	w.sb.ClearRequests()
	w.worker.Window = 0
	b.StartTimer()
	for {
		did, err := w.worker.RunOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if !did {
			break
		}
	}
	b.StopTimer()
	calls := 0
	for _, r := range w.sb.Requests() {
		if strings.HasPrefix(r.Path, "/crm/rest/") {
			calls++
		}
	}
	var arrived int
	if err := w.db.QueryRow(ctx, `select count(*) from `+table+` where account_id = $1 and keap_id = any($2) and updated_at > $3`,
		w.account, changed, before).Scan(&arrived); err != nil {
		b.Fatal(err)
	}
	if arrived != n {
		b.Fatalf("%d of %d %s changes arrived", arrived, n, typ.Name)
	}
	b.ReportMetric(float64(calls)*1000/float64(n), "calls/1000-changes(goal<=5)")
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// peakRSSMiB reads the process's high-water resident set (VmHWM).
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkPipelinedBackfill: a backfill of KEAPSYNC_BENCH_PIPELINE_CONTACTS contacts (default
// 20,000, the issue's figure) with the sandbox answering each call after 1 s, as real Keap
// answers a 1000-contact page, fetching ranges at once (the default), divided into the same
// backfill fetching one page at a time (Fetchers 1, applying still overlapped), measured in the
// same run (the pipelined one three times, and the median taken). Goal >= 5.
func BenchmarkPipelinedBackfill(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("KEAPSYNC_BENCH_PIPELINE_CONTACTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		w := oauthWorld(b, n)
		w.sb.SetFaults(sandbox.Faults{Latency: time.Second})
		run := func(fetchers int) float64 {
			if _, err := w.db.Exec(ctx, `truncate keap.contacts cascade; delete from keapsync.sync_state; truncate keapsync.change_history;
			    delete from keapsync.sync_cursors`); err != nil {
				b.Fatal(err)
			}
			w.sweeper.Fetchers = fetchers
			w.sb.ClearRequests()
			start := time.Now()
			if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
				b.Fatal(err)
			}
			took := time.Since(start).Seconds()
			if got := w.count(b, `select count(*) from keap.contacts`); got != n {
				b.Fatalf("backfill stored %d of %d contacts", got, n)
			}
			return took
		}
		serial := run(1)
		// The median of three pipelined runs: bound by the apply, one run varies by a tenth on a
		// two-core machine; the one-page-at-a-time run is bound by Keap's latency and varies little.
		var runs []float64
		for range benchRounds {
			b.StartTimer()
			runs = append(runs, run(0))
			b.StopTimer()
		}
		pipelined := median(runs)
		// How long Keap was being asked (in the last run): what pipelining shortens; the rest is the apply's.
		var last time.Time
		calls := 0
		for _, r := range w.sb.Requests() {
			if strings.HasPrefix(r.Path, "/crm/rest/") {
				calls++
				last = latest(last, r.At.Add(r.Duration))
			}
		}
		if reqs := w.sb.Requests(); len(reqs) > 0 {
			b.ReportMetric(last.Sub(reqs[0].At).Seconds(), "pipelined-fetch-s")
		}
		b.ReportMetric(float64(calls), "pipelined-calls")
		b.ReportMetric(float64(n)/serial, "one-page-at-a-time-rows/s")
		b.ReportMetric(float64(n)/pipelined, "pipelined-rows/s")
		b.ReportMetric(serial/pipelined, "ratio(goal>=5)")
	}
}
