package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keapclients"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

var (
	listenFlag = &cli.StringFlag{Name: "listen", EnvVars: []string{"KEAPSYNC_LISTEN"}, Value: "127.0.0.1:8080",
		Usage: "HTTP address for hooks, OAuth callback, dashboard, metrics, health"}
	publicURLFlag = &cli.StringFlag{Name: "public-url", EnvVars: []string{"KEAPSYNC_PUBLIC_URL"},
		Usage: "how Keap reaches --listen (hook URLs, OAuth redirect); default http:// + listen address"}
	accountFlag = &cli.StringFlag{Name: "account", Usage: "account id or tenant (default: every connected account)"}
	objectsFlag = &cli.StringFlag{Name: "objects", Value: strings.Join(ingest.ObjectTypes, ","),
		Usage: "object types, comma-separated (" + strings.Join(ingest.ObjectTypes, ", ") + ")"}
	keapFlags = slices.Concat([]cli.Flag{databaseURLFlag, apiURLFlag, clientIDFlag, authURLFlag, tokenURLFlag, allowedTenantsFlag},
		apiKeyFlag.Flags(), clientSecretFlag.Flags(), secretKeyFlag.Flags())
)

// keapSession is what the Keap-facing commands share: a pool and the per-account clients.
type keapSession struct {
	pool    *pgxpool.Pool
	clients *keapclients.Registry
	apiOf   func(ctx context.Context, account string) (ingest.Keap, error)
}

// open opens the pool and the clients of checked settings.
func (k *keapSettings) open(ctx context.Context, reg prometheus.Registerer) (*keapSession, error) {
	pool, err := openPoolURL(ctx, k.DatabaseURL)
	if err != nil {
		return nil, err
	}
	clients, err := k.clients(pool, reg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return newKeapSession(pool, clients), nil
}

func newKeapSession(pool *pgxpool.Pool, clients *keapclients.Registry) *keapSession {
	return &keapSession{pool: pool, clients: clients, apiOf: func(ctx context.Context, account string) (ingest.Keap, error) {
		return clients.For(ctx, account)
	}}
}

// objectTypes reads --objects: types by their names or their tables'.
func objectTypes(objects string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(objects, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		// A type by its name or its table's (company or companies).
		i := slices.IndexFunc(objecttype.All, func(ty objecttype.Type) bool { return t == ty.Name || t == ty.Table })
		if i < 0 || !slices.Contains(ingest.ObjectTypes, objecttype.All[i].Name) {
			return nil, fmt.Errorf("--objects: unknown object type %q (want %s)", t, strings.Join(ingest.ObjectTypes, ", "))
		}
		out = append(out, objecttype.All[i].Name)
	}
	return out, nil
}

// The sweep settings (backfill, reconcile, and serve's scheduled reconcile).
var (
	appliersFlag = &cli.IntFlag{Name: "appliers", Value: ingest.DefaultAppliers, EnvVars: []string{"KEAPSYNC_APPLIERS"},
		Usage: "pages applied at once, each in its own transaction (more use more of the database's cores)"}
	fetchersFlag = &cli.IntFlag{Name: "fetchers", Value: ingest.DefaultFetchers, EnvVars: []string{"KEAPSYNC_FETCHERS"},
		Usage: "pages fetched from Keap at once where a listing can be cut into ranges (contacts) or read ahead (orders), and at most held ahead of the apply; 1 fetches one page at a time"}
	listLimitFlag = &cli.IntFlag{Name: "list-limit", Value: ingest.MaxListLimit, EnvVars: []string{"KEAPSYNC_LIST_LIMIT"},
		Usage: "records asked of Keap per call where pages are fetched at once (1 to 1000, Keap's largest page)"}
	sweepFlags = []cli.Flag{appliersFlag, fetchersFlag, listLimitFlag}
)

// sweepSettings are a sweep's flags, read once; Validate names the first one wrong.
type sweepSettings struct {
	Appliers, Fetchers, ListLimit int
}

// defaultSweepSettings are the flags' defaults (the Sweeper's own).
func defaultSweepSettings() sweepSettings {
	return sweepSettings{Appliers: ingest.DefaultAppliers, Fetchers: ingest.DefaultFetchers, ListLimit: ingest.MaxListLimit}
}

func readSweepSettings(c *cli.Context) sweepSettings {
	return sweepSettings{Appliers: c.Int(appliersFlag.Name), Fetchers: c.Int(fetchersFlag.Name), ListLimit: c.Int(listLimitFlag.Name)}
}

// Validate checks the settings; a zero would silently mean the Sweeper's default, so it is refused.
func (s sweepSettings) Validate() error {
	switch {
	case s.Appliers < 1:
		return fmt.Errorf("KEAPSYNC_APPLIERS (--appliers): want at least 1, got %d", s.Appliers)
	case s.Fetchers < 1:
		return fmt.Errorf("KEAPSYNC_FETCHERS (--fetchers): want at least 1, got %d", s.Fetchers)
	case s.ListLimit < 1 || s.ListLimit > ingest.MaxListLimit:
		return fmt.Errorf("KEAPSYNC_LIST_LIMIT (--list-limit): want 1 to %d, got %d", ingest.MaxListLimit, s.ListLimit)
	}
	return nil
}

// sweeper is a Sweeper with these settings.
func (s sweepSettings) sweeper(db ingest.DB, api func(context.Context, string) (ingest.Keap, error), log *slog.Logger) *ingest.Sweeper {
	return &ingest.Sweeper{DB: db, API: api, Appliers: s.Appliers, Fetchers: s.Fetchers, ListLimit: s.ListLimit, Log: log}
}

// sweepCommand is backfill or reconcile: run sweeps one account with sw.
func sweepCommand(name, usage string, run func(c *cli.Context, cfg sweepConfig, sw *ingest.Sweeper, account string) error, extra ...cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  name,
		Usage: usage,
		Flags: slices.Concat([]cli.Flag{accountFlag, objectsFlag}, sweepFlags, extra, keapFlags),
		Action: func(c *cli.Context) error {
			cfg, err := settings(c, readSweepConfig)
			if err != nil {
				return err
			}
			s, err := cfg.Keap.open(c.Context, nil)
			if err != nil {
				return err
			}
			defer s.pool.Close()
			accounts, named, err := s.targets(c.Context, cfg.Account)
			if err != nil {
				return err
			}
			sw := cfg.Sweep.sweeper(s.pool, s.apiOf, cfg.Keap.Log.With("component", name))
			sw.Progress = c.App.ErrWriter
			return forEachAccount(c, accounts, named, name, func(a string) error { return run(c, cfg, sw, a) })
		},
	}
}

