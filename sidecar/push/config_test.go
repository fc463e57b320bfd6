package push_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/push"
)

// The settings a person gives are checked before anything is opened, the first one wrong named;
// New also wants the parts wired in code.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := push.DefaultConfig().ValidateSettings(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for want, edit := range map[string]func(*push.Config){
		`slot name "Bad-Slot"`:                          func(c *push.Config) { c.Slot = "Bad-Slot" },
		`publication name "pub;drop"`:                   func(c *push.Config) { c.Publication = "pub;drop" },
		"workers 0: at least 1":                         func(c *push.Config) { c.Workers = 0 },
		"batch size 0: at least 1":                      func(c *push.Config) { c.BatchSize = 0 },
		"intervals must be positive":                    func(c *push.Config) { c.Lease = 0 },
		"(and RetryMax >= RetryBase)":                   func(c *push.Config) { c.RetryMax = c.RetryBase / 2 },
		"intervals must be positive ":                   func(c *push.Config) { c.Settle = -1 },
		"max settle 100ms: below the settle time 500ms": func(c *push.Config) { c.MaxSettle = 100 * time.Millisecond },
		"known for -1s: negative":                       func(c *push.Config) { c.KnownFor = -time.Second },
	} {
		c := push.DefaultConfig()
		edit(&c)
		if err := c.ValidateSettings(); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(want)) {
			t.Errorf("%s: %v", want, err)
		}
	}
	c := push.DefaultConfig()
	if _, err := push.New(c); err == nil || !strings.Contains(err.Error(), "push: DB is required") {
		t.Errorf("without a DB: %v", err)
	}
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none") // never connected
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c.DB = pool
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "push: API is required") {
		t.Errorf("without an API: %v", err)
	}
	c.API = func(context.Context, string) (push.Keap, error) { return nil, nil }
	// Wired in code, a max settle below the settle time is raised to it rather than refused.
	c.MaxSettle = time.Millisecond
	if _, err := push.New(c); err != nil {
		t.Errorf("New with a max settle below the settle time: %v", err)
	}
	c.Workers = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "workers 0") {
		t.Errorf("wired, with a bad setting: %v", err)
	}
}

// Pushers of one process share their metrics on one registry; a registry holding another
// metric of the same name refuses the second, and New says so.
func TestMetricsRegistration(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none") // never connected
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c := push.DefaultConfig()
	c.DB, c.API = pool, func(context.Context, string) (push.Keap, error) { return nil, nil }
	c.Registerer = prometheus.NewRegistry()
	for i := range 2 {
		if _, err := push.New(c); err != nil {
			t.Fatalf("pusher %d on one registry: %v", i+1, err)
		}
	}
	other := prometheus.NewRegistry()
	other.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "keapsync_push_queue_depth", Help: "not ours"}))
	c.Registerer = other
	if _, err := push.New(c); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Errorf("New on a registry with a clashing metric: %v", err)
	}
}
