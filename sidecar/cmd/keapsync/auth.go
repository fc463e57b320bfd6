package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/keapauth"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new KEAPSYNC_SECRET_KEY (base64 of 32 random bytes)",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, keapauth.NewKey())
			return nil
		},
	}
}

var oauthFlags = slices.Concat([]cli.Flag{databaseURLFlag, clientIDFlag, authURLFlag, tokenURLFlag, allowedTenantsFlag},
	clientSecretFlag.Flags(), secretKeyFlag.Flags())

func authCommand() *cli.Command {
	return &cli.Command{
		Name:  "auth",
		Usage: "connect Keap accounts and look after their tokens",
		Subcommands: []*cli.Command{
			{
				Name:  "login",
				Usage: "connect a Keap account with the OAuth authorization code flow",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "where the one-shot callback listens"},
					&cli.BoolFlag{Name: "no-browser", Usage: "only print the URL to open"},
					&cli.BoolFlag{Name: "follow", Usage: "fetch the authorize URL ourselves (for servers that approve without a person, e.g. the sandbox)"},
					&cli.StringFlag{Name: "redirect-uri", EnvVars: []string{"KEAP_REDIRECT_URI"}, Usage: "the HTTPS redirect URI registered in Keap's developer portal; login then asks you to paste the address Keap redirected to (instead of listening on --listen)"},
				}, oauthFlags...),
				Action: authLogin,
			},
			{
				Name:  "link",
				Usage: "print a one-time link that connects a Keap account through serve's /oauth/start",
				Flags: []cli.Flag{databaseURLFlag, listenFlag, publicURLFlag,
					&cli.DurationFlag{Name: "ttl", Value: keapauth.DefaultLinkTTL, Usage: "how long the link stays usable (at most 24h)"}},
				Action: authLink,
			},
			{Name: "status", Usage: "show each account's connection and token lifetimes (never a token)", Flags: append([]cli.Flag{databaseURLFlag}, apiKeyFlag.Flags()...), Action: authStatus},
			{
				Name: "refresh", Usage: "refresh tokens now (one account, or every connected one)",
				Flags:  append([]cli.Flag{&cli.StringFlag{Name: "account", Usage: "account id or tenant"}}, oauthFlags...),
				Action: authRefresh,
			},
			{
				Name: "revoke", Usage: "forget an account's tokens here (revoke the app in Keap's settings as well)",
				Flags:  append([]cli.Flag{&cli.StringFlag{Name: "account", Usage: "account id or tenant", Required: true}}, oauthFlags...),
				Action: authRevoke,
			},
		},
	}
}

// withKeeper opens the pool and the token keeper of checked OAuth settings for one command.
func withKeeper(ctx context.Context, settings keapSettings, f func(pool *pgxpool.Pool, k *keapauth.Keeper) error) error {
	pool, err := openPoolURL(ctx, settings.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	k, err := settings.keeper(pool)
	if err != nil {
		return err
	}
	return f(pool, k)
}

// loginConfig is what `keapsync auth login` reads.
type loginConfig struct {
	Keap        keapSettings // OAuth only
	Listen      string       // where the one-shot callback listens
	NoBrowser   bool
	Follow      bool   // fetch the authorize URL ourselves
	RedirectURI string // registered HTTPS redirect: the address is pasted back instead
}

func readLoginConfig(c *cli.Context) (loginConfig, error) {
	k, err := readKeapSettings(c, true)
	return loginConfig{Keap: k, Listen: c.String("listen"), NoBrowser: c.Bool("no-browser"), Follow: c.Bool("follow"),
		RedirectURI: c.String("redirect-uri")}, err
}

func (l *loginConfig) Validate() error {
	if err := l.Keap.Validate(true); err != nil {
		return err
	}
	if l.RedirectURI != "" && l.Follow {
		return errors.New("--follow needs the one-shot callback; drop --redirect-uri")
	}
	return nil
}

func authLogin(c *cli.Context) error {
	cfg, err := settings(c, readLoginConfig)
	if err != nil {
		return err
	}
	return withKeeper(c.Context, cfg.Keap, func(_ *pgxpool.Pool, k *keapauth.Keeper) error {
		opts := keapauth.LoginOptions{Listen: cfg.Listen, Out: c.App.Writer, Follow: cfg.Follow,
			RedirectURI: cfg.RedirectURI, Paste: c.App.Reader}
		if !cfg.NoBrowser && !opts.Follow {
			opts.OnURL = func(u string) { _ = exec.Command("xdg-open", u).Start() } // best effort
		}
		account, tenant, err := k.Login(c.Context, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "connected: account %s (%s)\n", account, tenant)
		return nil
	})
}

// linkConfig is what `keapsync auth link` reads.
type linkConfig struct {
	DB        dbSettings
	PublicURL string        // serve's, on which /oauth/start answers
	TTL       time.Duration // keapauth.NewConnectLink caps it
}

func readLinkConfig(c *cli.Context) (linkConfig, error) {
	return linkConfig{DB: readDBSettings(c), PublicURL: publicURL(c), TTL: c.Duration("ttl")}, nil
}

func (l *linkConfig) Validate() error { return l.DB.Validate() }

// authLink prints a connect link for `serve`. The link is the credential: whoever opens it may
// connect one Keap account, so it is printed only to the operator who ran this.
func authLink(c *cli.Context) error {
	cfg, err := settings(c, readLinkConfig)
	if err != nil {
		return err
	}
	return cfg.DB.withPool(c.Context, func(pool *pgxpool.Pool) error {
		link, expires, err := keapauth.NewConnectLink(c.Context, pool, cfg.PublicURL, cfg.TTL)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "Open this link (once, before %s) to connect a Keap account through keapsync serve:\n\n  %s\n",
			expires.UTC().Format(time.RFC3339), link)
		return nil
	})
}

