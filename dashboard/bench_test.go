package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sqlBenchData bulk-loads a large account beside the demo one, set-based: $2 contacts, one tag
// each, $2/10 orders and $2/20 subscriptions. session_replication_role = replica (the test
// cluster's superuser) switches the history and signal triggers off: history rows for a
// synthetic million would only slow the setup. The KPI summary triggers are ENABLE ALWAYS, so
// they still run, once per statement, as they would for a backfill.
var sqlBenchData = []string{`set session_replication_role = replica`, `
insert into keap.contacts (account_id, keap_id, given_name, family_name, email, company_name, date_created, last_updated)
select $1, 100000 + g, 'Given' || g, 'Family' || (g % 997), 'bench' || g || '@example.com', 'Co' || (g % 50),
       timestamptz '2025-11-01' + (g % 400) * interval '1 day', timestamptz '2026-06-01' + g * interval '1 second'
  from generate_series(1, $2::int) g`, `
insert into keap.tags (account_id, keap_id, name) select $1, 9000 + i, 'Bench tag ' || i from generate_series(1, 20) i`, `
insert into keap.contact_tags (account_id, contact_id, tag_id)
select c.account_id, c.id, t.id from keap.contacts c
  join keap.tags t on t.account_id = c.account_id and t.keap_id = 9000 + 1 + c.id % 20
 where c.account_id = $1`, `
insert into keap.orders (account_id, keap_id, contact_keap_id, title, status, order_date, total, total_paid)
select $1, 500000 + g, 100000 + g * 10, 'Order ' || g, 'PAID', timestamptz '2025-12-01' + g * interval '2 minutes', 49 + g % 200, 49 + g % 200
  from generate_series(1, $2::int / 10) g`, `
insert into keap.subscriptions (account_id, keap_id, contact_keap_id, active, billing_amount, billing_cycle, billing_frequency, quantity)
select $1, 700000 + g, 100000 + g * 20, g % 5 <> 0, 10 + g % 90, (array['MONTH', 'YEAR', 'WEEK'])[1 + g % 3], 1, 1
  from generate_series(1, $2::int / 20) g`, `set session_replication_role = origin`, `analyze`}

// BenchmarkRender measures overview and sync-health render time (request in, HTML out, as a
// member under RLS) and reports p95. Size: KEAPSYNC_BENCH_CONTACTS, default 1,000,000, the size
// issue 7 judges the goal at (loading it takes about a minute; the renders read summaries, so
// their time barely depends on it).
func BenchmarkRender(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("KEAPSYNC_BENCH_CONTACTS")); err == nil && v > 0 {
		n = v
	}
	db := seededPool(b)
	start := time.Now()
	ctx := context.Background()
	conn, err := db.Acquire(ctx) // one session: session_replication_role must hold throughout
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range sqlBenchData {
		var args []any
		switch {
		case strings.Contains(q, "$2"):
			args = []any{accountB, n}
		case strings.Contains(q, "$1"):
			args = []any{accountB}
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			conn.Release() // or the pool's cleanup waits for it forever
			b.Fatalf("bench data: %v", err)
		}
	}
	var total int64 // what the overview must show: the load, and the fixtures' contact of B
	err = conn.QueryRow(ctx, `select count(*) from keap.contacts where account_id = $1`, accountB).Scan(&total)
	conn.Release()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d contacts, %d orders, %d subscriptions into one account in %s", n, n/10, n/20, time.Since(start).Round(time.Second))
	e := startEnv(b, db)
	tok, _, err := e.srv.mint.access(adminB, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, page := range []string{"/", "/health"} {
		name := map[string]string{"/": "overview", "/health": "sync-health"}[page]
		b.Run(name+"/contacts="+strconv.Itoa(n), func(b *testing.B) {
			// Several samples per iteration, so -benchtime 3x still yields a p95; at most ~5 s
			// of them, so a slow page does not turn the benchmark into an hour.
			var d []time.Duration
			for i := 0; i < b.N; i++ {
				began := time.Now()
				for s := 0; s < 20 && (s < 3 || time.Since(began) < 5*time.Second); s++ {
					req := httptest.NewRequest(http.MethodGet, page, nil)
					req.AddCookie(&http.Cookie{Name: cookieAccess, Value: tok})
					rec := httptest.NewRecorder()
					t0 := time.Now()
					e.srv.Handler().ServeHTTP(rec, req)
					d = append(d, time.Since(t0))
					if rec.Code != 200 {
						b.Fatalf("%s: %d %s", page, rec.Code, rec.Body.String())
					}
					// Fast must still be right: the summaries counted the bulk load.
					if page == "/" && s == 0 && !strings.Contains(rec.Body.String(), ">"+group(itoa(total))+"<") {
						b.Fatalf("the overview does not show the %d contacts", total)
					}
				}
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)*95/100].Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
