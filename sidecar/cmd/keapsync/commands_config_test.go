package main

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/keapauth"
)

const testDBURL = "postgres://x@h/db"

// readWith runs read on a command of flags given args, as the CLI would, and returns what it read.
func readWith[T any](t *testing.T, flags []cli.Flag, read func(*cli.Context) (T, error), args ...string) T {
	t.Helper()
	var got T
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	app.Commands = []*cli.Command{{Name: "cmd", Flags: flags, Action: func(c *cli.Context) error {
		var err error
		got, err = read(c)
		return err
	}}}
	if err := app.RunContext(context.Background(), append([]string{"keapsync", "cmd"}, args...)); err != nil {
		t.Fatalf("read %v: %v", args, err)
	}
	return got
}

// validates checks that cfg is accepted as it is, and that each edit of it is refused with an
// error saying want.
func validates[T any, PT interface {
	*T
	Validate() error
}](t *testing.T, good func() T, bad map[string]func(*T)) {
	t.Helper()
	cfg := good()
	if err := PT(&cfg).Validate(); err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	for want, edit := range bad {
		cfg := good()
		edit(&cfg)
		if err := PT(&cfg).Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
}

func TestDatabaseCommandsValidate(t *testing.T) {
	t.Parallel()
	noDB := "DATABASE_URL (--database-url) is required"
	validates(t, func() migrateConfig { return migrateConfig{DB: dbSettings{testDBURL}} },
		map[string]func(*migrateConfig){noDB: func(c *migrateConfig) { c.DB.DatabaseURL = "" }})
	validates(t, func() pruneConfig { return pruneConfig{DB: dbSettings{testDBURL}, Batch: 10} },
		map[string]func(*pruneConfig){noDB: func(c *pruneConfig) { c.DB.DatabaseURL = "" }})
	validates(t, func() linkConfig { return linkConfig{DB: dbSettings{testDBURL}} },
		map[string]func(*linkConfig){noDB: func(c *linkConfig) { c.DB.DatabaseURL = "" }})
	validates(t, func() statusConfig { return statusConfig{DB: dbSettings{testDBURL}} },
		map[string]func(*statusConfig){noDB: func(c *statusConfig) { c.DB.DatabaseURL = "" }})
	validates(t, func() listConfig { return listConfig{DB: dbSettings{testDBURL}} },
		map[string]func(*listConfig){noDB: func(c *listConfig) { c.DB.DatabaseURL = "" }})
	validates(t, func() historyConfig { return historyConfig{DB: dbSettings{testDBURL}, Limit: 20} },
		map[string]func(*historyConfig){
			noDB:                                     func(c *historyConfig) { c.DB.DatabaseURL = "" },
			`unexpected argument "x" (history takes`: func(c *historyConfig) { c.Args = []string{"x"}; c.DB.DatabaseURL = "" },
		})
}

// doctor checks the API URL before it opens anything, and trims its "/".
func TestDoctorConfigValidate(t *testing.T) {
	t.Parallel()
	good := func() doctorConfig {
		return doctorConfig{DB: dbSettings{testDBURL}, APIURL: "https://api.example/crm/rest/"}
	}
	validates(t, good, map[string]func(*doctorConfig){
		"DATABASE_URL":                 func(c *doctorConfig) { c.DB.DatabaseURL = "" },
		`KEAP_API_URL: not a URL: "x"`: func(c *doctorConfig) { c.APIURL = "x" },
	})
	cfg := good()
	if err := cfg.Validate(); err != nil || cfg.APIURL != "https://api.example/crm/rest" {
		t.Errorf("API URL %q (err %v), want it without its trailing /", cfg.APIURL, err)
	}
	read := readWith(t, doctorCommand().Flags, readDoctorConfig, "--max-slot-lag-mib", "2", "--database-url", testDBURL)
	if read.MaxSlotLag != 2<<20 || read.DB.DatabaseURL != testDBURL || read.APIURL == "" {
		t.Errorf("read %+v", read)
	}
}

// An id command wants exactly one number, and says which list shows them.
func TestIDConfigValidate(t *testing.T) {
	t.Parallel()
	good := func() idConfig {
		return idConfig{DB: dbSettings{testDBURL}, Args: []string{"42"}, What: "dead letter", List: "keapsync deadletters list"}
	}
	wrongID := "give one dead letter id (keapsync deadletters list lists them)"
	validates(t, good, map[string]func(*idConfig){
		"DATABASE_URL": func(c *idConfig) { c.DB.DatabaseURL = "" },
		wrongID:        func(c *idConfig) { c.Args = nil },
	})
	for _, args := range [][]string{{"x"}, {"1", "2"}, nil} {
		c := good()
		c.Args = args
		c.DB.DatabaseURL = "" // the id is checked first
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), wrongID) {
			t.Errorf("args %q: %v", args, err)
		}
	}
	c := good()
	if err := c.Validate(); err != nil || c.ID != 42 {
		t.Errorf("id %d, err %v", c.ID, err)
	}
}

