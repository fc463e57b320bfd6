package dashboard

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPagesRenderForMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(adminA)
	for _, p := range []string{"/", "/health", "/conflicts", "/dead-letters", "/data/contacts", "/data/orders",
		"/data/contacts?q=ada&sort=name&dir=asc", "/data/orders?status=PAID&sort=total", "/data/companies?q=ac&sort=updated&dir=desc",
		"/data/companies.csv", "/settings", "/history?table=companies&row=1",
		"/history?table=contacts&row=1", "/?fragment=kpis", "/health?fragment=health"} {
		resp, body := c.get(p)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d\n%s", p, resp.StatusCode, body)
		}
	}
	_, body := c.get("/")
	for _, want := range []string{"1,200", "Demo Company", "New contacts per week", "<svg", "Customer"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if csp := mustGet(t, c, "/").Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

// A contact can carry a tag Keap has not sent yet (the tag row has its id, not its name).
func TestOverviewWithUnnamedTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.db.Exec(context.Background(), `with t as (insert into keap.tags (account_id, keap_id) values ($1, 999) returning id, account_id)
		insert into keap.contact_tags (account_id, contact_id, tag_id)
		select t.account_id, c.id, t.id from t join keap.contacts c on c.account_id = t.account_id and c.keap_id < 1010`, accountA); err != nil {
		t.Fatal(err)
	}
	resp, body := e.as(adminA).get("/")
	if resp.StatusCode != 200 || !strings.Contains(body, "Tag 999") {
		t.Fatalf("overview: %d\n%s", resp.StatusCode, body)
	}
}

func mustGet(t *testing.T, c *client, path string) *http.Response {
	t.Helper()
	resp, _ := c.get(path)
	return resp
}

