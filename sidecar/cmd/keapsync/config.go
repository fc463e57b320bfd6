package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/keapclients"
)

// Every setting is a flag with an environment variable; the names are part of the interface
// (README, "Configuration"). Commands pick the flags they need.
var (
	// No default: a silent localhost:5432/postgres hid an unset DATABASE_URL behind a
	// connection error that never named it.
	databaseURLFlag = &cli.StringFlag{Name: "database-url", EnvVars: []string{"DATABASE_URL"},
		Usage: "PostgreSQL connection URL (required; for a Supabase project: the direct connection, port 5432)"}
	clientIDFlag     = &cli.StringFlag{Name: "client-id", EnvVars: []string{"KEAP_CLIENT_ID"}, Usage: "Keap OAuth app client id"}
	clientSecretFlag = newSecret("client-secret", "KEAP_CLIENT_SECRET", "Keap OAuth app client secret")
	apiKeyFlag       = newSecret("api-key", "KEAP_API_KEY", "a personal access or service account key instead of OAuth")
	apiURLFlag       = &cli.StringFlag{Name: "api-url", EnvVars: []string{"KEAP_API_URL"}, Value: "https://api.infusionsoft.com/crm/rest",
		Usage: "base to which /v1/contacts etc. is appended"}
	authURLFlag        = &cli.StringFlag{Name: "auth-url", EnvVars: []string{"KEAP_AUTH_URL"}, Value: keapauth.DefaultAuthURL, Usage: "Keap authorize endpoint"}
	tokenURLFlag       = &cli.StringFlag{Name: "token-url", EnvVars: []string{"KEAP_TOKEN_URL"}, Value: keapauth.DefaultTokenURL, Usage: "Keap token endpoint"}
	allowedTenantsFlag = &cli.StringFlag{Name: "allowed-tenants", EnvVars: []string{"KEAPSYNC_ALLOWED_TENANTS"},
		Usage: "comma-separated Keap tenants (e.g. ab123.infusionsoft.com) that may be connected; empty allows any"}
	secretKeyFlag = newSecret("secret-key", "KEAPSYNC_SECRET_KEY",
		"base64 of 32 random bytes that seals tokens (keapsync keygen prints one); for rotation: new,old")
)

// secretSetting is a secret: it comes from its environment variable or from a file named by
// --<name>-file (or <ENV>_FILE), never from the command line, where `ps` and shell history show
// it to anyone on the machine. The bare --<name> flag stays defined, hidden, only to say so: it
// has no EnvVars, so a value in it came from the command line.
type secretSetting struct {
	name, env string
	argv      *cli.StringFlag
	file      *cli.StringFlag
}

func newSecret(name, env, usage string) *secretSetting {
	return &secretSetting{name: name, env: env,
		argv: &cli.StringFlag{Name: name, Hidden: true, Usage: usage},
		file: &cli.StringFlag{Name: name + "-file", EnvVars: []string{env + "_FILE"},
			Usage: usage + ": set " + env + ", or name a file holding it here"}}
}

// Flags returns the hidden command-line flag and the file flag, for a command's flag list.
func (s *secretSetting) Flags() []cli.Flag { return []cli.Flag{s.argv, s.file} }

// get returns the secret ("" when not set), refusing one given on the command line.
func (s *secretSetting) get(c *cli.Context) (string, error) {
	if c.String(s.name) != "" {
		return "", fmt.Errorf("%s: --%s on the command line is visible to every user of the machine; set %s or --%s-file instead",
			s.env, s.name, s.env, s.name)
	}
	if v := os.Getenv(s.env); v != "" {
		return v, nil
	}
	path := c.String(s.file.Name)
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", s.env, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// missing is the error for a secret the command cannot do without.
func (s *secretSetting) missing() error {
	return fmt.Errorf("%s (or --%s-file) is required", s.env, s.name)
}

// checkURL stops at start with one line naming the variable.
func checkURL(f *cli.StringFlag, v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%s: not a URL: %q", f.EnvVars[0], v)
	}
	return strings.TrimRight(v, "/"), nil
}

// requiredError names the variable and flag of a setting left empty.
func requiredError(f *cli.StringFlag) error {
	return fmt.Errorf("%s (--%s) is required", f.EnvVars[0], f.Name)
}

// settings reads a command's flags once with read and checks them with their Validate before
// anything is opened: the one way every command gets its settings.
func settings[T any, PT interface {
	*T
	Validate() error
}](c *cli.Context, read func(*cli.Context) (T, error)) (T, error) {
	cfg, err := read(c)
	if err == nil {
		err = PT(&cfg).Validate()
	}
	return cfg, err
}

// dbSettings is the one setting of a command that needs only the database.
type dbSettings struct {
	DatabaseURL string
}

func readDBSettings(c *cli.Context) dbSettings {
	return dbSettings{DatabaseURL: c.String(databaseURLFlag.Name)}
}

