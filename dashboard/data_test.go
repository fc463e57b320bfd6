package dashboard

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// Every Data tab lists every other tab, and each is served with its CSV.
func TestDataTabsLinkEachOther(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as(viewerA)
	for _, tab := range dataTables {
		resp, body := c.get("/data/" + tab.Name)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /data/%s: %d\n%s", tab.Name, resp.StatusCode, body)
		}
		if tab.SearchHint == "" || !strings.Contains(body, `placeholder="`+tab.SearchHint+`"`) {
			t.Errorf("/data/%s does not say what its search matches (%q)", tab.Name, tab.SearchHint)
		}
		for _, other := range dataTables {
			link := `<a href="/data/` + other.Name + `?account=` + accountA + `"`
			if other == tab {
				link += ` aria-current="page"`
			}
			if !strings.Contains(body, link+">"+other.Title+"</a>") {
				t.Errorf("/data/%s lacks the tab %s", tab.Name, other.Name)
			}
		}
		if resp, csv := c.get("/data/" + tab.Name + ".csv"); resp.StatusCode != 200 || !strings.HasPrefix(csv, strings.Join(tab.Headers, ",")+"\n") {
			t.Errorf("GET /data/%s.csv: %d\n%.200s", tab.Name, resp.StatusCode, csv)
		}
	}
}

// Every synced object type can be browsed: it has a Data tab named after its table, or it is
// named here with the place that shows it. A type added to the registry without either fails.
func TestEveryObjectTypeIsBrowsable(t *testing.T) {
	shownElsewhere := map[string]string{
		"tag_category":      "the tags' categories: Keap's grouping of tags, no records of their own",
		"tag":               "the overview's top tags, and the contacts they are on",
		"opportunity_stage": "the opportunities tab's Stage column and filter, and the overview's pipeline by stage",
	}
	tabs := map[string]bool{}
	for _, tab := range dataTables {
		tabs[tab.Name] = true
	}
	for _, ot := range objecttype.All {
		if !tabs[ot.Table] && shownElsewhere[ot.Name] == "" {
			t.Errorf("object type %s (keap.%s) has no Data tab and is not shown elsewhere", ot.Name, ot.Table)
		}
		if tabs[ot.Table] && shownElsewhere[ot.Name] != "" {
			t.Errorf("object type %s has a Data tab now: take it out of shownElsewhere", ot.Name)
		}
	}
}

// Subscriptions are listed under RLS, filtered by activity and contact, and sorted by next bill.
func TestSubscriptionsTab(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, f := range []struct{ account, sql string }{{accountA, `
insert into keap.subscriptions (account_id, keap_id, contact_keap_id, product_id, billing_amount, billing_cycle,
                                billing_frequency, active, next_bill_date, sync_origin)
select $1, 6000 + g, 1000 + g % 3, 5000 + g, g * 10, 'MONTH', 1, g % 2 = 0, '2027-01-01'::date + g, 'keap'
  from generate_series(1, 60) g`}, {accountB, `
insert into keap.subscriptions (account_id, keap_id, contact_keap_id, billing_amount, billing_cycle, sync_origin)
values ($1, 99003, 1001, 777, 'YEAR', 'keap')`}} {
		if _, err := e.db.Exec(ctx, f.sql, f.account); err != nil {
			t.Fatal(err)
		}
	}
	c := e.as(viewerA)
	_, body := c.get("/data/subscriptions?active=yes&contact=1002&sort=next&dir=asc")
	rows := strings.Split(body, "<tr><td>")[1:]
	// g even and g % 3 = 2: 2, 8, 14, ... 56: ten of them, the first billed on 2027-01-03.
	if len(rows) != 10 || !strings.Contains(rows[0], "<td>2027-01-03</td>") || !strings.Contains(rows[0], "<td>1 × MONTH</td>") {
		t.Errorf("active subscriptions of contact 1002 by next bill: %d rows, first %.300s", len(rows), strings.Join(rows, ""))
	}
	if _, body := c.get("/data/subscriptions.csv"); strings.Contains(body, "777.00") || !strings.Contains(body, ",6060,1000,") {
		t.Errorf("A's members do not get exactly A's subscriptions:\n%.300s", body)
	}
	if _, body := e.as(adminB).get("/data/subscriptions"); !strings.Contains(body, "<td>777.00</td>") || strings.Contains(body, "<td>6001</td>") {
		t.Error("B's admin sees the wrong subscriptions")
	}
}

