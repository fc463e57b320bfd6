package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// apiClient calls the JSON API with a bearer token and checks every answer against the OpenAPI
// document the dashboard serves.
type apiClient struct {
	t      *testing.T
	base   string
	token  string
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // operationIds answered 200
}

func newAPIClient(t *testing.T, base, token string) *apiClient {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("served document is not valid OpenAPI: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{t: t, base: base, token: token, doc: doc, router: router, seen: map[string]bool{}}
}

// get calls path and validates the response (status, headers, body) against the document.
func (a *apiClient) get(path string, header ...string) (int, http.Header, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.base+path, nil)
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	route, params, err := a.router.FindRoute(req)
	if err != nil {
		a.t.Errorf("GET %s: not in the OpenAPI document: %v", path, err)
		return resp.StatusCode, resp.Header, body
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		a.t.Errorf("GET %s: %d response does not match the OpenAPI document: %v\n%s", path, resp.StatusCode, err, body)
	}
	if resp.StatusCode == 200 {
		a.seen[route.Operation.OperationID] = true
	}
	return resp.StatusCode, resp.Header, body
}

func (a *apiClient) wantError(path string, status int, code string) {
	a.t.Helper()
	got, _, body := a.get(path)
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || got != status || e.Code != code || e.Message == "" {
		a.t.Errorf("GET %s: %d %s, want %d with code %s", path, got, body, status, code)
	}
}