// Validate: the URL is required (openPoolURL says when it is not one).
func (d *dbSettings) Validate() error {
	if d.DatabaseURL == "" {
		return requiredError(databaseURLFlag)
	}
	return nil
}

// withPool opens the pool for one command and closes it after f.
func (d *dbSettings) withPool(ctx context.Context, f func(pool *pgxpool.Pool) error) error {
	pool, err := openPoolURL(ctx, d.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return f(pool)
}

// defaultPoolSize: a push or inbox worker holds a connection (its claim and locks) while its Keap
// call needs another (the token, the account), so the pool must outnumber the workers several
// times over; pgxpool's default (max(4, CPUs)) starves them. pool_max_conns in the URL wins.
const defaultPoolSize = 20

// openPoolURL opens a pool on a URL already read and checked.
func openPoolURL(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: not a PostgreSQL URL or connection string (postgres://user:password@host:5432/db)")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultPoolSize
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, &connectError{err}
	}
	return pool, nil
}

// keapSettings are the flags of a command that talks to Keap, read once; Validate says what
// is missing or malformed, naming the variable, before anything is opened.
type keapSettings struct {
	DatabaseURL string
	APIURL      string
	// APIKey, a personal access or service account key, replaces OAuth: with it the OAuth
	// settings are not needed.
	APIKey    string
	OAuth     keapauth.Config // client id and secret, endpoints, allowed tenants
	SecretKey string          // KEAPSYNC_SECRET_KEY: the keyring that seals tokens
	Log       *slog.Logger
}

// readKeapSettings reads the Keap flags (and --database-url); oauthOnly is for commands that
// only manage OAuth tokens (auth login/refresh/revoke), which have no --api-url or --api-key.
func readKeapSettings(c *cli.Context, oauthOnly bool) (keapSettings, error) {
	var k keapSettings
	var err error
	if k.Log, err = newLogger(c); err != nil {
		return k, err
	}
	k.DatabaseURL = c.String(databaseURLFlag.Name)
	if !oauthOnly {
		k.APIURL = c.String(apiURLFlag.Name)
		if k.APIKey, err = apiKeyFlag.get(c); err != nil {
			return k, err
		}
	}
	k.OAuth = keapauth.Config{ClientID: c.String(clientIDFlag.Name),
		AuthURL: c.String(authURLFlag.Name), TokenURL: c.String(tokenURLFlag.Name), Log: k.Log}
	if k.OAuth.ClientSecret, err = clientSecretFlag.get(c); err != nil {
		return k, err
	}
	if k.SecretKey, err = secretKeyFlag.get(c); err != nil {
		return k, err
	}
	for _, t := range strings.Split(c.String(allowedTenantsFlag.Name), ",") {
		if t = strings.TrimSpace(t); t != "" {
			k.OAuth.AllowedTenants = append(k.OAuth.AllowedTenants, t)
		}
	}
	return k, nil
}

// Validate checks the settings in the order a reader fixes them; a URL is trimmed of its "/".
func (k *keapSettings) Validate(oauthOnly bool) error {
	if k.DatabaseURL == "" {
		return requiredError(databaseURLFlag)
	}
	var err error
	if !oauthOnly {
		if k.APIURL, err = checkURL(apiURLFlag, k.APIURL); err != nil {
			return err
		}
		if k.APIKey != "" {
			return nil
		}
	}
	if k.OAuth.ClientID == "" {
		return requiredError(clientIDFlag)
	}
	if k.OAuth.ClientSecret == "" {
		return clientSecretFlag.missing()
	}
	if k.OAuth.AuthURL, err = checkURL(authURLFlag, k.OAuth.AuthURL); err != nil {
		return err
	}
	if k.OAuth.TokenURL, err = checkURL(tokenURLFlag, k.OAuth.TokenURL); err != nil {
		return err
	}
	if k.SecretKey == "" {
		return secretKeyFlag.missing()
	}
	if _, err := keapauth.ParseKeyring(k.SecretKey); err != nil {
		return fmt.Errorf("KEAPSYNC_SECRET_KEY: %w", err)
	}
	return nil
}

// keeper builds the token keeper (nil with a personal key).
func (k *keapSettings) keeper(pool *pgxpool.Pool) (*keapauth.Keeper, error) {
	if k.APIKey != "" {
		return nil, nil
	}
	keys, err := keapauth.ParseKeyring(k.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("KEAPSYNC_SECRET_KEY: %w", err)
	}
	return keapauth.New(k.OAuth, pool, keys)
}

// clients builds the per-account Keap clients on pool.
func (k *keapSettings) clients(pool *pgxpool.Pool, reg prometheus.Registerer) (*keapclients.Registry, error) {
	keeper, err := k.keeper(pool)
	if err != nil {
		return nil, err
	}
	return keapclients.New(keapclients.Config{APIURL: k.APIURL, APIKey: k.APIKey, ClientID: k.OAuth.ClientID,
		Keeper: keeper, Logger: k.Log, Registerer: reg}, pool)
}