// Products and tasks are listed under RLS (B's never show to A's members, in pages or CSV), and
// search, filters, sorting and keyset paging work as on the other tabs.
func TestProductAndTaskTabs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, f := range []struct{ account, sql string }{{accountA, `
insert into keap.products (account_id, keap_id, name, sku, short_description, active, price_cents, currency_code, update_time, sync_origin)
select $1, 5000 + g, 'Widget ' || g, 'W-' || g, 'a widget', g % 2 = 0, g * 125, 'USD', '2026-06-01'::timestamptz + g * interval '1 hour', 'keap'
  from generate_series(1, 120) g`}, {accountB, `
insert into keap.products (account_id, keap_id, name, sku, price_cents, currency_code, sync_origin)
values ($1, 9001, 'Hidden gadget', 'SECRET-1', 999, 'EUR', 'keap')`}, {accountA, `
insert into keap.tasks (account_id, keap_id, title, description, type, priority, completed, due_time, contact_keap_id, sync_origin)
select $1, 7000 + g, 'Call back ' || g, 'about the invoice', 'Call', 'ESSENTIAL', g % 3 = 0,
       '2026-07-01'::timestamptz + g * interval '1 day', 1000 + g % 4, 'keap'
  from generate_series(1, 75) g`}, {accountB, `
insert into keap.tasks (account_id, keap_id, title, contact_keap_id, sync_origin)
values ($1, 9002, 'Secret errand', 1001, 'keap')`}} {
		if _, err := e.db.Exec(ctx, f.sql, f.account); err != nil {
			t.Fatal(err)
		}
	}
	c := e.as(adminA)

	_, body := c.get("/data/products?q=widget+12&sort=price&dir=asc")
	for _, want := range []string{"<td>Widget 12</td>", "<td>W-12</td>", "<td>15.00</td>", "<td>USD</td>", "<td>Widget 120</td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("product search lacks %q", want)
		}
	}
	if strings.Contains(body, "Widget 13<") {
		t.Error("the product search matched a product it should not")
	}
	if _, body = c.get("/data/products?active=no&q=Widget+1"); !strings.Contains(body, "<td>Widget 1</td>") || strings.Contains(body, "<td>Widget 10</td>") {
		t.Error("the active filter does not filter")
	}
	if _, body = c.get("/data/tasks?completed=yes&contact=1003"); !strings.Contains(body, "<td>Call back 3</td>") ||
		strings.Contains(body, "<td>Call back 7</td>") || strings.Contains(body, "<td>Call back 6</td>") {
		t.Errorf("task filters: %s", body)
	}

	// Every row once, page after page, in either direction of each sort.
	for _, tc := range []struct {
		start string
		want  int
	}{
		{"/data/products?sort=price&dir=asc", 120}, {"/data/products?sort=name&dir=desc", 120},
		{"/data/products?sort=updated&dir=asc", 120}, {"/data/tasks?sort=due&dir=asc", 75},
		{"/data/tasks?sort=title&dir=desc", 75}, {"/data/tasks", 75},
	} {
		path := tc.start[:strings.Index(tc.start+"?", "?")]
		seen := map[string]bool{}
		next, pages := tc.start, 0
		for next != "" {
			_, body := c.get(next)
			pages++
			for _, row := range strings.Split(body, "<tr><td>")[1:] {
				id := row[:strings.Index(row, "<")]
				if seen[id] {
					t.Fatalf("%s: row %s twice, page %d", tc.start, id, pages)
				}
				seen[id] = true
			}
			next = nextPage(path, body)
		}
		if len(seen) != tc.want || pages != (tc.want+49)/50 {
			t.Errorf("%s: %d rows on %d pages, want %d", tc.start, len(seen), pages, tc.want)
		}
	}

	// RLS, not Go, keeps B's rows from A's members.
	for _, p := range []string{"/data/products?q=gadget", "/data/products.csv", "/data/tasks?q=errand", "/data/tasks.csv"} {
		if _, body := c.get(p); strings.Contains(body, "Hidden gadget") || strings.Contains(body, "Secret errand") {
			t.Errorf("%s shows account B's rows to A", p)
		}
	}
	for _, p := range []string{"/data/products?account=" + accountB, "/data/tasks.csv?account=" + accountB} {
		if resp, _ := c.get(p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if _, body := e.as(adminB).get("/data/products"); !strings.Contains(body, "Hidden gadget") || strings.Contains(body, "Widget 1") {
		t.Error("B's admin sees the wrong products")
	}

	// The CSV keeps the filters, and all rows rather than one page.
	_, out := c.get("/data/tasks.csv?completed=no")
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1+50 {
		t.Fatalf("tasks.csv?completed=no: %d records, want header + 50", len(records))
	}
	for _, r := range records[1:] {
		if r[7] != "no" {
			t.Fatalf("an exported task is completed: %v", r)
		}
	}
}

// nextPage is the next page's link on a data page served at path, "" on the last page.
func nextPage(path, body string) string {
	i := strings.Index(body, `rel="next"`)
	if i < 0 {
		return ""
	}
	h := body[strings.LastIndex(body[:i], `href="`)+6:]
	return path + strings.ReplaceAll(h[:strings.Index(h, `"`)], "&amp;", "&")
}

// The Notes tab: search in title and body, filters by type and contact, and another account's
// notes nowhere, in the page or the CSV.
func TestNotesTab(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, f := range []struct{ account, sql string }{{accountA, `
insert into keap.contacts (account_id, keap_id, given_name, sync_origin) select $1, 8800 + g, 'C' || g, 'keap' from generate_series(1, 2) g`}, {accountA, `
insert into keap.notes (account_id, keap_id, title, body, type, contact_keap_id, last_updated, sync_origin)
select $1, 3000 + g, 'Call ' || g, case when g = 7 then 'asked about the renewal' else 'left a message' end,
       case when g % 2 = 0 then 'Call' else 'Email' end, 8800 + 1 + g % 2, '2026-05-01'::timestamptz + g * interval '1 hour', 'keap'
  from generate_series(1, 30) g`}, {accountB, `
insert into keap.contacts (account_id, keap_id, given_name, sync_origin) values ($1, 8801, 'B', 'keap')`}, {accountB, `
insert into keap.notes (account_id, keap_id, title, body, type, contact_keap_id, sync_origin)
values ($1, 9003, 'Secret note', 'renewal price', 'Call', 8801, 'keap')`}} {
		if _, err := e.db.Exec(ctx, f.sql, f.account); err != nil {
			t.Fatal(err)
		}
	}
	c := e.as(adminA)
	if _, body := c.get("/data/notes?q=renewal"); !strings.Contains(body, "<td>Call 7</td>") || strings.Contains(body, "Call 8<") ||
		strings.Contains(body, "Secret note") {
		t.Errorf("note search: %s", body)
	}
	if _, body := c.get("/data/notes?type=Call&contact=8801"); !strings.Contains(body, "<td>Call 2</td>") ||
		strings.Contains(body, "<td>Call 3</td>") || strings.Contains(body, "Secret note") {
		t.Errorf("note filters: %s", body)
	}
	if _, csv := c.get("/data/notes.csv"); strings.Count(csv, "\n") != 31 || strings.Contains(csv, "Secret") {
		t.Errorf("notes CSV: want a header and A's 30 notes, got %d lines", strings.Count(csv, "\n"))
	}
}
