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

// withKeeper opens the pool and the token keeper for one command.
func withKeeper(c *cli.Context, f func(pool *pgxpool.Pool, k *keapauth.Keeper) error) error {
	pool, err := openPool(c.Context, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	k, err := newKeeper(c, pool)
	if err != nil {
		return err
	}
	return f(pool, k)
}

func authLogin(c *cli.Context) error {
	return withKeeper(c, func(_ *pgxpool.Pool, k *keapauth.Keeper) error {
		opts := keapauth.LoginOptions{Listen: c.String("listen"), Out: c.App.Writer, Follow: c.Bool("follow")}
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

const sqlAuthStatus = `
select a.id::text, coalesce(a.keap_tenant, ''), a.name,
       case when t.account_id is null then 'not connected' when a.needs_reauth then 'needs re-authorization'
            when a.paused then 'paused' else 'connected' end,
       t.access_expires_at, t.refresh_expires_at, t.refreshed_at, coalesce(t.scope, ''), coalesce(t.last_error, '')
  from keapsync.accounts a left join keapsync.oauth_tokens t on t.account_id = a.id
 order by a.name`

func authStatus(c *cli.Context) error {
	pool, err := openPool(c.Context, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	rows, err := pool.Query(c.Context, sqlAuthStatus)
	if err != nil {
		return fmt.Errorf("read accounts: %w", err)
	}
	defer rows.Close()
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ACCOUNT\tTENANT\tSTATE\tACCESS EXPIRES\tREFRESH EXPIRES\tLAST REFRESH\tSCOPE\tLAST ERROR")
	n := 0
	for rows.Next() {
		var id, tenant, name, state, scope, lastErr string
		var access, refresh, refreshed *time.Time
		if err := rows.Scan(&id, &tenant, &name, &state, &access, &refresh, &refreshed, &scope, &lastErr); err != nil {
			return fmt.Errorf("read accounts: %w", err)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, tenant, state, when(access), when(refresh), when(refreshed), scope, lastErr)
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read accounts: %w", err)
	}
	w.Flush()
	if n == 0 {
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
		var errs []error
		for _, a := range accounts {
			t, err := k.Refresh(c.Context, a, "")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(c.App.Writer, "refreshed %s: access token valid until %s\n", a, t.Expiry.UTC().Format(time.RFC3339))
		}
		return errors.Join(errs...)
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
