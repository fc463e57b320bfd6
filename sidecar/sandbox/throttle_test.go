package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func hdrInt(t *testing.T, h http.Header, k string) int {
	t.Helper()
	n, err := strconv.Atoi(h.Get(k))
	if err != nil {
		t.Fatalf("header %s=%q: %v", k, h.Get(k), err)
	}
	return n
}

// expect429 checks Keap's 429: fault body with the given errorcode and no Retry-After.
func expect429(t *testing.T, c *client, code string) {
	t.Helper()
	var body struct {
		Fault struct {
			Detail struct{ Errorcode string }
		}
	}
	resp, data := c.do("GET", "/crm/rest/v1/contacts?limit=1", nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatal(err)
	}
	if body.Fault.Detail.Errorcode != code {
		t.Fatalf("429 errorcode %q, want %q", body.Fault.Detail.Errorcode, code)
	}
	if resp.Header.Get("Retry-After") != "" {
		t.Fatal("Keap sends no Retry-After")
	}
}

func TestThrottleHeaders(t *testing.T) {
	t.Parallel()
	srv, _ := startThrottled(t, Options{Contacts: 1, AutoApprove: true})
	c := newClient(t, srv, false)
	for i := 1; i <= 3; i++ {
		resp, _ := c.do("GET", "/crm/rest/v1/contacts/1", nil)
		h := resp.Header
		if hdrInt(t, h, "x-keap-product-throttle-used") != i || hdrInt(t, h, "x-keap-product-throttle-available") != 240-i ||
			hdrInt(t, h, "x-keap-product-quota-used") != i || hdrInt(t, h, "x-keap-product-quota-available") != 30000-i {
			t.Fatalf("request %d headers %v", i, h)
		}
		for _, k := range []string{"x-keap-product-quota-expiry-time", "x-keap-tenant-id", "x-keap-tenant-throttle-limit"} {
			if h.Get(k) == "" {
				t.Fatalf("missing %s", k)
			}
		}
	}
	// Lower-case on the wire, as Keap sends them. Go clients canonicalize received names, so
	// look at what the handler wrote.
	rec := httptestRecorder(srv, "/crm/rest/v1/contacts/1")
	if _, ok := rec.Header()["x-keap-product-throttle-limit"]; !ok {
		t.Fatalf("header names not lower-case: %v", rec.Header())
	}
	// OAuth credentials have the app budget.
	tok := login(t, c)
	r2, _ := c.withBearer(tok["access_token"].(string)).do("GET", "/crm/rest/v1/contacts/1", nil)
	if r2.Header.Get("x-keap-product-throttle-limit") != "1500" || r2.Header.Get("x-keap-product-quota-limit") != "150000" {
		t.Fatalf("oauth limits %v", r2.Header)
	}
}

func TestThrottlePerSecondAndRollingMinute(t *testing.T) {
	t.Parallel()
	srv, clock := startThrottled(t, Options{Contacts: 1, Limits: Limits{KeyPerMinute: 15}})
	c := newClient(t, srv, false)
	for i := 0; i < 10; i++ {
		c.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	}
	expect429(t, c, "policies.ratelimit.SpikeArrestViolation") // 11th in the same second
	clock.Advance(30 * time.Second)
	for i := 0; i < 5; i++ {
		c.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	}
	expect429(t, c, "policies.ratelimit.QuotaViolation") // 15 in the last minute
	clock.Advance(30*time.Second - time.Millisecond)     // the first 10 are 59.999s old: still inside
	expect429(t, c, "policies.ratelimit.QuotaViolation")
	clock.Advance(time.Millisecond) // a minute old: they roll out; the 5 from t=30s remain
	resp, _ := c.do("GET", "/crm/rest/v1/contacts?limit=1", nil)
	if resp.StatusCode != 200 || hdrInt(t, resp.Header, "x-keap-product-throttle-used") != 6 {
		t.Fatalf("after rolling: %d used=%s", resp.StatusCode, resp.Header.Get("x-keap-product-throttle-used"))
	}
}

func TestThrottleOAuthMinuteAndDailyQuota(t *testing.T) {
	t.Parallel()
	srv, clock := startThrottled(t, Options{Contacts: 1, AutoApprove: true, Limits: Limits{OAuthPerSecond: 2, OAuthPerMinute: 3, KeyPerDay: 2}})
	c := newClient(t, srv, false)
	api := c.withBearer(login(t, c)["access_token"].(string))
	api.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	api.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	expect429(t, api, "policies.ratelimit.SpikeArrestViolation") // the OAuth spike policy
	clock.Advance(time.Second)
	api.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	clock.Advance(time.Second)
	expect429(t, api, "policies.ratelimit.QuotaViolation") // 3 in the rolling minute
	// The personal key has its own budget; its day quota is 2.
	c.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	c.json("GET", "/crm/rest/v1/contacts?limit=1", nil, 200, nil)
	expect429(t, c, "policies.ratelimit.QuotaViolation")
	now := srv.Now()
	clock.Advance(now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now)) // next 00:00 UTC
	resp, _ := c.do("GET", "/crm/rest/v1/contacts?limit=1", nil)
	if resp.StatusCode != 200 || resp.Header.Get("x-keap-product-quota-used") != "1" {
		t.Fatalf("after midnight: %d used=%s", resp.StatusCode, resp.Header.Get("x-keap-product-quota-used"))
	}
}