// RLS, not Go, hides account B from A's members: in lists, by id, by account parameter, in CSV.
func TestMemberOfANeverSeesB(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(adminA)
	_, body := c.get("/data/contacts?q=bertha")
	if strings.Contains(body, "Secretkeeper") || strings.Contains(body, "bertha@other") {
		t.Fatal("A's admin sees B's contact")
	}
	if _, body = c.get("/dead-letters"); strings.Contains(body, "B-only") || !strings.Contains(body, "email address is invalid") {
		t.Fatalf("dead letters: %s", body)
	}
	if resp, _ := c.get("/conflicts/" + e.conflictID(accountB)); resp.StatusCode != 404 {
		t.Fatalf("B's conflict by id: %d, want 404", resp.StatusCode)
	}
	for _, p := range []string{"/?account=" + accountB, "/health?account=" + accountB, "/data/contacts.csv?account=" + accountB} {
		if resp, _ := c.get(p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	_, csv := c.get("/data/contacts.csv")
	if strings.Contains(csv, "Secretkeeper") {
		t.Fatal("CSV export leaks B")
	}
	// Acting on B's rows fails in SQL, not just in the UI: to A's admin, B's conflict does not
	// exist (keapsync.require_admin_or_hide), as when reading it, so its id tells nothing.
	resp, body := c.post("/conflicts/"+e.conflictID(accountB)+"/resolve", url.Values{"choice": {"keap"}})
	if resp.StatusCode != 404 || strings.Contains(body, accountB) {
		t.Fatalf("resolve B's conflict as A: %d, want 404 without B's id\n%s", resp.StatusCode, body)
	}
	if got := e.scalar(`select count(*)::text from keapsync.conflicts where account_id = $1 and status = 'open'`, accountB); got != "1" {
		t.Fatalf("B's open conflicts = %s", got)
	}
	// And B's admin sees B, not A.
	_, body = e.as(adminB).get("/data/contacts")
	if !strings.Contains(body, "Secretkeeper") || strings.Contains(body, "Lovelace") {
		t.Fatal("B's admin sees the wrong rows")
	}
}

// Sync health shows the account's Keap budget as serve recorded it; a member sees their own
// account's numbers only (RLS on keapsync.rate_budget_usage).
func TestHealthShowsKeapBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(viewerA)
	if _, body := c.get("/health"); !strings.Contains(body, "No Keap calls reported yet") {
		t.Fatalf("before any report: %s", body)
	}
	if _, err := e.db.Exec(context.Background(), `insert into keapsync.rate_budget_usage
		(account_id, per_minute, minute_available, per_day, day_available, day_resets_at) values
		($1, 10000, 9876, 250000, 237655, now() + interval '5 hours'),
		($2, 10000, 1, 250000, 172223, now() + interval '5 hours')`, accountA, accountB); err != nil {
		t.Fatal(err)
	}
	_, body := c.get("/health")
	for _, want := range []string{`data-budget="day-used">12,345 / 250,000`, `data-budget="minute-left">9,876`, "Daily quota used: 4%"} {
		if !strings.Contains(body, want) {
			t.Errorf("health lacks %q", want)
		}
	}
	if strings.Contains(body, "77,777") {
		t.Error("A's viewer sees B's budget")
	}
	if _, body := e.as(adminB).get("/health"); !strings.Contains(body, "77,777 / 250,000") {
		t.Error("B's admin does not see B's budget")
	}
}

func TestViewerCannotResolve(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.conflictID(accountA)
	v := e.as(viewerA)
	if _, body := v.get("/conflicts/" + id); !strings.Contains(body, "only admins resolve") || strings.Contains(body, "Keep Keap") {
		t.Fatalf("viewer's conflict page offers actions:\n%s", body)
	}
	resp, body := v.post("/conflicts/"+id+"/resolve", url.Values{"choice": {"keap"}})
	if resp.StatusCode != 403 || !strings.Contains(body, "Only an admin") {
		t.Fatalf("viewer resolve: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = v.post("/conflicts/bulk", url.Values{"account": {accountA}, "policy": {"keap_wins"}})
	if resp.StatusCode != 403 {
		t.Fatalf("viewer bulk resolve: %d", resp.StatusCode)
	}
	if resp, _ := v.post("/dead-letters/1/retry", url.Values{"account": {accountA}}); resp.StatusCode != 403 {
		t.Fatalf("viewer retry: %d", resp.StatusCode)
	}
	if got := e.scalar(`select status from keapsync.conflicts where id = $1::bigint`, id); got != "open" {
		t.Fatalf("conflict is %s after a viewer tried", got)
	}
}

func TestAdminResolvesRetriesRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(adminA)
	id := e.conflictID(accountA)
	_, body := c.get("/conflicts/" + id)
	for _, want := range []string{"Ada (local)", "Ada (Keap)", "&#34;Grace&#34;", "Keep Keap"} {
		if !strings.Contains(body, want) {
			t.Errorf("conflict page lacks %q", want)
		}
	}
	resp, body := c.post("/conflicts/"+id+"/resolve", url.Values{"choice": {"value"}, "value": {"Ada Edited"}})
	if resp.StatusCode != 303 {
		t.Fatalf("resolve: %d\n%s", resp.StatusCode, body)
	}
	if got := e.scalar(`select resolution || ' ' || (resolved_value #>> '{}') || ' ' || resolved_by::text from keapsync.conflicts where id = $1::bigint`, id); got != "value Ada Edited "+adminA {
		t.Fatalf("resolved as %q", got)
	}
	if got := e.scalar(`select given_name from keap.contacts where account_id = $1 and keap_id = 1001`, accountA); got != "Ada Edited" {
		t.Fatalf("contact given_name = %q", got)
	}
	// Resolving twice says what happened instead of failing obscurely.
	if resp, body := c.post("/conflicts/"+id+"/resolve", url.Values{"choice": {"keap"}}); resp.StatusCode != 409 || !strings.Contains(body, "already resolved") {
		t.Fatalf("second resolve: %d %s", resp.StatusCode, body)
	}

	dl := e.scalar(`select id::text from keapsync.dead_letters where account_id = $1`, accountA)
	if resp, _ := c.post("/dead-letters/"+dl+"/retry", url.Values{"account": {accountA}}); resp.StatusCode != 303 {
		t.Fatalf("retry: %d", resp.StatusCode)
	}
	if got := e.scalar(`select status from keapsync.dead_letters where id = $1::bigint`, dl); got != "retry" {
		t.Fatalf("dead letter %s", got)
	}
	if resp, _ := c.post("/dead-letters/"+dl+"/discard", url.Values{"account": {accountA}}); resp.StatusCode != 303 {
		t.Fatalf("discard: %d", resp.StatusCode)
	}

	row := e.scalar(`select id::text from keap.contacts where account_id = $1 and keap_id = 1001`, accountA)
	h := e.scalar(`select id::text from keapsync.change_history where table_name = 'contacts' and row_id = $1::bigint and origin = 'resolve' order by id desc limit 1`, row)
	if _, body := c.get("/history?table=contacts&row=" + row); !strings.Contains(body, "Roll back") {
		t.Fatal("history page lacks rollback")
	}
	if resp, body := c.post("/history/"+h+"/rollback", url.Values{}); resp.StatusCode != 303 {
		t.Fatalf("rollback: %d %s", resp.StatusCode, body)
	}
	if got := e.scalar(`select given_name from keap.contacts where id = $1::bigint`, row); got != "Ada (local)" {
		t.Fatalf("after rollback given_name = %q", got)
	}

	resp, _ = c.post("/conflicts/bulk", url.Values{"account": {accountA}, "policy": {"keap_wins"}})
	if resp.StatusCode != 303 {
		t.Fatalf("bulk: %d", resp.StatusCode)
	}
}

func TestCSRFRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(adminA)
	id := e.conflictID(accountA)
	for name, form := range map[string]url.Values{
		"missing": {"choice": {"keap"}, "csrf": {""}},
		"wrong":   {"choice": {"keap"}, "csrf": {strings.Repeat("x", 43)}},
	} {
		if resp, _ := c.post("/conflicts/"+id+"/resolve", form); resp.StatusCode != 403 {
			t.Errorf("%s token: %d, want 403", name, resp.StatusCode)
		}
	}
	// A cross-site form post is refused before any token check.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/conflicts/"+id+"/resolve",
		strings.NewReader(url.Values{"choice": {"keap"}, "csrf": {testCSRF}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := c.do(req); resp.StatusCode != 403 {
		t.Errorf("cross-site post: %d, want 403", resp.StatusCode)
	}
	if got := e.scalar(`select status from keapsync.conflicts where id = $1::bigint`, id); got != "open" {
		t.Fatalf("conflict %s after forged posts", got)
	}
}

func TestCSVExportStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	req := httptest.NewRequest(http.MethodGet, "/data/contacts.csv?sort=name", nil)
	tok, _, _ := e.srv.mint.access(adminA, "")
	req.AddCookie(&http.Cookie{Name: cookieAccess, Value: tok})
	rec := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("export: %d %s", rec.Code, rec.Body.String())
	}
	lines := strings.Count(rec.Body.String(), "\n")
	if lines != 1201 {
		t.Fatalf("%d lines, want header + 1200", lines)
	}
	// 1200 rows flushed every 1000: the body left before the query finished, not as one buffer.
	if rec.flushes < 1 || rec.Header().Get("Content-Length") != "" {
		t.Fatalf("flushes %d, content-length %q: not streamed", rec.flushes, rec.Header().Get("Content-Length"))
	}
	if !strings.HasPrefix(rec.Body.String(), "ID,Keap ID,Given name") {
		t.Fatalf("header: %.80s", rec.Body.String())
	}
}

type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++; f.ResponseRecorder.Flush() }