// sweepConfig is what backfill and reconcile read.
type sweepConfig struct {
	Keap    keapSettings
	Account string   // id or tenant ("": every connected account)
	Objects string   // --objects as given
	Types   []string // Validate reads them from Objects
	Sweep   sweepSettings
	Deletes bool // reconcile: also compare id sets for unhooked deletes
}

func readSweepConfig(c *cli.Context) (sweepConfig, error) {
	k, err := readKeapSettings(c, false)
	return sweepConfig{Keap: k, Account: c.String(accountFlag.Name), Objects: c.String(objectsFlag.Name),
		Sweep: readSweepSettings(c), Deletes: c.Bool("deletes")}, err
}

// Validate: the object types, the Keap settings, then the sweep settings.
func (s *sweepConfig) Validate() error {
	var err error
	if s.Types, err = objectTypes(s.Objects); err != nil {
		return err
	}
	if err := s.Keap.Validate(false); err != nil {
		return err
	}
	return s.Sweep.Validate()
}

func backfillCommand() *cli.Command {
	return sweepCommand("backfill", "copy everything from Keap into Postgres (resumable; lower priority than live sync)",
		func(c *cli.Context, cfg sweepConfig, s *ingest.Sweeper, account string) error {
			return s.Backfill(c.Context, account, cfg.Types)
		})
}

func reconcileCommand() *cli.Command {
	return sweepCommand("reconcile", "apply what changed in Keap since the last sweep (serve runs this on a schedule)",
		func(c *cli.Context, cfg sweepConfig, s *ingest.Sweeper, account string) error {
			if err := s.Reconcile(c.Context, account, cfg.Types); err != nil {
				return err
			}
			if !cfg.Deletes {
				return nil
			}
			n, err := s.SweepDeletes(c.Context, account, cfg.Types)
			if err == nil {
				fmt.Fprintf(c.App.Writer, "applied %d deletes no hook reported\n", n)
			}
			return err
		},
		&cli.BoolFlag{Name: "deletes", Usage: "also compare id sets to catch deletes no hook reported (lists everything)"})
}

func publicURL(c *cli.Context) string {
	if u := c.String(publicURLFlag.Name); u != "" {
		return strings.TrimRight(u, "/")
	}
	return "http://" + c.String(listenFlag.Name)
}

