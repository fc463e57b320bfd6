package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/keapauth"
)

// Every setting is a flag with an environment variable; the names are part of the interface
// (README, "Configuration"). Commands pick the flags they need.
var (
	databaseURLFlag = &cli.StringFlag{Name: "database-url", EnvVars: []string{"DATABASE_URL"},
		Value: "postgres://localhost:5432/postgres",
		Usage: "PostgreSQL connection (for a Supabase project: the direct connection, port 5432)"}
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
		"base64 of 32 random bytes that seals tokens (`keapsync keygen` prints one); for rotation: new,old")
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

// required is get for a secret the command cannot do without.
func (s *secretSetting) required(c *cli.Context) (string, error) {
	v, err := s.get(c)
	if err == nil && v == "" {
		err = fmt.Errorf("%s (or --%s-file) is required", s.env, s.name)
	}
	return v, err
}

// checkURL stops at start with one line naming the variable.
func checkURL(c *cli.Context, f *cli.StringFlag) (string, error) {
	v := c.String(f.Name)
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%s: not a URL: %q", f.EnvVars[0], v)
	}
	return strings.TrimRight(v, "/"), nil
}

func required(c *cli.Context, f *cli.StringFlag) (string, error) {
	v := c.String(f.Name)
	if v == "" {
		return "", fmt.Errorf("%s (--%s) is required", f.EnvVars[0], f.Name)
	}
	return v, nil
}

// defaultPoolSize: a push or inbox worker holds a connection (its claim and locks) while its Keap
// call needs another (the token, the account), so the pool must outnumber the workers several
// times over; pgxpool's default (max(4, CPUs)) starves them. pool_max_conns in the URL wins.
const defaultPoolSize = 20

func openPool(ctx context.Context, c *cli.Context) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.String(databaseURLFlag.Name))
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !strings.Contains(c.String(databaseURLFlag.Name), "pool_max_conns") {
		cfg.MaxConns = defaultPoolSize
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

// newKeeper builds the token keeper from the OAuth flags.
func newKeeper(c *cli.Context, pool *pgxpool.Pool) (*keapauth.Keeper, error) {
	log, err := newLogger(c)
	if err != nil {
		return nil, err
	}
	var cfg keapauth.Config
	if cfg.ClientID, err = required(c, clientIDFlag); err != nil {
		return nil, err
	}
	if cfg.ClientSecret, err = clientSecretFlag.required(c); err != nil {
		return nil, err
	}
	if cfg.AuthURL, err = checkURL(c, authURLFlag); err != nil {
		return nil, err
	}
	if cfg.TokenURL, err = checkURL(c, tokenURLFlag); err != nil {
		return nil, err
	}
	secret, err := secretKeyFlag.required(c)
	if err != nil {
		return nil, err
	}
	keys, err := keapauth.ParseKeyring(secret)
	if err != nil {
		return nil, fmt.Errorf("KEAPSYNC_SECRET_KEY: %w", err)
	}
	for _, t := range strings.Split(c.String(allowedTenantsFlag.Name), ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.AllowedTenants = append(cfg.AllowedTenants, t)
		}
	}
	cfg.Log = log
	return keapauth.New(cfg, pool, keys)
}