func (e *env) token(userID string) string {
	e.t.Helper()
	tok, _, err := e.srv.mint.access(userID, userID+"@example.com")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// Every route answers with what the document says, for real data; the document covers them all.
func TestAPIResponsesMatchOpenAPI(t *testing.T) {
	e := newEnv(t)
	a := newAPIClient(t, e.ts.URL, e.token(adminA))
	a.get("/api/v1/openapi.json")
	status, _, body := a.get("/api/v1/accounts")
	var list struct{ Accounts []apiAccount }
	if err := json.Unmarshal(body, &list); err != nil || status != 200 || len(list.Accounts) != 1 || list.Accounts[0].ID != accountA {
		t.Fatalf("accounts: %d %s", status, body)
	}
	acct := "/api/v1/accounts/" + accountA
	var k kpis
	_, _, body = a.get(acct + "/kpis")
	if err := json.Unmarshal(body, &k); err != nil || k.Contacts != 1200 || len(k.Weekly) != 26 || len(k.Monthly) != 12 ||
		!k.Weekly[25].Partial || k.Weekly[24].Partial || !k.Monthly[11].Partial {
		t.Errorf("kpis: %v %s", err, body)
	}
	var ss syncSummary
	_, _, body = a.get(acct + "/sync-status")
	if err := json.Unmarshal(body, &ss); err != nil || len(ss.Activity) != 48 || !ss.Activity[47].Partial || ss.LastIn == nil {
		t.Errorf("sync-status: %v %s", err, body)
	}
	var in int64
	for _, h := range ss.Activity {
		in += h.In
	}
	// What came in over 48 hours is what the history says came in (the seed, just now), but for
	// updates of Keap's clock alone.
	if want := e.scalar(`select count(*)::text from keapsync.change_history
		where account_id = $1 and origin = 'keap' and at >= date_trunc('hour', now(), 'UTC') - interval '47 hours'
		  and not (op = 'update' and changed - '{last_updated,modification_date}'::text[] = '{}'::jsonb)`, accountA); strconv.FormatInt(in, 10) != want {
		t.Errorf("activity in over 48 h: %d, history says %s", in, want)
	}
	_, _, body = a.get(acct + "/conflicts")
	if !strings.Contains(string(body), `"keap_value":"Ada (Keap)"`) {
		t.Errorf("conflicts lack the seeded conflict: %s", body)
	}
	// Health with every optional part present: a budget, a cursor, a hook and an error.
	for _, q := range []string{
		`insert into keapsync.rate_budget_usage (account_id, per_day, day_available) values ($1, 250000, 240000)`,
		`insert into keapsync.sync_cursors (account_id, object_type, kind) values ($1, 'contact', 'backfill')`,
		`insert into keapsync.hook_subscriptions (account_id, hook_key, event_key, hook_url) values ($1, 'h1', 'contact.add', 'https://x')`,
	} {
		if _, err := e.db.Exec(t.Context(), q, accountA); err != nil {
			t.Fatal(err)
		}
	}
	_, _, body = a.get(acct + "/health")
	if !strings.Contains(string(body), `"recent_errors":[{`) || !strings.Contains(string(body), `"keap_budget":{`) {
		t.Errorf("health: %s", body)
	}
	for path, op := range a.doc.Paths.Map() {
		if id := op.Get.OperationID; !a.seen[id] {
			t.Errorf("%s (%s) was not exercised", path, id)
		}
	}
}

// No token, a bad token or a browser's session cookie: 401 with a stable code, nothing read.
func TestAPIRequiresBearerToken(t *testing.T) {
	e := newEnv(t)
	acct := "/api/v1/accounts/" + accountA + "/kpis"
	none := newAPIClient(t, e.ts.URL, "")
	none.wantError(acct, 401, "unauthorized")
	none.wantError("/api/v1/accounts", 401, "unauthorized")
	// The session cookie that signs a browser in to the pages is not an API credential.
	_, _, body := none.get(acct, "Cookie", cookieAccess+"="+e.token(adminA))
	if !strings.Contains(string(body), `"unauthorized"`) {
		t.Errorf("cookie accepted by the API: %s", body)
	}
	bad := newAPIClient(t, e.ts.URL, "not-a-jwt")
	bad.wantError(acct, 401, "invalid_token")
	forged := newAPIClient(t, e.ts.URL, e.token(adminA)[:20]+"x"+e.token(adminA)[21:])
	forged.wantError(acct, 401, "invalid_token")
	// Unknown routes and writes answer in JSON too.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/api/v1/accounts", nil)
	req.Header.Set("Authorization", "Bearer "+e.token(adminA))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || !strings.Contains(string(b), `"method_not_allowed"`) {
		t.Errorf("POST: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(e.ts.URL + "/api/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"no_route"`) {
		t.Errorf("unknown route: %d %s", resp.StatusCode, b)
	}
}

// A member of A reads A through the API and nothing of B: B's routes are 404, as if B did not
// exist; B's admin reads B and not A.
func TestAPIScopedByRLS(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ who, own, other, ownMarker, otherMarker string }{
		{adminA, accountA, accountB, "Ada (Keap)", "Bertha"},
		{viewerA, accountA, accountB, "Ada (Keap)", "Bertha"},
		{adminB, accountB, accountA, "Bertha (Keap)", "Ada"},
	} {
		a := newAPIClient(t, e.ts.URL, e.token(c.who))
		_, _, body := a.get("/api/v1/accounts")
		if !strings.Contains(string(body), c.own) || strings.Contains(string(body), c.other) {
			t.Errorf("%s: accounts %s", c.who, body)
		}
		_, _, body = a.get("/api/v1/accounts/" + c.own + "/conflicts")
		if !strings.Contains(string(body), c.ownMarker) || strings.Contains(string(body), c.otherMarker) {
			t.Errorf("%s: own conflicts %s", c.who, body)
		}
		for _, r := range []string{"kpis", "sync-status", "conflicts", "health"} {
			a.wantError("/api/v1/accounts/"+c.other+"/"+r, 404, "not_found")
		}
		a.wantError("/api/v1/accounts/00000000-0000-4000-8000-00000000dead/kpis", 404, "not_found")
	}
	// Not a UUID: not found, not a database error.
	newAPIClient(t, e.ts.URL, e.token(adminA)).wantError("/api/v1/accounts/"+url.PathEscape("1' or '1'='1")+"/kpis", 404, "not_found")
}

// CORS is off unless origins are configured; then only those may call from a browser.
func TestAPICORS(t *testing.T) {
	db := newEnv(t).db
	preflight := func(base, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, base+"/api/v1/accounts", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	plain := newEnv(t)
	if resp := preflight(plain.ts.URL, "https://app.example.com"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("default preflight: %d %v", resp.StatusCode, resp.Header)
	}
	a := newAPIClient(t, plain.ts.URL, plain.token(adminA))
	if _, h, _ := a.get("/api/v1/accounts", "Origin", "https://app.example.com"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS header sent with no origins configured")
	}

	srv, ts := serveDashboard(t, db, func(publicURL string) Config {
		return Config{Local: true, JWTSecret: testSecret, PublicURL: publicURL, Log: testLogger(t),
			APICORSOrigins: []string{"https://app.example.com"}}
	})
	t.Cleanup(ts.Close)
	resp := preflight(ts.URL, "https://app.example.com")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight(ts.URL, "https://evil.example"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin's preflight: %d %v", resp.StatusCode, resp.Header)
	}
	tok, _, _ := srv.mint.access(adminA, "a@example.com")
	b := newAPIClient(t, ts.URL, tok)
	if _, h, _ := b.get("/api/v1/accounts", "Origin", "https://app.example.com"); h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(h.Get("Vary"), "Origin") {
		t.Errorf("allowed origin's GET: %v", h)
	}
	if err := (Config{Local: true, APICORSOrigins: []string{"https://app.example.com/path"}}).Validate(); err == nil {
		t.Error("an origin with a path was accepted")
	}
}
