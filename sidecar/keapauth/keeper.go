package keapauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

// Clock tells the time; tests move it instead of sleeping.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Keap's real endpoints.
const (
	DefaultAuthURL  = "https://accounts.infusionsoft.com/app/oauth/authorize"
	DefaultTokenURL = "https://api.infusionsoft.com/token"
)

// Config of a Keeper.
type Config struct {
	ClientID     string
	ClientSecret string
	AuthURL      string // default DefaultAuthURL
	TokenURL     string // default DefaultTokenURL

	RefreshAhead    time.Duration // refresh this long before the access token expires (default 3h)
	KeepAliveAfter  time.Duration // refresh a refresh token older than this (default 30 days of Keap's 45)
	RefreshLifetime time.Duration // Keap's refresh-token lifetime (default 45 days)
	CheckEvery      time.Duration // how often Run looks for due accounts (default 1 minute)
	// AllowedTenants, when not empty, are the only Keap tenants (as in the token's scope, e.g.
	// ab123.infusionsoft.com; case-insensitive) Connect accepts (KEAPSYNC_ALLOWED_TENANTS).
	AllowedTenants []string
	Clock          Clock
	HTTPClient     *http.Client
	Log            *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.AuthURL == "" {
		c.AuthURL = DefaultAuthURL
	}
	if c.TokenURL == "" {
		c.TokenURL = DefaultTokenURL
	}
	if c.RefreshAhead == 0 {
		c.RefreshAhead = 3 * time.Hour
	}
	if c.RefreshLifetime == 0 {
		c.RefreshLifetime = 45 * 24 * time.Hour
	}
	if c.KeepAliveAfter == 0 {
		c.KeepAliveAfter = 30 * 24 * time.Hour
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = time.Minute
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first missing setting.
func (c Config) Validate() error {
	switch {
	case c.ClientID == "":
		return errors.New("KEAP_CLIENT_ID is required for OAuth")
	case c.ClientSecret == "":
		return errors.New("KEAP_CLIENT_SECRET is required for OAuth")
	}
	return nil
}

// Errors callers act on.
var (
	// ErrNeedsReauth: Keap refused the refresh token; a person must run the connect flow again.
	ErrNeedsReauth = errors.New("Keap refused the refresh token; the account needs re-authorization (keapsync auth login)")
	// ErrBadClient: Keap refused the client id/secret; a configuration problem, not the account's.
	ErrBadClient = errors.New("Keap refused the OAuth client id/secret (KEAP_CLIENT_ID, KEAP_CLIENT_SECRET)")
	// ErrBadCode: Keap refused an authorization code (expired, used once already, or issued for
	// another redirect URI); the connect flow must start again, and no account is touched.
	ErrBadCode = errors.New("Keap refused the authorization code (expired, already used, or for another redirect URI); start the connect flow again")
	// ErrTenantNotAllowed: the approved Keap tenant is not in KEAPSYNC_ALLOWED_TENANTS.
	ErrTenantNotAllowed = errors.New("this Keap tenant is not in KEAPSYNC_ALLOWED_TENANTS")
)

// Keeper owns the tokens of every account in one database.
type Keeper struct {
	cfg  Config
	db   db
	keys *Keyring
	log  *slog.Logger
	loop lifecycle.Loop // the scheduled refreshes (Start, Stop)

	mu    sync.Mutex
	cache map[string]Token // account id -> token known to be stored
}

// New returns a Keeper. It talks to Keap only when a token must be exchanged or refreshed.
func New(cfg Config, pool db, keys *Keyring) (*Keeper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Keeper{cfg: cfg, db: pool, keys: keys, log: cfg.Log.With("component", "tokens"), cache: map[string]Token{}}, nil
}

// oauthConfig: Keap takes client credentials in the form body for the code exchange and as HTTP
// Basic for refresh (FACTS.md §1), so each grant gets its own auth style.
func (k *Keeper) oauthConfig(style oauth2.AuthStyle, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: k.cfg.ClientID, ClientSecret: k.cfg.ClientSecret, RedirectURL: redirectURI,
		Scopes:   []string{"full"},
		Endpoint: oauth2.Endpoint{AuthURL: k.cfg.AuthURL, TokenURL: k.cfg.TokenURL, AuthStyle: style},
	}
}

// AuthCodeURL is where a person approves access; state must come back unchanged.
func (k *Keeper) AuthCodeURL(state, redirectURI string) string {
	return k.oauthConfig(oauth2.AuthStyleInParams, redirectURI).AuthCodeURL(state)
}

func (k *Keeper) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, k.cfg.HTTPClient)
}