// sqlAuthTokens: the token lifetimes beside each account's state (never a token).
const sqlAuthTokens = `select account_id::text, access_expires_at, refresh_expires_at, refreshed_at, coalesce(scope, '')
  from keapsync.oauth_tokens`

type tokenTimes struct {
	access, refresh, refreshed *time.Time
	scope                      string
}

// authStatus shows each account's state as keapsync.account_state words it (the dashboard,
// /readyz and doctor show the same line), and its token lifetimes.
func authStatus(c *cli.Context) error {
	cfg, err := settings(c, readStatusConfig)
	if err != nil {
		return err
	}
	return cfg.DB.withPool(c.Context, func(pool *pgxpool.Pool) error { return printAuthStatus(c, pool, cfg) })
}

// statusConfig is what `keapsync auth status` reads.
type statusConfig struct {
	DB     dbSettings
	APIKey string // only to say that one is configured
}

func readStatusConfig(c *cli.Context) (statusConfig, error) {
	key, err := apiKeyFlag.get(c)
	return statusConfig{DB: readDBSettings(c), APIKey: key}, err
}

func (s *statusConfig) Validate() error { return s.DB.Validate() }

func printAuthStatus(c *cli.Context, pool *pgxpool.Pool, cfg statusConfig) error {
	states, err := accountstate.List(c.Context, pool)
	if err != nil {
		return err
	}
	tokens := map[string]tokenTimes{}
	rows, err := pool.Query(c.Context, sqlAuthTokens)
	if err != nil {
		return fmt.Errorf("read token lifetimes: %w", err)
	}
	var id string
	var t tokenTimes
	if _, err := pgx.ForEachRow(rows, []any{&id, &t.access, &t.refresh, &t.refreshed, &t.scope}, func() error {
		tokens[id] = t
		return nil
	}); err != nil {
		return fmt.Errorf("read token lifetimes: %w", err)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ACCOUNT\tTENANT\tACCESS EXPIRES\tREFRESH EXPIRES\tLAST REFRESH\tSCOPE\tSTATE")
	for _, a := range states {
		t := tokens[a.ID]
		scope := t.scope
		if scope == "" {
			scope = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Display(), when(t.access), when(t.refresh), when(t.refreshed), scope, a.Summary())
	}
	w.Flush()
	if len(states) == 0 {
		fmt.Fprintln(c.App.Writer, "no accounts yet: run keapsync auth login")
	}
	if cfg.APIKey != "" {
		fmt.Fprintln(c.App.Writer, "a personal access key is configured (KEAP_API_KEY)")
	}
	return nil
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

const sqlFindAccount = `select id::text from keapsync.accounts where id::text = $1 or keap_tenant = $1`

// tokenConfig is what `keapsync auth refresh` and `revoke` read.
type tokenConfig struct {
	Keap    keapSettings // OAuth only
	Account string       // id or tenant (refresh: "" for every account with a token)
}

func readTokenConfig(c *cli.Context) (tokenConfig, error) {
	k, err := readKeapSettings(c, true)
	return tokenConfig{Keap: k, Account: c.String("account")}, err
}

func (t *tokenConfig) Validate() error { return t.Keap.Validate(true) }

func authRefresh(c *cli.Context) error {
	cfg, err := settings(c, readTokenConfig)
	if err != nil {
		return err
	}
	return withKeeper(c.Context, cfg.Keap, func(pool *pgxpool.Pool, k *keapauth.Keeper) error {
		var accounts []string
		if key := cfg.Account; key != "" {
			var account string
			if err := pool.QueryRow(c.Context, sqlFindAccount, key).Scan(&account); err != nil {
				return accountError(key, err)
			}
			accounts = []string{account}
		} else {
			rows, err := pool.Query(c.Context, `select account_id::text from keapsync.oauth_tokens`)
			if err == nil {
				accounts, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil {
				return fmt.Errorf("read accounts: %w", err)
			}
		}
		// Every account with a token, paused ones too (a paused account's refresh token still
		// ages); one failing account does not stop the others.
		failed := 0
		for _, a := range accounts {
			t, err := k.Refresh(c.Context, a, "")
			if err != nil {
				line, _ := oneLine(err)
				fmt.Fprintf(c.App.ErrWriter, "refresh %s: failed: %s\n", a, line)
				failed++
				continue
			}
			fmt.Fprintf(c.App.Writer, "refreshed %s: access token valid until %s\n", a, t.Expiry.UTC().Format(time.RFC3339))
		}
		if failed > 0 {
			return fmt.Errorf("refresh failed for %d of %d accounts (see above)", failed, len(accounts))
		}
		return nil
	})
}

func authRevoke(c *cli.Context) error {
	cfg, err := settings(c, readTokenConfig)
	if err != nil {
		return err
	}
	return withKeeper(c.Context, cfg.Keap, func(pool *pgxpool.Pool, k *keapauth.Keeper) error {
		key := cfg.Account
		var account string
		if err := pool.QueryRow(c.Context, sqlFindAccount, key).Scan(&account); err != nil {
			return accountError(key, err)
		}
		if err := k.Revoke(c.Context, account); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "revoked: tokens of %s forgotten; it now needs re-authorization\n", account)
		return nil
	})
}

func accountError(key string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("no account %q (give an account id or tenant; see keapsync auth status)", key)
	}
	return fmt.Errorf("find account %q: %w", key, err)
}