// resolve takes one conflict by --keep or --value (a bare word becomes a JSON string), or all
// of an account's by --policy.
func TestResolveConfigValidate(t *testing.T) {
	t.Parallel()
	good := func() resolveConfig {
		return resolveConfig{DB: dbSettings{testDBURL}, Keep: "keap", Args: []string{"7"}}
	}
	validates(t, good, map[string]func(*resolveConfig){
		"DATABASE_URL":                           func(c *resolveConfig) { c.DB.DatabaseURL = "" },
		"--policy needs --account":               func(c *resolveConfig) { c.Policy = "keap_wins" },
		"give one conflict id":                   func(c *resolveConfig) { c.Args = []string{"seven"} },
		"give --keep or --value, not both":       func(c *resolveConfig) { c.ValueSet, c.Value = true, "1" },
		"--keep keap, --keep local, or --value":  func(c *resolveConfig) { c.Keep = "mine" },
		"--keep keap, --keep local, or --value ": func(c *resolveConfig) { c.Keep = "" },
	})
	for value, want := range map[string]string{`{"a":1}`: `{"a":1}`, "word": `"word"`, "12": "12"} {
		c := good()
		c.Keep, c.Value, c.ValueSet = "", value, true
		if err := c.Validate(); err != nil || c.Choice != "value" || string(c.JSON) != want || c.ID != 7 {
			t.Errorf("--value %s: choice %q JSON %s id %d err %v, want %s", value, c.Choice, c.JSON, c.ID, err, want)
		}
	}
	c := good()
	c.Policy, c.Account, c.Args = "keap_wins", "acct", nil // no id with --policy
	if err := c.Validate(); err != nil {
		t.Errorf("--policy with --account: %v", err)
	}
	read := readWith(t, conflictsCommand().Subcommands[1].Flags, readResolveConfig, "--keep", "local", "--account", "a", "9")
	if read.Keep != "local" || read.Account != "a" || !slices.Equal(read.Args, []string{"9"}) || read.ValueSet {
		t.Errorf("read %+v", read)
	}
}

func keyOnly() keapSettings {
	return keapSettings{DatabaseURL: testDBURL, APIURL: "https://api.example/crm/rest", APIKey: "k"}
}

func oauthOnly(t *testing.T) keapSettings {
	key := keapauth.NewKey()
	return keapSettings{DatabaseURL: testDBURL, SecretKey: key, OAuth: keapauth.Config{ClientID: "id", ClientSecret: "s",
		AuthURL: keapauth.DefaultAuthURL, TokenURL: keapauth.DefaultTokenURL}}
}

// backfill and reconcile check the object types, the Keap settings and the appliers before
// anything is opened; types are named by type or by table.
func TestSweepConfigValidate(t *testing.T) {
	t.Parallel()
	good := func() sweepConfig {
		return sweepConfig{Keap: keyOnly(), Objects: "contact, companies", Sweep: defaultSweepSettings()}
	}
	validates(t, good, map[string]func(*sweepConfig){
		`--objects: unknown object type "nope"`:    func(c *sweepConfig) { c.Objects = "contact,nope" },
		"KEAP_API_URL":                             func(c *sweepConfig) { c.Keap.APIURL = "x" },
		"(--appliers): want at least 1, got 0":     func(c *sweepConfig) { c.Sweep.Appliers = 0 },
		"KEAP_CLIENT_ID (--client-id) is required": func(c *sweepConfig) { c.Keap.APIKey = "" },
	})
	c := good()
	if err := c.Validate(); err != nil || !slices.Equal(c.Types, []string{"contact", "company"}) {
		t.Errorf("types %v, err %v", c.Types, err)
	}
	read := readWith(t, reconcileCommand().Flags, readSweepConfig, "--deletes", "--appliers", "3", "--account", "a")
	if !read.Deletes || read.Sweep.Appliers != 3 || read.Account != "a" || read.Objects == "" {
		t.Errorf("read %+v", read)
	}
}