// fromOAuth turns x/oauth2's token into ours, timed by our clock (x/oauth2 uses the wall clock).
func (k *Keeper) fromOAuth(t *oauth2.Token) (Token, error) {
	if t.AccessToken == "" || t.RefreshToken == "" {
		return Token{}, errors.New("Keap's token response lacks an access or refresh token")
	}
	now := k.cfg.Clock.Now()
	expiresIn := 24 * time.Hour
	switch v := t.Extra("expires_in").(type) {
	case float64:
		expiresIn = time.Duration(v) * time.Second
	case string:
		if d, err := time.ParseDuration(v + "s"); err == nil {
			expiresIn = d
		}
	}
	scope, _ := t.Extra("scope").(string)
	return Token{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Scope: scope,
		Expiry: now.Add(expiresIn), RefreshExpiry: now.Add(k.cfg.RefreshLifetime), IssuedAt: now,
	}, nil
}

// Tenant is the Keap app named in a token's scope (`full|xy123.infusionsoft.com`).
func Tenant(scope string) string {
	if _, after, ok := strings.Cut(scope, "|"); ok {
		return after
	}
	return ""
}

// Connect exchanges an authorization code, finds or creates the account by the tenant in the
// token's scope, and stores the token, all before returning. Returns the account id and tenant.
func (k *Keeper) Connect(ctx context.Context, code, redirectURI string) (account, tenant string, err error) {
	ot, err := k.oauthConfig(oauth2.AuthStyleInParams, redirectURI).Exchange(k.httpContext(ctx), code)
	if err != nil {
		return "", "", fmt.Errorf("exchange authorization code: %w", describe(err, ErrBadCode))
	}
	t, err := k.fromOAuth(ot)
	if err != nil {
		return "", "", err
	}
	tenant = Tenant(t.Scope)
	if tenant == "" {
		return "", "", fmt.Errorf("Keap's token scope %q names no tenant", t.Scope)
	}
	if !k.allowed(tenant) {
		// Refused before any account row exists; the tokens Keap issued are dropped unstored.
		return "", "", fmt.Errorf("connect %s: %w", tenant, ErrTenantNotAllowed)
	}
	err = pgx.BeginFunc(ctx, k.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, sqlConnectAccount, tenant).Scan(&account); err != nil {
			return fmt.Errorf("record account %s: %w", tenant, err)
		}
		if _, err := tx.Exec(ctx, sqlEnsureSettings, account); err != nil {
			return fmt.Errorf("record account settings: %w", err)
		}
		return k.save(ctx, tx, account, t)
	})
	if err != nil {
		return "", "", err
	}
	k.remember(account, t)
	k.log.Info("connected Keap account", "account", account, "tenant", tenant)
	return account, tenant, nil
}

func (k *Keeper) allowed(tenant string) bool {
	if len(k.cfg.AllowedTenants) == 0 {
		return true
	}
	for _, a := range k.cfg.AllowedTenants {
		if strings.EqualFold(strings.TrimSpace(a), tenant) {
			return true
		}
	}
	return false
}

// Token returns a usable access token for the account, refreshing it first when it is due.
func (k *Keeper) Token(ctx context.Context, account string) (Token, error) {
	if t, ok := k.cached(account); ok && !k.due(t) {
		return t, nil
	}
	t, keyID, err := k.load(ctx, k.db, sqlLoadToken, account)
	if err != nil {
		return Token{}, err
	}
	if !k.due(t) && keyID == k.keys.CurrentID() {
		k.remember(account, t)
		return t, nil
	}
	return k.refresh(ctx, account, "")
}

// Refresh forces a refresh unless another process already replaced the access token `used`
// (pass "" to refresh regardless). The Keap client calls it after a 401.
func (k *Keeper) Refresh(ctx context.Context, account, used string) (Token, error) {
	if used == "" {
		used = "\x00" // matches no token: refresh regardless
	}
	return k.refresh(ctx, account, used)
}

// due: the access token is inside the refresh-ahead window, or the refresh token is old enough
// that a quiet account must refresh to stay alive.
func (k *Keeper) due(t Token) bool {
	now := k.cfg.Clock.Now()
	return !now.Before(t.Expiry.Add(-k.cfg.RefreshAhead)) ||
		!now.Before(t.RefreshExpiry.Add(-(k.cfg.RefreshLifetime - k.cfg.KeepAliveAfter)))
}

