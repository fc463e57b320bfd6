package sandbox

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

func httptestRecorder(srv *Server, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("X-Keap-API-Key", srv.Credentials().PersonalKey)
	srv.Handler().ServeHTTP(rec, req)
	return rec
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1})
	c := newClient(t, srv, false)
	c.json("PUT", "/_sandbox/faults", map[string]any{"latency_ms": 60}, 200, nil)
	begin := time.Now()
	c.json("GET", "/crm/rest/v1/contacts/1", nil, 200, nil)
	// A lower bound: the injected latency must have been served. (No upper bound: machines vary.)
	if d := time.Since(begin); d < 60*time.Millisecond {
		t.Fatalf("answered after %v, want at least the injected 60ms", d)
	}
	srv.SetFaults(Faults{ErrorRate: 1, Storm429: 5})
	c.json("GET", "/_sandbox/clock", nil, 200, nil) // the test surface is never faulted
}

func TestFaultErrorRateTouchesNoState(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1})
	c := newClient(t, srv, false)
	srv.SetFaults(Faults{ErrorRate: 1})
	c.json("PATCH", "/crm/rest/v1/contacts/1", map[string]any{"given_name": "Changed"}, 500, nil)
	srv.SetFaults(Faults{})
	var got map[string]any
	c.json("GET", "/crm/rest/v1/contacts/1", nil, 200, &got)
	if got["given_name"] == "Changed" {
		t.Fatal("a faulted request changed state")
	}
}

func TestFault429Storm(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1})
	c := newClient(t, srv, false)
	c.json("PUT", "/_sandbox/faults", map[string]any{"storm_429": 3}, 200, nil)
	for i := 0; i < 3; i++ {
		expect429(t, c, "policies.ratelimit.QuotaViolation")
	}
	c.json("GET", "/crm/rest/v1/contacts/1", nil, 200, nil)
	var f faultsWire
	c.json("GET", "/_sandbox/faults", nil, 200, &f)
	if f.Storm429 != 0 {
		t.Fatalf("storm left %d", f.Storm429)
	}
	newClient(t, srv, true).json("PUT", "/_sandbox/faults", map[string]any{"error_rate": 2}, 400, nil)
}

func TestTestSurface(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 25, Seed: 9})
	c := newClient(t, srv, false)
	var st State
	c.json("GET", "/_sandbox/state", nil, 200, &st)
	if len(st.Contacts) != 25 || len(st.Tags) == 0 || len(st.CustomFields) == 0 || len(st.Products) == 0 || len(st.Orders) == 0 {
		t.Fatalf("state: %d contacts %d tags %d fields %d products %d orders", len(st.Contacts), len(st.Tags), len(st.CustomFields), len(st.Products), len(st.Orders))
	}
	c.json("DELETE", "/_sandbox/requests", nil, 204, nil)
	c.json("GET", "/crm/rest/v1/contacts/3?optional_properties=custom_fields", nil, 200, nil)
	var reqs []RequestRecord
	c.json("GET", "/_sandbox/requests", nil, 200, &reqs)
	if len(reqs) != 1 || reqs[0].Path != "/crm/rest/v1/contacts/3" || reqs[0].Status != 200 || reqs[0].Credential != "key" {
		t.Fatalf("request log %+v", reqs)
	}
	before := srv.Now()
	var clk map[string]string
	c.json("POST", "/_sandbox/clock/advance", map[string]string{"by": "36h"}, 200, &clk)
	if !srv.Now().Equal(before.Add(36 * time.Hour)) {
		t.Fatalf("clock %v, want %v", srv.Now(), before.Add(36*time.Hour))
	}
	var ct map[string]any
	c.json("POST", "/_sandbox/contacts", map[string]any{"given_name": "Human", "email_addresses": []any{map[string]any{"email": "h@x.io", "field": "EMAIL1"}}}, 201, &ct)
	id := fmt.Sprint(ct["id"])
	c.json("POST", "/_sandbox/contacts/"+id+"/tags/1", nil, 204, nil)
	c.json("GET", "/crm/rest/v1/contacts/"+id, nil, 200, &ct)
	if fmt.Sprint(ct["tag_ids"]) != "[1]" {
		t.Fatalf("human tag not applied: %v", ct)
	}
	var creds Credentials
	c.json("GET", "/_sandbox/credentials", nil, 200, &creds)
	if creds != srv.Credentials() {
		t.Fatalf("credentials %+v", creds)
	}
	if len(srv.Requests()) == 0 || srv.Requests()[0].Path == "/_sandbox/state" {
		t.Fatal("the test surface must not be logged as Keap traffic")
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	t.Parallel()
	a, _ := start(t, Options{Contacts: 200, Seed: 42})
	b, _ := start(t, Options{Contacts: 200, Seed: 42})
	d, _ := start(t, Options{Contacts: 200, Seed: 43})
	sa, sb, sd := a.Snapshot(), b.Snapshot(), d.Snapshot()
	sa.Hooks, sb.Hooks, sd.Hooks = nil, nil, nil
	if fmtJSON(t, sa) != fmtJSON(t, sb) {
		t.Fatal("same seed, different data")
	}
	if fmtJSON(t, sa) == fmtJSON(t, sd) {
		t.Fatal("different seeds, same data")
	}
	if a.Credentials() != b.Credentials() || a.Credentials() == d.Credentials() {
		t.Fatal("credentials must follow the seed")
	}
	if len(sa.Subscriptions) == 0 || len(sa.Orders) < 30 {
		t.Fatalf("generator too sparse: %d orders %d subscriptions", len(sa.Orders), len(sa.Subscriptions))
	}
}
