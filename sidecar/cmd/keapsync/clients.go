package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/keapauth"
)

// keapClients hands out one Keap client per account. All of them draw on one budget for the
// OAuth app (or personal key) and one per tenant, as Keap counts (law 7).
type keapClients struct {
	base   keap.Config
	keeper *keapauth.Keeper // nil with a personal key
	apiKey string
	pool   *pgxpool.Pool
	log    *slog.Logger

	mu      sync.Mutex
	app     *keap.Budget
	tenants map[string]*keap.Budget
	clients map[string]*keap.Client
}

const sqlAccountTenant = `select coalesce(keap_tenant, id::text) from keapsync.accounts where id = $1`

// newKeapClients reads the Keap flags. With KEAP_API_KEY it needs no OAuth settings.
func newKeapClients(c *cli.Context, pool *pgxpool.Pool, reg prometheus.Registerer) (*keapClients, error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, err
	}
	apiURL, err := checkURL(c, apiURLFlag)
	if err != nil {
		return nil, err
	}
	var keeper *keapauth.Keeper
	apiKey, err := apiKeyFlag.get(c)
	if err != nil {
		return nil, err
	}
	clientID := c.String(clientIDFlag.Name)
	if apiKey == "" {
		if keeper, err = newKeeper(c, pool); err != nil {
			return nil, err
		}
	}
	return makeKeapClients(log, pool, reg, apiURL, apiKey, clientID, keeper)
}

// makeKeapClients is newKeapClients without flags (the demo wires its own).
func makeKeapClients(log *slog.Logger, pool *pgxpool.Pool, reg prometheus.Registerer,
	apiURL, apiKey, clientID string, keeper *keapauth.Keeper) (*keapClients, error) {
	kc := &keapClients{pool: pool, log: log, apiKey: apiKey, keeper: keeper,
		tenants: map[string]*keap.Budget{}, clients: map[string]*keap.Client{}}
	kc.base = keap.DefaultConfig()
	kc.base.APIURL, kc.base.Logger, kc.base.Registerer = apiURL, log.With("component", "keap"), reg
	budget := keap.BudgetConfig{Logger: log, Key: keap.OAuthBudgetKey(clientID), Limits: keap.OAuthLimits}
	if apiKey != "" {
		budget.Key, budget.Limits = keap.KeyBudgetKey(apiKey), keap.KeyLimits
	}
	var err error
	if kc.app, err = keap.NewBudget(budget); err != nil {
		return nil, err
	}
	return kc, nil
}

// For returns the client of an account.
func (kc *keapClients) For(ctx context.Context, account string) (*keap.Client, error) {
	kc.mu.Lock()
	cl, ok := kc.clients[account]
	kc.mu.Unlock()
	if ok {
		return cl, nil
	}
	// Outside the lock: a query waits for a pooled connection, and holding the lock meanwhile
	// would stall every other worker's lookup behind it.
	var tenant string
	if err := kc.pool.QueryRow(ctx, sqlAccountTenant, account).Scan(&tenant); err != nil {
		return nil, fmt.Errorf("account %s: %w", account, err)
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if cl, ok := kc.clients[account]; ok {
		return cl, nil // another worker made it meanwhile
	}
	tb, ok := kc.tenants[tenant]
	if !ok {
		var err error
		if tb, err = keap.NewBudget(keap.BudgetConfig{Key: keap.TenantBudgetKey(tenant), Limits: keap.TenantLimits, Logger: kc.log}); err != nil {
			return nil, err
		}
		kc.tenants[tenant] = tb
	}
	cfg := kc.base
	cfg.AppBudget, cfg.TenantBudget = kc.app, tb
	if kc.apiKey != "" {
		cfg.Credentials = keap.APIKey(kc.apiKey)
	} else {
		cfg.Credentials = kc.keeper.For(account)
	}
	cl, err := keap.New(cfg)
	if err != nil {
		return nil, err
	}
	kc.clients[account] = cl
	return cl, nil
}

// tenantBudgets returns, per account with a client, the stats of its Keap app's (tenant) budget:
// the account's own numbers, which the dashboard shows its members.
func (kc *keapClients) tenantBudgets() map[string]keap.BudgetStats {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	out := make(map[string]keap.BudgetStats, len(kc.clients))
	for account, cl := range kc.clients {
		out[account] = cl.TenantBudget().Stats()
	}
	return out
}

// budgets lists the shared budgets, for cross-process sharing.
func (kc *keapClients) budgets() []*keap.Budget {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	out := []*keap.Budget{kc.app}
	for _, b := range kc.tenants {
		out = append(out, b)
	}
	return out
}

const sqlKeyAccount = `
insert into keapsync.accounts (name, keap_tenant) values ('Keap (personal key)', $1)
on conflict (keap_tenant) do update set updated_at = now()
returning id::text`

// resolveAccounts turns --account (id or tenant) into account ids; none given means every active
// account, and with a personal key the key's own account (created on first use).
func (kc *keapClients) resolveAccounts(ctx context.Context, key string) ([]string, error) {
	if key != "" {
		var id string
		if err := kc.pool.QueryRow(ctx, sqlFindAccount, key).Scan(&id); err != nil {
			return nil, accountError(key, err)
		}
		return []string{id}, nil
	}
	if kc.apiKey != "" {
		var id string
		if err := kc.pool.QueryRow(ctx, sqlKeyAccount, keap.KeyBudgetKey(kc.apiKey)).Scan(&id); err != nil {
			return nil, fmt.Errorf("record the personal key's account: %w", err)
		}
		if _, err := kc.pool.Exec(ctx, `insert into keapsync.settings (account_id) values ($1) on conflict do nothing`, id); err != nil {
			return nil, fmt.Errorf("record account settings: %w", err)
		}
		return []string{id}, nil
	}
	rows, err := kc.pool.Query(ctx, `select id::text from keapsync.accounts where not needs_reauth and not paused order by created_at`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no connected account: run keapsync auth login (or set KEAP_API_KEY)")
	}
	return ids, rows.Err()
}