// The hooks commands and the OAuth commands check their Keap settings; login refuses --follow
// with --redirect-uri before it opens anything.
func TestKeapCommandsValidate(t *testing.T) {
	t.Parallel()
	validates(t, func() hooksConfig { return hooksConfig{Keap: keyOnly(), PublicURL: "https://k.example"} },
		map[string]func(*hooksConfig){"DATABASE_URL": func(c *hooksConfig) { c.Keap.DatabaseURL = "" }})
	validates(t, func() tokenConfig { return tokenConfig{Keap: oauthOnly(t)} },
		map[string]func(*tokenConfig){"KEAP_CLIENT_SECRET": func(c *tokenConfig) { c.Keap.OAuth.ClientSecret = "" }})
	validates(t, func() loginConfig { return loginConfig{Keap: oauthOnly(t), Follow: true} },
		map[string]func(*loginConfig){
			"KEAPSYNC_SECRET_KEY": func(c *loginConfig) { c.Keap.SecretKey = "short" },
			"--follow needs the one-shot callback; drop --redirect-uri": func(c *loginConfig) {
				c.RedirectURI = "https://k.example/cb"
			},
		})
	read := readWith(t, authCommand().Subcommands[0].Flags, readLoginConfig, "--follow", "--listen", "127.0.0.1:1", "--client-id", "c")
	if !read.Follow || read.Listen != "127.0.0.1:1" || read.Keap.OAuth.ClientID != "c" {
		t.Errorf("read %+v", read)
	}
	hooks := readWith(t, hooksCommand().Subcommands[2].Flags, readHooksConfig, "--listen", "127.0.0.1:9", "--key", "k1")
	if hooks.PublicURL != "http://127.0.0.1:9" || hooks.Key != "k1" {
		t.Errorf("read %+v", hooks)
	}
}

// The sandbox resolves its profile by name; demo makes its directory absolute; the dashboard
// wants Supabase Auth or --local, then the database.
func TestLocalCommandsValidate(t *testing.T) {
	t.Parallel()
	validates(t, func() sandboxConfig { return sandboxConfig{ProfileName: "hardest"} },
		map[string]func(*sandboxConfig){`unknown sandbox profile "bogus"`: func(c *sandboxConfig) { c.ProfileName = "bogus" }})
	s := readWith(t, sandboxCommand().Flags, readSandboxConfig, "--contacts", "5", "--auto-approve")
	if err := s.Validate(); err != nil || s.Options.Contacts != 5 || !s.Options.AutoApprove || s.ProfileName != "documented" {
		t.Errorf("read %+v (err %v)", s, err)
	}
	d := demoConfig{Dir: "rel/dir"}
	if err := d.Validate(); err != nil || !filepath.IsAbs(d.Dir) || !strings.HasSuffix(d.Dir, "rel/dir") {
		t.Errorf("demo dir %q, err %v", d.Dir, err)
	}
	read := readWith(t, demoCommand().Flags, readDemoConfig, "--serve=false", "--pg-port", "1234")
	if read.Serve || read.PGPort != 1234 || read.Dir != ".data" || read.Listen != "127.0.0.1:8080" {
		t.Errorf("read %+v", read)
	}
	validates(t, func() dashboardCommandConfig {
		return dashboardCommandConfig{DB: dbSettings{testDBURL}, Dashboard: dashboard.Config{Local: true}}
	}, map[string]func(*dashboardCommandConfig){
		"SUPABASE_URL (--supabase-url) is required; for the demo, pass --local": func(c *dashboardCommandConfig) { c.Dashboard.Local = false },
		"DATABASE_URL": func(c *dashboardCommandConfig) { c.DB.DatabaseURL = "" },
	})
	for _, cfg := range []interface{ Validate() error }{&installConfig{}, &uninstallConfig{}} {
		if err := cfg.Validate(); err != nil { // they have nothing to check before they act
			t.Errorf("%T: %v", cfg, err)
		}
	}
	u := readWith(t, supabaseCommand().Subcommands[1].Flags, readUninstallConfig, "--workdir", "p", "--remove-files", "--push-slot", "s")
	if !u.WorkdirSet || !u.RemoveFiles || u.Workdir != "p" || u.Remove.Slot != "s" || u.Remove.Publication == "" {
		t.Errorf("read %+v", u)
	}
}