func hooksCommand() *cli.Command {
	flags := append([]cli.Flag{accountFlag, listenFlag, publicURLFlag}, keapFlags...)
	return &cli.Command{
		Name:  "hooks",
		Usage: "manage Keap REST Hook subscriptions",
		Subcommands: []*cli.Command{
			{
				Name:  "ensure",
				Usage: "subscribe every event keapsync needs (keapsync serve must be reachable at --public-url)",
				Flags: flags,
				Action: func(c *cli.Context) error {
					return forHookAccounts(c, func(cfg hooksConfig, s *keapSession, api ingest.HookAPI, account string) error {
						rep, err := ingest.EnsureHooks(c.Context, s.pool, api, account, cfg.PublicURL)
						if err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "account %s: %d verified, %d created, %d re-verified, %d stale removed\n",
							account, rep.Verified, rep.Created, rep.Reverified, rep.Removed)
						if len(rep.Unverified) > 0 {
							return fmt.Errorf("account %s: Keap could not verify %s: is %s reachable from Keap?",
								account, strings.Join(rep.Unverified, ", "), cfg.PublicURL)
						}
						return nil
					})
				},
			},
			{
				Name: "list", Usage: "list the account's subscriptions as Keap holds them (keapsync's, at this account's hook URL, and others)", Flags: flags,
				Action: func(c *cli.Context) error {
					return forHookAccounts(c, func(cfg hooksConfig, s *keapSession, api ingest.HookAPI, account string) error {
						url, err := ingest.HookURL(c.Context, s.pool, account, cfg.PublicURL)
						if err != nil {
							return err
						}
						hooks, err := api.ListHooks(c.Context)
						if err != nil {
							return err
						}
						tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
						fmt.Fprintln(tw, "KEY\tEVENT\tSTATUS\tOWNER\tURL")
						for _, h := range hooks {
							owner := "other"
							if ingest.SameHookURL(h.HookURL, url) {
								owner = "keapsync"
							}
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Key, h.EventKey, h.Status, owner, redactHookURL(h.HookURL))
						}
						if len(hooks) == 0 {
							fmt.Fprintln(tw, "(none)")
						}
						return tw.Flush()
					})
				},
			},
			{
				Name: "delete", Usage: "delete keapsync's subscriptions (all, or --key)", Flags: append(flags, &cli.StringFlag{Name: "key", Usage: "one subscription key"}),
				Action: func(c *cli.Context) error {
					return forHookAccounts(c, func(cfg hooksConfig, s *keapSession, api ingest.HookAPI, account string) error {
						url, err := ingest.HookURL(c.Context, s.pool, account, cfg.PublicURL)
						if err != nil {
							return err
						}
						hooks, err := api.ListHooks(c.Context)
						if err != nil {
							return err
						}
						for _, h := range hooks {
							if (cfg.Key == "" && ingest.SameHookURL(h.HookURL, url)) || h.Key == cfg.Key {
								if err := api.DeleteHook(c.Context, h.Key); err != nil {
									return err
								}
								fmt.Fprintf(c.App.Writer, "deleted %s (%s)\n", h.Key, h.EventKey)
							}
						}
						_, err = s.pool.Exec(c.Context, `delete from keapsync.hook_subscriptions where account_id = $1 and ($2 = '' or hook_key = $2)`,
							account, cfg.Key)
						return err
					})
				},
			},
		},
	}
}

// redactHookURL hides the secret path token of a hook URL in output.
func redactHookURL(u string) string {
	if i := strings.Index(u, "/hooks/"); i >= 0 && len(u) > i+7+6 {
		return u[:i+7+6] + "…"
	}
	return u
}

// hooksConfig is what the hooks commands read.
type hooksConfig struct {
	Keap      keapSettings
	Account   string // id or tenant ("": every connected account)
	PublicURL string // how Keap reaches serve
	Key       string // delete: one subscription ("": keapsync's all)
}

func readHooksConfig(c *cli.Context) (hooksConfig, error) {
	k, err := readKeapSettings(c, false)
	return hooksConfig{Keap: k, Account: c.String(accountFlag.Name), PublicURL: publicURL(c), Key: c.String("key")}, err
}

func (h *hooksConfig) Validate() error { return h.Keap.Validate(false) }

// forHookAccounts reads the hooks settings, opens the Keap session and runs f for each account.
func forHookAccounts(c *cli.Context, f func(hooksConfig, *keapSession, ingest.HookAPI, string) error) error {
	cfg, err := settings(c, readHooksConfig)
	if err != nil {
		return err
	}
	s, err := cfg.Keap.open(c.Context, nil)
	if err != nil {
		return err
	}
	defer s.pool.Close()
	accounts, named, err := s.targets(c.Context, cfg.Account)
	if err != nil {
		return err
	}
	return forEachAccount(c, accounts, named, "hooks "+c.Command.Name, func(a string) error {
		api, err := s.clients.For(c.Context, a)
		if err != nil {
			return err
		}
		return f(cfg, s, api, a)
	})
}
