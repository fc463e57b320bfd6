package main

import (
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
			k, err := keapauth.NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, k)
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

// withKeeper reads and checks the OAuth settings, then opens the pool and the token keeper for
// one command.
func withKeeper(c *cli.Context, f func(pool *pgxpool.Pool, k *keapauth.Keeper) error) error {
	settings, err := readKeapSettings(c, true)
	if err == nil {
		err = settings.Validate(true)
	}
	if err != nil {
		return err
	}
	pool, err := openPoolURL(c.Context, settings.DatabaseURL)
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

func authLogin(c *cli.Context) error {
	return withKeeper(c, func(_ *pgxpool.Pool, k *keapauth.Keeper) error {
		opts := keapauth.LoginOptions{Listen: c.String("listen"), Out: c.App.Writer, Follow: c.Bool("follow"),
			RedirectURI: c.String("redirect-uri"), Paste: c.App.Reader}
		if opts.RedirectURI != "" && opts.Follow {
			return errors.New("--follow needs the one-shot callback; drop --redirect-uri")
		}
		if !c.Bool("no-browser") && !opts.Follow {
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

// authLink prints a connect link for `serve`. The link is the credential: whoever opens it may
// connect one Keap account, so it is printed only to the operator who ran this.
func authLink(c *cli.Context) error {
	pool, err := openPool(c.Context, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	link, expires, err := keapauth.NewConnectLink(c.Context, pool, publicURL(c), c.Duration("ttl"))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "Open this link (once, before %s) to connect a Keap account through keapsync serve:\n\n  %s\n",
		expires.UTC().Format(time.RFC3339), link)
	return nil
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
	pool, err := openPool(c.Context, c)
	if err != nil {
		return err
	}
	defer pool.Close()
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
	if key, err := apiKeyFlag.get(c); err != nil {
		return err
	} else if key != "" {
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

func authRefresh(c *cli.Context) error {
	return withKeeper(c, func(pool *pgxpool.Pool, k *keapauth.Keeper) error {
		var accounts []string
		if key := c.String("account"); key != "" {
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
	return withKeeper(c, func(pool *pgxpool.Pool, k *keapauth.Keeper) error {
		key := c.String("account")
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
