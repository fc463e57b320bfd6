// Package keapclients hands out one Keap client per account: all of them draw on one budget for
// the OAuth app (or personal key) and one per Keap tenant, as Keap counts (law 7), and, once
// started, those budgets are shared with the other sidecar processes on the same database.
package keapclients

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/keapauth"
)

// DB is what the registry and its budget shares need of a connection pool (*pgxpool.Pool has it).
type DB interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Config of a Registry.
type Config struct {
	// APIURL is the base to which /v1/contacts etc. is appended (KEAP_API_URL).
	APIURL string
	// APIKey, a personal access or service account key, replaces OAuth (KEAP_API_KEY).
	APIKey string
	// ClientID names the OAuth app's budget (KEAP_CLIENT_ID); unused with APIKey.
	ClientID string
	// Keeper supplies each account's OAuth tokens; required without APIKey.
	Keeper     *keapauth.Keeper
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	// Share configures the cross-process budget shares Start begins (zero: keap's defaults).
	Share keap.BudgetShareConfig
}

// Validate says what is missing.
func (c Config) Validate() error {
	if c.APIURL == "" {
		return errors.New("keap clients: no API URL")
	}
	if c.APIKey == "" && c.Keeper == nil {
		return errors.New("keap clients: neither a personal key nor an OAuth token keeper")
	}
	return nil
}

// Registry hands out the per-account clients. Start shares its budgets with the other processes
// on the database; Stop leaves them. A registry that is never started still limits this process.
type Registry struct {
	cfg  Config
	db   DB
	log  *slog.Logger
	base keap.Config

	mu       sync.Mutex
	app      *keap.Budget
	tenants  map[string]*keap.Budget
	clients  map[string]*keap.Client
	shareCtx context.Context // set by Start: budgets made later are shared too
	shares   []*keap.BudgetShare
}

// New checks cfg and builds a registry; nothing is fetched until For.
func New(cfg Config, db DB) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, errors.New("keap clients: no database")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{cfg: cfg, db: db, log: cfg.Logger, tenants: map[string]*keap.Budget{}, clients: map[string]*keap.Client{}}
	r.base = keap.DefaultConfig()
	r.base.APIURL, r.base.Logger, r.base.Registerer = cfg.APIURL, cfg.Logger, cfg.Registerer // keap.New names its component
	budget := keap.BudgetConfig{Logger: cfg.Logger, Key: keap.OAuthBudgetKey(cfg.ClientID), Limits: keap.OAuthLimits}
	if cfg.APIKey != "" {
		budget.Key, budget.Limits = keap.KeyBudgetKey(cfg.APIKey), keap.KeyLimits
	}
	var err error
	if r.app, err = keap.NewBudget(budget); err != nil {
		return nil, err
	}
	return r, nil
}

// Keeper is the OAuth token keeper (nil with a personal key).
func (r *Registry) Keeper() *keapauth.Keeper { return r.cfg.Keeper }

// APIKey is the personal key in use ("" with OAuth).
func (r *Registry) APIKey() string { return r.cfg.APIKey }

const sqlAccountTenant = `select coalesce(keap_tenant, id::text) from keapsync.accounts where id = $1`

// For returns the client of an account, made on first use.
func (r *Registry) For(ctx context.Context, account string) (*keap.Client, error) {
	r.mu.Lock()
	cl, ok := r.clients[account]
	r.mu.Unlock()
	if ok {
		return cl, nil
	}
	// Outside the lock: a query waits for a pooled connection, and holding the lock meanwhile
	// would stall every other worker's lookup behind it.
	var tenant string
	if err := r.db.QueryRow(ctx, sqlAccountTenant, account).Scan(&tenant); err != nil {
		return nil, fmt.Errorf("account %s: %w", account, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cl, ok := r.clients[account]; ok {
		return cl, nil // another worker made it meanwhile
	}
	tb, ok := r.tenants[tenant]
	if !ok {
		var err error
		if tb, err = keap.NewBudget(keap.BudgetConfig{Key: keap.TenantBudgetKey(tenant), Limits: keap.TenantLimits, Logger: r.log}); err != nil {
			return nil, err
		}
		if r.shareCtx != nil {
			// A tenant first met after Start is shared like the ones met before it. Its first
			// heartbeat runs under the lock, once per tenant and process: a share started
			// outside it could miss a Stop that came meanwhile and heartbeat for ever.
			if err := r.share(r.shareCtx, tb); err != nil {
				return nil, err
			}
		}
		r.tenants[tenant] = tb
	}
	cfg := r.base
	cfg.AppBudget, cfg.TenantBudget = r.app, tb
	if r.cfg.APIKey != "" {
		cfg.Credentials = keap.APIKey(r.cfg.APIKey)
	} else {
		cfg.Credentials = r.cfg.Keeper.For(account)
	}
	cl, err := keap.New(cfg)
	if err != nil {
		return nil, err
	}
	r.clients[account] = cl
	return cl, nil
}

// TenantBudgets returns, per account with a client, the stats of its Keap app's (tenant)
// budget: the account's own numbers, which the dashboard shows its members.
func (r *Registry) TenantBudgets() map[string]keap.BudgetStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]keap.BudgetStats, len(r.clients))
	for account, cl := range r.clients {
		out[account] = cl.TenantBudget().Stats()
	}
	return out
}

// Budgets lists the budgets: the app's (or key's) first, then one per tenant met so far.
func (r *Registry) Budgets() []*keap.Budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []*keap.Budget{r.app}
	for _, b := range r.tenants {
		out = append(out, b)
	}
	return out
}

// Start shares every budget with the other sidecar processes on this database (the membership
// rules are keapsync.rate_budget_share's), now and for each tenant met later, until Stop or
// ctx ends. A database that cannot be reached fails Start.
func (r *Registry) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shareCtx != nil {
		return errors.New("keap clients: already started")
	}
	budgets := []*keap.Budget{r.app}
	for _, b := range r.tenants {
		budgets = append(budgets, b)
	}
	for _, b := range budgets {
		if err := r.share(ctx, b); err != nil {
			r.stopLocked()
			return err
		}
	}
	r.shareCtx = ctx
	return nil
}

// share starts sharing b; the caller holds r.mu.
func (r *Registry) share(ctx context.Context, b *keap.Budget) error {
	cfg := r.cfg.Share
	if cfg.Logger == nil {
		cfg.Logger = r.log
	}
	s, err := keap.NewBudgetShare(r.db, b, cfg)
	if err == nil {
		err = s.Start(ctx)
	}
	if err != nil {
		return fmt.Errorf("share keap budget %s: %w", b.Key(), err)
	}
	r.shares = append(r.shares, s)
	return nil
}

// Stop leaves every shared budget at once, so the other processes speed up on their next beat.
// The clients keep working, unshared.
func (r *Registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *Registry) stopLocked() {
	for _, s := range r.shares {
		s.Stop()
	}
	r.shares, r.shareCtx = nil, nil
}
