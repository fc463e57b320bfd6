package main

import (
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/push"
)

// serve's settings are checked once, before anything is opened, and the first one wrong is
// named by its variable.
func TestServeConfigValidate(t *testing.T) {
	t.Parallel()
	good := func() serveConfig {
		p := push.DefaultConfig()
		return serveConfig{Keap: keapSettings{DatabaseURL: "postgres://x@h/db", APIURL: "https://api.example/crm/rest/", APIKey: "k"}, Push: &p,
			Sweep: defaultSweepSettings()}
	}
	cfg := good()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Keap.APIURL != "https://api.example/crm/rest" {
		t.Errorf("API URL %q kept its trailing /", cfg.Keap.APIURL)
	}
	for want, edit := range map[string]func(*serveConfig){
		"DATABASE_URL":        func(c *serveConfig) { c.Keap.DatabaseURL = "" },
		"KEAP_API_URL":        func(c *serveConfig) { c.Keap.APIURL = "api.example" },
		"KEAP_CLIENT_ID":      func(c *serveConfig) { c.Keap.APIKey = "" },
		"KEAP_CLIENT_SECRET":  func(c *serveConfig) { c.Keap.APIKey, c.Keap.OAuth.ClientID = "", "id" },
		"KEAPSYNC_COALESCE":   func(c *serveConfig) { c.Coalesce = -1 },
		"slot name":           func(c *serveConfig) { c.Push.Slot = "Bad-Slot" },
		"workers 0":           func(c *serveConfig) { c.Push.Workers = 0 },
		"KEAPSYNC_FETCHERS":   func(c *serveConfig) { c.Sweep.Fetchers = 0 },
		"KEAPSYNC_LIST_LIMIT": func(c *serveConfig) { c.Sweep.ListLimit = 1001 },
		"KEAPSYNC_APPLIERS":   func(c *serveConfig) { c.Sweep.Appliers = 0 },
		"max settle":          func(c *serveConfig) { c.Push.Settle, c.Push.MaxSettle = time.Second, 500*time.Millisecond },
		"known for":           func(c *serveConfig) { c.Push.KnownFor = -time.Second },
	} {
		c := good()
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
	c := good()
	c.Push = nil // --no-push: no push settings to check
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// A sweep's settings reach its Sweeper as given; a zero (which the Sweeper would take for its
// default) or a page past Keap's largest is refused, naming the variable.
func TestSweepSettings(t *testing.T) {
	t.Parallel()
	s := sweepSettings{Appliers: 3, Fetchers: 4, ListLimit: 500}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if sw := s.sweeper(nil, nil, nil); sw.Appliers != 3 || sw.Fetchers != 4 || sw.ListLimit != 500 {
		t.Errorf("sweeper: appliers %d, fetchers %d, list limit %d", sw.Appliers, sw.Fetchers, sw.ListLimit)
	}
	if err := defaultSweepSettings().Validate(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	for want, bad := range map[string]sweepSettings{
		"KEAPSYNC_APPLIERS":   {Appliers: 0, Fetchers: 1, ListLimit: 1},
		"KEAPSYNC_FETCHERS":   {Appliers: 1, Fetchers: 0, ListLimit: 1},
		"KEAPSYNC_LIST_LIMIT": {Appliers: 1, Fetchers: 1, ListLimit: 1001},
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
}
