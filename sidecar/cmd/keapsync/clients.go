package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/keap"
)

const sqlKeyAccount = `
insert into keapsync.accounts (name, keap_tenant, credential) values ('Keap (personal key)', $1, 'api_key')
on conflict (keap_tenant) do update set credential = 'api_key', updated_at = now()
returning id::text`

// targets turns --account (id or tenant) into the accounts a command works on, with their
// state; none given means every account (those that cannot sync are reported and skipped), and
// with a personal key the key's own account (created on first use).
func (kc *keapSession) targets(ctx context.Context, key string) (accounts []accountstate.Account, named bool, err error) {
	var id string
	switch {
	case key != "":
		if err := kc.pool.QueryRow(ctx, sqlFindAccount, key).Scan(&id); err != nil {
			return nil, true, accountError(key, err)
		}
	case kc.clients.APIKey() != "":
		if err := kc.pool.QueryRow(ctx, sqlKeyAccount, keap.KeyBudgetKey(kc.clients.APIKey())).Scan(&id); err != nil {
			return nil, false, fmt.Errorf("record the personal key's account: %w", err)
		}
		if _, err := kc.pool.Exec(ctx, `insert into keapsync.settings (account_id) values ($1) on conflict do nothing`, id); err != nil {
			return nil, false, fmt.Errorf("record account settings: %w", err)
		}
	default:
		all, err := accountstate.List(ctx, kc.pool)
		if err != nil {
			return nil, false, err
		}
		if len(all) == 0 {
			return nil, false, fmt.Errorf("no account yet: run keapsync auth login (or set KEAP_API_KEY)")
		}
		return all, false, nil
	}
	a, _, err := accountstate.Get(ctx, kc.pool, id)
	return []accountstate.Account{a}, true, err
}

// forEachAccount runs f for each account and carries on past a failing one: one line per
// account says what happened, and the error (exit status 1) counts the failures. An account
// that cannot sync is skipped with its state; that fails only when it was named (--account) or
// nothing could run at all.
func forEachAccount(c *cli.Context, accounts []accountstate.Account, named bool, what string, f func(account string) error) error {
	failed, ran := 0, 0
	for _, a := range accounts {
		if !a.State.CanSync() {
			fmt.Fprintf(c.App.Writer, "%s %s: skipped: %s\n", what, a.Display(), a.Summary())
			if fix := a.Fix(); fix != "" {
				fmt.Fprintf(c.App.Writer, "  -> %s\n", fix)
			}
			if named {
				failed++
			}
			continue
		}
		ran++
		if err := f(a.ID); err != nil {
			if c.Context.Err() != nil {
				return c.Context.Err()
			}
			line, _ := oneLine(err)
			fmt.Fprintf(c.App.ErrWriter, "%s %s: failed: %s\n", what, a.Display(), line)
			failed++
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s %s: done\n", what, a.Display())
	}
	switch {
	case failed > 0:
		return fmt.Errorf("%s failed for %d of %d accounts (see above)", what, failed, len(accounts))
	case ran == 0:
		return fmt.Errorf("%s: no account can sync (see above)", what)
	}
	return nil
}
