package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// runDemoSandbox starts the demo's Keap sandbox (auto-approving OAuth), connects keapsync to it
// through the real authorization code flow with a generated local secret key, and serves the
// sandbox until interrupted (unless --serve=false).
func runDemoSandbox(c *cli.Context, log *slog.Logger, dbURL, dir string) error {
	ctx := c.Context
	srv, err := sandbox.New(sandbox.Options{
		Addr: c.String("sandbox-addr"), Logger: log.With("component", "sandbox"), Seed: 1,
		Contacts: c.Int("sandbox-contacts"), AutoApprove: true, HookDelay: 2 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("demo sandbox: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("demo sandbox: %w", err)
	}
	defer srv.Close()

	secret, err := demoSecretKey(dir)
	if err != nil {
		return err
	}
	keys, err := keapauth.ParseKeyring(secret)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to demo database: %w", err)
	}
	defer pool.Close()
	creds := srv.Credentials()
	keeper, err := keapauth.New(keapauth.Config{
		ClientID: creds.ClientID, ClientSecret: creds.ClientSecret,
		AuthURL: srv.URL() + "/app/oauth/authorize", TokenURL: srv.URL() + "/token", Log: log,
	}, pool, keys)
	if err != nil {
		return err
	}
	account, tenant, err := keeper.Login(ctx, keapauth.LoginOptions{Follow: true})
	if err != nil {
		return fmt.Errorf("connect the demo account to the sandbox: %w", err)
	}

	w := c.App.Writer
	env := []string{
		"DATABASE_URL='" + dbURL + "'",
		"KEAP_API_URL=" + srv.URL() + "/crm/rest",
		"KEAP_AUTH_URL=" + srv.URL() + "/app/oauth/authorize",
		"KEAP_TOKEN_URL=" + srv.URL() + "/token",
		"KEAP_CLIENT_ID=" + creds.ClientID,
		"KEAP_CLIENT_SECRET=" + creds.ClientSecret,
		"KEAPSYNC_SECRET_KEY=$(cat " + filepath.Join(dir, "secret.key") + ")",
	}
	fmt.Fprintf(w, "Keap sandbox at %s with %d generated contacts (state: %s/_sandbox/state)\n",
		srv.URL(), c.Int("sandbox-contacts"), srv.URL())
	fmt.Fprintf(w, "Connected through OAuth: account %s (%s)\n\n", account, tenant)
	fmt.Fprintf(w, "Point keapsync at the demo:\n  export %s\n", strings.Join(env, " \\\n         "))
	fmt.Fprintf(w, "  bin/keapsync auth status\n\n")
	if !c.Bool("serve") {
		return nil
	}
	fmt.Fprintln(w, "The sandbox serves until Ctrl-C; the database keeps running after it.")
	<-ctx.Done()
	return nil
}

// demoSecretKey reads the demo's sealing key from dir, creating it on first use.
func demoSecretKey(dir string) (string, error) {
	path := filepath.Join(dir, "secret.key")
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read demo secret key: %w", err)
	}
	key, err := keapauth.NewKey()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write demo secret key: %w", err)
	}
	return key, nil
}