// refresh is single-flight across processes: row lock, re-read, and refresh only if the stored
// token is still the one that needs replacing. With force set to an access token, the stored
// token is replaced unless it already differs from that one.
func (k *Keeper) refresh(ctx context.Context, account, force string) (Token, error) {
	tx, err := k.db.Begin(ctx)
	if err != nil {
		return Token{}, fmt.Errorf("refresh token: %w", err)
	}
	defer tx.Rollback(ctx)
	t, keyID, err := k.load(ctx, tx, sqlLockToken, account)
	if err != nil {
		return Token{}, err
	}
	if force == "" && !k.due(t) || force != "" && force != "\x00" && t.AccessToken != force {
		// Someone refreshed while we waited for the lock; re-seal if the key rotated.
		if keyID != k.keys.CurrentID() {
			if err := k.save(ctx, tx, account, t); err != nil {
				return Token{}, err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return Token{}, fmt.Errorf("refresh token: %w", err)
		}
		k.remember(account, t)
		return t, nil
	}
	ot, err := k.oauthConfig(oauth2.AuthStyleInHeader, "").TokenSource(k.httpContext(ctx),
		&oauth2.Token{RefreshToken: t.RefreshToken}).Token()
	if err != nil {
		err = describe(err, ErrNeedsReauth)
		if errors.Is(err, ErrNeedsReauth) {
			_, _ = tx.Exec(ctx, sqlMarkReauth, account)
			_, _ = tx.Exec(ctx, sqlTokenError, account, err.Error())
			if cerr := tx.Commit(ctx); cerr != nil {
				return Token{}, fmt.Errorf("record failed refresh: %w", cerr)
			}
			k.forget(account)
			k.log.Warn("Keap refused the refresh token; account needs re-authorization", "account", account)
		}
		return Token{}, fmt.Errorf("refresh token of account %s: %w", account, err)
	}
	nt, err := k.fromOAuth(ot)
	if err != nil {
		return Token{}, err
	}
	if nt.Scope == "" {
		nt.Scope = t.Scope
	}
	// Stored and committed before anyone uses the new access token: the old refresh token is
	// already dead at Keap.
	if err := k.save(ctx, tx, account, nt); err != nil {
		return Token{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Token{}, fmt.Errorf("store refreshed token: %w", err)
	}
	k.remember(account, nt)
	k.log.Info("refreshed Keap token", "account", account, "expires", nt.Expiry)
	return nt, nil
}

// describe maps Keap's token-endpoint errors (FACTS.md §1) to ours, keeping Keap's words; a
// refused grant becomes refusedGrant, which says what was refused (the code or the refresh token).
func describe(err, refusedGrant error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	msg := re.ErrorDescription
	if msg == "" {
		msg = strings.TrimSpace(string(re.Body))
	}
	switch {
	case re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", ErrBadClient, msg)
	case re.ErrorCode == "invalid_grant" || re.ErrorCode == "invalid_request":
		return fmt.Errorf("%w: %s", refusedGrant, msg)
	case re.Response != nil:
		return fmt.Errorf("Keap token endpoint answered %d: %s %s", re.Response.StatusCode, re.ErrorCode, msg)
	}
	return err
}

func (k *Keeper) cached(account string) (Token, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.cache[account]
	return t, ok
}

func (k *Keeper) remember(account string, t Token) {
	k.mu.Lock()
	k.cache[account] = t
	k.mu.Unlock()
}

func (k *Keeper) forget(account string) {
	k.mu.Lock()
	delete(k.cache, account)
	k.mu.Unlock()
}

// Revoke forgets an account's tokens and marks it as needing authorization. Keap documents no
// revocation endpoint; remove the app's access in Keap's settings to revoke it there too.
func (k *Keeper) Revoke(ctx context.Context, account string) error {
	if _, err := k.db.Exec(ctx, sqlRevoke, account); err != nil {
		return fmt.Errorf("revoke tokens of account %s: %w", account, err)
	}
	k.forget(account)
	return nil
}

// RefreshDue refreshes every connected account whose token is due, and returns how many it
// refreshed. Errors for one account do not stop the others.
func (k *Keeper) RefreshDue(ctx context.Context) (int, error) {
	now := k.cfg.Clock.Now()
	rows, err := k.db.Query(ctx, sqlDueAccounts, now.Add(k.cfg.RefreshAhead),
		now.Add(k.cfg.RefreshLifetime-k.cfg.KeepAliveAfter))
	if err != nil {
		return 0, fmt.Errorf("find accounts due for refresh: %w", err)
	}
	accounts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("find accounts due for refresh: %w", err)
	}
	n := 0
	var errs []error
	for _, a := range accounts {
		if _, err := k.refresh(ctx, a, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Start refreshes due tokens every CheckEvery in the background until Stop or ctx ends.
// Transient failures are retried on the next tick; the refresh-ahead window leaves hours for that.
func (k *Keeper) Start(ctx context.Context) error { return k.loop.Go(ctx, k.refreshLoop) }

// Stop ends the scheduled refreshes and waits for one in flight.
func (k *Keeper) Stop() { k.loop.Stop() }

func (k *Keeper) refreshLoop(ctx context.Context) error {
	tick := time.NewTicker(k.cfg.CheckEvery)
	defer tick.Stop()
	for {
		if _, err := k.RefreshDue(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("token refresh failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Credentials authorize Keap requests of one account; they satisfy the Keap client's
// Credentials interface and its optional Refresh.
type Credentials struct {
	k       *Keeper
	account string
}

// For returns the credentials of one account.
func (k *Keeper) For(account string) *Credentials { return &Credentials{k: k, account: account} }

// Authorize sets the bearer token.
func (c *Credentials) Authorize(ctx context.Context, req *http.Request) error {
	t, err := c.k.Token(ctx, c.account)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.AccessToken)
	return nil
}

// Refresh is called after Keap answered 401 to a request these credentials authorized.
func (c *Credentials) Refresh(ctx context.Context) error {
	used := ""
	if t, ok := c.k.cached(c.account); ok {
		used = t.AccessToken
	}
	_, err := c.k.Refresh(ctx, c.account, used)
	return err
}
