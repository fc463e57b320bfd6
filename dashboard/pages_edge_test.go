package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// What a person sees when a request goes wrong: a page saying what to do, or for a script
// (a fragment, Accept: application/json) the same as JSON, with a status that says whose fault.
func TestRequestsGoneWrongSayWhatToDo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.as(adminA)
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"GET", "/?fragment=no-such-part", 404, `"code":"no_fragment"`},
		{"GET", "/data/contacts?after=not-a-cursor", 400, "That page link is broken"},
		{"GET", "/data/contacts?after=WyJvbmx5Il0", 400, "That page link is broken"}, // ["only"]
		{"POST", "/dead-letters/1/explode", 404, "No such action."},
		{"POST", "/dead-letters/abc/retry", 404, "No such item."},
		{"GET", "/history?table=secrets&row=1", 400, "Open a record&#39;s history from the Data or Conflicts page."},
		{"POST", "/settings/nope", 404, "No such setting."},
		{"GET", "/conflicts?account=00000000-0000-4000-8000-000000000999", 404, "No such account"},
	} {
		var resp *http.Response
		var body string
		if tc.method == "POST" {
			resp, body = a.post(tc.path, url.Values{"account": {accountA}})
		} else {
			resp, body = a.get(tc.path)
		}
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s: %d, want %d saying %q\n%.400s", tc.method, tc.path, resp.StatusCode, tc.status, tc.says, body)
		}
	}
	// A script asking for JSON gets JSON whatever the page.
	req, _ := http.NewRequest("GET", a.base+"/history?table=secrets&row=1", nil)
	req.Header.Set("Accept", "application/json")
	if resp, body := a.do(req); resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"code":"bad_request"`) {
		t.Errorf("JSON error: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// Signed out, a fragment gets 401 in JSON (a script cannot follow a redirect to a form).
	if resp, body := e.withToken("").get("/?fragment=kpis"); resp.StatusCode != 401 || !strings.Contains(body, `"signed_out"`) {
		t.Errorf("signed-out fragment: %d %s", resp.StatusCode, body)
	}
	// A database error about the input is the person's to fix, with the database's words.
	resp, body := a.post("/settings/member-delete", url.Values{"account": {accountA}, "user_id": {"not-a-uuid"}})
	if resp.StatusCode != 400 || !strings.Contains(body, "invalid input syntax for type uuid") {
		t.Errorf("member-delete with a malformed id: %d, want 400 with the database's reason\n%.400s", resp.StatusCode, body)
	}
}

// With the database gone every page says so (500, "something went wrong", logged), as a page
// for a browser and as JSON for a fragment or the API; nothing pretends to be empty.
func TestDatabaseGoneShowsAnError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.as(adminA)
	api := newAPIClient(t, e.ts.URL, e.token(adminA))
	e.db.Close()
	if resp, body := a.get("/"); resp.StatusCode != 500 || !strings.Contains(body, "Something went wrong on our side") {
		t.Errorf("overview: %d\n%.400s", resp.StatusCode, body)
	}
	if resp, body := a.get("/?fragment=kpis"); resp.StatusCode != 500 || !strings.Contains(body, `"code":"internal"`) {
		t.Errorf("fragment: %d %s", resp.StatusCode, body)
	}
	if status, _, body := api.get("/api/v1/accounts"); status != 500 || !strings.Contains(string(body), `"internal"`) {
		t.Errorf("API: %d %s", status, body)
	}
}

// A person signed in who belongs to no account yet sees the pages empty, not an error, and
// an export tells them why there is nothing to export.
func TestPersonWithoutAnAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.as("00000000-0000-4000-8000-00000000cafe")
	for _, p := range []string{"/conflicts", "/dead-letters", "/settings", "/history?table=contacts&row=1", "/data/contacts"} {
		resp, body := c.get(p)
		if resp.StatusCode != 200 || strings.Contains(body, "Ada") || strings.Contains(body, "Bertha") {
			t.Errorf("GET %s: %d, want an empty page", p, resp.StatusCode)
		}
	}
	if resp, body := c.get("/data/contacts.csv"); resp.StatusCode != 404 || !strings.Contains(body, "You are not a member of any account yet") {
		t.Errorf("export: %d\n%.300s", resp.StatusCode, body)
	}
}

// An admin removes a field's conflict policy and a member; an admin cannot remove themself.
func TestAdminRemovesPolicyAndMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.as(adminA)
	if resp, _ := a.post("/settings/policy", url.Values{"account": {accountA}, "object_type": {"order"}, "field": {"notes"}, "policy": {"keap_wins"}}); resp.StatusCode != 303 {
		t.Fatalf("add policy: %d", resp.StatusCode)
	}
	for _, f := range []url.Values{
		{"object_type": {"order"}, "field": {"notes"}},
	} {
		f.Set("account", accountA)
		if resp, _ := a.post("/settings/policy-delete", f); resp.StatusCode != 303 {
			t.Fatalf("policy-delete: %d", resp.StatusCode)
		}
	}
	if got := e.scalar(`select count(*)::text from keapsync.conflict_policies where account_id = $1 and object_type = 'order' and field = 'notes'`, accountA); got != "0" {
		t.Errorf("%s policies left after removing it", got)
	}
	if resp, _ := a.post("/settings/member-delete", url.Values{"account": {accountA}, "user_id": {viewerA}}); resp.StatusCode != 303 {
		t.Fatalf("member-delete: %d", resp.StatusCode)
	}
	if got := e.scalar(`select count(*)::text from keapsync.members where account_id = $1 and user_id = $2`, accountA, viewerA); got != "0" {
		t.Error("the member was not removed")
	}
	a.post("/settings/member-delete", url.Values{"account": {accountA}, "user_id": {adminA}})
	if got := e.scalar(`select count(*)::text from keapsync.members where account_id = $1 and user_id = $2`, accountA, adminA); got != "1" {
		t.Error("an admin removed themself")
	}
}

// Static files are cached for an hour, /favicon.ico points at the icon, and a dashboard
// reached over https tells browsers to stay on https and marks its cookies Secure.
func TestStaticFilesAndHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.withToken("")
	if resp, _ := c.get("/favicon.ico"); resp.StatusCode != 301 || resp.Header.Get("Location") != "/static/favicon.svg" {
		t.Errorf("favicon: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.get("/static/favicon.svg"); resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("static: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if resp, _ := c.get("/signin"); resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain http")
	}
	_, ts := serveDashboard(t, e.db, func(string) Config {
		return Config{Local: true, JWTSecret: testSecret, PublicURL: "https://dash.example.com", Log: testLogger(t)}
	})
	t.Cleanup(ts.Close)
	resp, err := http.Get(ts.URL + "/signin") // no cookies: the page issues its CSRF cookie
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Errorf("HSTS: %q", resp.Header.Get("Strict-Transport-Security"))
	}
	if ck, ok := cookieOf(resp, cookieCSRF); !ok || !ck.Secure {
		t.Error("cookie of an https dashboard not Secure")
	}
}

// A config that cannot work is refused before anything starts, naming what to fix.
func TestNewRefusesABadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		says string
	}{
		{Config{Local: true, PublicURL: "not a url"}, "public URL"},
		{Config{Local: true, PageSize: 5000}, "page size 5000"},
		{Config{Local: true, PageSize: -1}, "page size -1"},
		{Config{Local: true, RefreshBefore: -time.Minute}, "refresh-before"},
	} {
		if _, err := New(tc.cfg, newEnv(t).db); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%+v: %v; want an error about %s", tc.cfg, err, tc.says)
		}
	}
	if _, err := New(Config{Local: true}, nil); err == nil {
		t.Error("New without a database pool succeeded")
	}
}

// The database's refusals read as what they mean: a statement cut off by its timeout is a 503
// that says to narrow the search; bad input is a 400 in the database's words, without its prefix.
func TestDatabaseRefusalsAsPageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code, msg string
		status    int
		says      string
	}{
		{"57014", "canceling statement due to statement timeout", 503, "The database took too long. Try again, or narrow the search."},
		{"22023", "keapsync: unknown policy bogus", 400, "unknown policy bogus."},
		{"XX000", "internal", 0, ""},
	} {
		err := dbError(&pgconn.PgError{Code: tc.code, Message: tc.msg})
		pe, ok := err.(*pageError)
		if tc.status == 0 {
			if ok {
				t.Errorf("%s: %v; want the error passed on", tc.code, pe)
			}
			continue
		}
		if !ok || pe.Status != tc.status || pe.Msg != tc.says || !strings.Contains(pe.Error(), tc.msg) {
			t.Errorf("%s: %+v; want %d %q", tc.code, err, tc.status, tc.says)
		}
	}
}

// Numbers on the pages read as people write them.
func TestPageFormatting(t *testing.T) {
	t.Parallel()
	bytes := funcs["bytes"].(func(int64) string)
	for n, want := range map[int64]string{512: "512 B", 3 << 10: "3.0 kB", 5<<20 + 1<<19: "5.5 MB", 3 << 30: "3.0 GB"} {
		if got := bytes(n); got != want {
			t.Errorf("bytes(%d) = %q, want %q", n, got, want)
		}
	}
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	ago := funcs["ago"].(func(time.Time, *time.Time) string)
	then := now.Add(-72 * time.Hour)
	if got := ago(now, &then); got != "3 days ago" {
		t.Errorf("ago 72 h = %q", got)
	}
	if got := funcs["when"].(func(*time.Time) string)(nil); got != "—" {
		t.Errorf("when(nil) = %q", got)
	}
	if got := funcs["pct"].(func(int64, int64) int64)(5, 0); got != 0 {
		t.Errorf("pct of an unknown total = %d, want 0", got)
	}
	if got := funcs["money"].(func(float64) string)(-1234.5); got != "$-1,234.50" {
		t.Errorf("money(-1234.5) = %q", got)
	}
	if got := indentJSON([]byte("{not json")); got != "{not json" {
		t.Errorf("indentJSON of invalid JSON = %q, want it as it is", got)
	}
	if got := indentJSON(nil); got != "—" {
		t.Errorf("indentJSON(nil) = %q", got)
	}
	if got := (deadLetterRow{}).PayloadText(); got != "" {
		t.Errorf("no payload shows %q", got)
	}
}
