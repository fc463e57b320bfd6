package keap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// With the daily quota scaled down to 100 on both sides (the sandbox's KeyPerDay, reported in
// its headers), 250 calls wait for the quota to reset at 00:00 UTC instead of meeting 429s.
func TestDailyQuotaPausesUntilReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 5, Limits: sandbox.Limits{KeyPerDay: 100}, RequestLogSize: 1000}})
	ctx := context.Background()
	start := e.clock.Now()
	for i := range 250 {
		if _, err := e.client.ListContacts(ctx, ContactQuery{Limit: 1}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := count429(e.srv); n != 0 {
		t.Fatalf("%d 429s; the client must stop when the headers say the quota is gone", n)
	}
	days := map[string]int{}
	for _, r := range e.srv.Requests() {
		days[r.At.Format(time.DateOnly)]++
	}
	if len(days) != 3 || e.clock.Now().Sub(start) < 24*time.Hour {
		t.Fatalf("calls per day: %v", days)
	}
	for d, n := range days {
		if n > 100 {
			t.Fatalf("%d calls on %s, quota 100", n, d)
		}
	}
	if got := testutil.ToFloat64(e.client.metrics.quota.WithLabelValues("app")); got < 0 || got >= 100 {
		t.Fatalf("quota gauge %v", got)
	}
	if got := testutil.ToFloat64(e.client.metrics.throttle.WithLabelValues("app")); got <= 0 {
		t.Fatalf("throttle gauge %v", got)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	err := Config{APIURL: "ftp://x", Retry: RetryPolicy{MaxAttempts: -1}}.Validate()
	for _, want := range []string{"APIURL", "credentials", "retry"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("validate: %v (want %q named)", err, want)
		}
	}
	if _, err := New(Config{Credentials: APIKey("k"), APIURL: "https://x/crm/rest?a=b"}); err == nil {
		t.Fatal("APIURL with a query accepted")
	}
	reg := prometheus.NewRegistry()
	c1, err := New(Config{Credentials: APIKey("k"), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if c1.cfg.APIURL != DefaultAPIURL || c1.app.cfg.Limits != KeyLimits {
		t.Fatalf("defaults: %+v", c1.cfg)
	}
	// A second client (another tenant) on the same registry shares the collectors.
	if _, err := New(Config{Credentials: BearerToken("t"), Registerer: reg}); err != nil {
		t.Fatalf("second client on one registry: %v", err)
	}
	for _, c := range []Credentials{APIKey("KeapAK-secret"), BearerToken("tok-secret")} {
		if s := c.(interface{ String() string }).String(); strings.Contains(s, "secret") {
			t.Fatalf("credentials print their secret: %s", s)
		}
	}
	if _, err := NewBudget(BudgetConfig{Limits: KeyLimits}); err == nil {
		t.Fatal("budget without a key accepted")
	}
}

func TestForeignNextLinkRefused(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Credentials: APIKey("k"), APIURL: "http://127.0.0.1:9/crm/rest"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.resolve("https://api.infusionsoft.com/crm/rest/v1/contacts?limit=2&offset=2")
	if err != nil || got != "http://127.0.0.1:9/crm/rest/v1/contacts?limit=2&offset=2" {
		t.Fatalf("rebase: %q %v", got, err)
	}
	if _, err := c.resolve("https://evil.example/steal?x=1"); !errors.Is(err, errForeignLink) {
		t.Fatalf("foreign link: %v", err)
	}
}