var emailCell = regexp.MustCompile(`<td>(contact\d+@example\.com)</td>`)

func TestKeysetPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(adminA)
	maxID := e.scalar(`select max(id)::text from keap.contacts where account_id = $1`, accountA)
	if _, body := c.get("/data/contacts"); !strings.Contains(body, "<tbody><tr><td>"+maxID+"</td>") {
		t.Fatalf("default sort (id, descending) does not start at id %s", maxID)
	}
	for _, start := range []string{"/data/contacts?sort=email&dir=asc", "/data/contacts?sort=id&dir=desc",
		"/data/contacts?sort=updated&dir=asc", "/data/contacts?sort=name&dir=desc"} {
		seen := map[string]bool{}
		next, pages := start, 0
		for next != "" {
			_, body := c.get(next)
			pages++
			for _, m := range emailCell.FindAllStringSubmatch(body, -1) {
				if seen[m[1]] {
					t.Fatalf("%s: %s twice on page %d", start, m[1], pages)
				}
				seen[m[1]] = true
			}
			next = nextPage("/data/contacts", body)
		}
		if len(seen) != 1200 || pages != 24 {
			t.Fatalf("%s: saw %d contacts on %d pages, want 1200 on 24", start, len(seen), pages)
		}
	}
}

// The event stream carries the member's signals and nothing of other accounts.
func TestSSEDeliversOwnSignalsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(adminA)
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/live/events", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine(t, lines, ": connected")
	ctx := context.Background()
	edit := func(job string) {
		t.Helper()
		if _, err := e.db.Exec(ctx, `update keap.contacts set job_title = 'B '||$2 where account_id = $1`, accountB, job); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(ctx, `update keap.contacts set job_title = 'A '||$2 where account_id = $1 and keap_id = 1005`, accountA, job); err != nil {
			t.Fatal(err)
		}
	}
	edit("job")
	got := waitLine(t, lines, "data: ")
	if got == `data: {"kind":"resync"}` {
		// The hub's LISTEN came up after the stream opened, perhaps after the edits too (on a
		// loaded machine): their signals went to nobody, which the resync stands for. Edit again.
		edit("again")
		got = waitLine(t, lines, "data: ")
	}
	if !strings.Contains(got, accountA) || !strings.Contains(got, `"table": "contacts"`) {
		t.Fatalf("first signal %s, want A's contacts", got)
	}
}

func waitLine(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q within 10s", prefix)
		}
	}
}

func TestSettingsAdminOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, v := e.as(adminA), e.as(viewerA)
	if resp, body := a.get("/settings"); resp.StatusCode != 200 || !strings.Contains(body, viewerA) {
		t.Fatalf("settings: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		what string
		form url.Values
	}{
		{"general", url.Values{"default_policy": {"manual"}, "propagate_deletes": {"on"}}},
		{"policy", url.Values{"object_type": {"order"}, "field": {"notes"}, "policy": {"keap_wins"}}},
		{"direction", url.Values{"object_type": {"order"}, "direction": {"keap_to_postgres"}}},
		{"member", url.Values{"user_id": {viewerA}, "role": {"admin"}}}, // last: the viewer becomes an admin
	} {
		c.form.Set("account", accountA)
		if resp, _ := v.post("/settings/"+c.what, c.form); resp.StatusCode != 403 {
			t.Errorf("viewer %s: %d, want 403", c.what, resp.StatusCode)
		}
		if resp, body := a.post("/settings/"+c.what, c.form); resp.StatusCode != 303 {
			t.Errorf("admin %s: %d %s", c.what, resp.StatusCode, body)
		}
	}
	if got := e.scalar(`select default_policy || ' ' || propagate_deletes from keapsync.settings where account_id = $1`, accountA); got != "manual true" {
		t.Fatalf("settings %q", got)
	}
	if got := e.scalar(`select role from keapsync.members where account_id = $1 and user_id = $2`, accountA, viewerA); got != "admin" {
		t.Fatalf("member role %q", got)
	}
	if got := e.scalar(`select direction from keapsync.sync_directions where account_id = $1 and object_type = 'order'`, accountA); got != "keap_to_postgres" {
		t.Fatalf("direction %q", got)
	}
	if got := e.scalar(`select count(*)::text from keapsync.change_history where account_id = $1 and table_name = 'sync_directions' and actor is not null`, accountA); got != "1" {
		t.Fatalf("direction changes audited with their actor: %s", got)
	}
	// An admin of A cannot write B's settings: RLS's WITH CHECK refuses.
	if resp, _ := a.post("/settings/policy", url.Values{"account": {accountB}, "object_type": {"order"}, "field": {"notes"}, "policy": {"manual"}}); resp.StatusCode != 403 {
		t.Fatalf("A's admin on B: %d", resp.StatusCode)
	}
}

// Sync health names a stalled path of the account (keapsync.my_stalls), and not another
// account's; it goes when the work moves again.
func TestHealthShowsStalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(viewerA)
	ctx := context.Background()
	if _, body := c.get("/health"); strings.Contains(body, "data-stall=") {
		t.Fatalf("stall shown before any: %s", body)
	}
	for _, acct := range []string{accountA, accountB} {
		// Accounts that can sync (a stall of one that cannot is its state, not a stall).
		if _, err := e.db.Exec(ctx, `update keapsync.accounts set credential = 'api_key' where id = $1`, acct); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(ctx, `insert into keapsync.push_queue (account_id, object_type, local_id, first_enqueued_at, next_attempt_at)
			values ($1, 'contact', -7, now() - interval '1 hour', now() - interval '1 hour')`, acct); err != nil {
			t.Fatal(err)
		}
	}
	if _, body := c.get("/health"); !strings.Contains(body, `data-stall="push"`) || !strings.Contains(body, "stalled push: 1 local edits waiting") {
		t.Fatalf("health lacks the push stall: %s", body)
	}
	if _, err := e.db.Exec(ctx, `delete from keapsync.push_queue where local_id = -7 and account_id = $1`, accountA); err != nil {
		t.Fatal(err)
	}
	if _, body := c.get("/health"); strings.Contains(body, "data-stall=") {
		t.Fatal("A's viewer sees B's stall, or a cleared one")
	}
}

// A rollback of a change the retention window pruned says so (410), instead of "gone, or you
// cannot see it"; an admin of another account learns nothing from the same id.
func TestRollbackOfAPrunedChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var id string
	if err := e.db.QueryRow(ctx, `insert into keapsync.change_history (account_id, table_name, row_id, op, origin, changed, at)
		values ($1, 'contacts', -9, 'update', 'local', '{}', now() - interval '100 days') returning id::text`, accountA).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `select * from keapsync.prune($1, 100)`, accountA); err != nil {
		t.Fatal(err)
	}
	resp, body := e.as(adminA).post("/history/"+id+"/rollback", url.Values{})
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "older than the history window (90 days) and was pruned") {
		t.Fatalf("rollback of a pruned change: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.as(adminB).post("/history/"+id+"/rollback", url.Values{}); resp.StatusCode != 404 || strings.Contains(body, "pruned") {
		t.Fatalf("B's admin, rollback of A's pruned change: %d %s", resp.StatusCode, body)
	}
}
